// A 16550A UART as PCs have had it since the AT: COM1 at 0x3F8 on IRQ 4 by
// default (COM2 0x2F8/3, COM3 0x3E8/4, COM4 0x2E8/3). Registers, FIFOs and
// interrupt rules follow National Semiconductor's PC16550D datasheet
// ("PC16550D UART with FIFOs", section 8 "Registers"); where the datasheet
// leaves room, QEMU's hw/char/serial.c and Linux's 8250 driver
// (drivers/tty/serial/8250/8250_port.c) decide, because Linux is the judge.
//
// No baud-rate pacing: a byte written to THR leaves at once, so THRE and
// TEMT read set again by the next access. Bytes the guest writes in a burst
// are gathered and handed to CharBackend.write together, on a timer due at
// once (the host runs it after the accesses in hand) or when the batch is
// full. Input is never dropped: what does not fit in the receive FIFO waits
// in a queue (`rxQueued`, for a host that wants to stop reading its PTY)
// and moves into the FIFO as the guest reads. Overrun (LSR.OE) can only
// happen in loopback, where the guest feeds its own receiver.
//
// Interrupts, highest priority first (datasheet table IV): receiver line
// status (OE/PE/FE/BI), received data at the trigger level or the character
// timeout, THR empty, modem status. On a PC the UART's INTR pin reaches the
// PIC through a buffer enabled by OUT2 (MCR bit 3), and loopback forces the
// OUT2 pin inactive, so the line is asserted only when an interrupt is
// pending, OUT2 is set and loopback is off (`gateOut2: false` drops the gate
// for boards that wire INTR straight through).
import type { CharBackend } from './backend.js';
import type { AccessSize, Clock, IoHandler, IoRegion, IoSpace, IrqLines } from './machine.js';

// Register offsets and bits, with the names of Linux's include/uapi/linux/serial_reg.h.
export const UART_RX = 0; // in, DLAB=0
export const UART_TX = 0; // out, DLAB=0
export const UART_DLL = 0; // DLAB=1
export const UART_IER = 1; // DLAB=0
export const UART_DLM = 1; // DLAB=1
export const UART_IIR = 2; // in
export const UART_FCR = 2; // out
export const UART_LCR = 3;
export const UART_MCR = 4;
export const UART_LSR = 5;
export const UART_MSR = 6;
export const UART_SCR = 7;

export const UART_IER_RDI = 0x01;
export const UART_IER_THRI = 0x02;
export const UART_IER_RLSI = 0x04;
export const UART_IER_MSI = 0x08;

export const UART_IIR_NO_INT = 0x01;
export const UART_IIR_ID = 0x0e;
export const UART_IIR_MSI = 0x00;
export const UART_IIR_THRI = 0x02;
export const UART_IIR_RDI = 0x04;
export const UART_IIR_RLSI = 0x06;
export const UART_IIR_RX_TIMEOUT = 0x0c;
export const UART_IIR_FIFO_ENABLED = 0xc0;

export const UART_FCR_ENABLE_FIFO = 0x01;
export const UART_FCR_CLEAR_RCVR = 0x02;
export const UART_FCR_CLEAR_XMIT = 0x04;
export const UART_FCR_DMA_SELECT = 0x08;
export const UART_FCR_TRIGGER_MASK = 0xc0;

export const UART_LCR_WLEN_MASK = 0x03;
export const UART_LCR_STOP = 0x04;
export const UART_LCR_PARITY = 0x08;
export const UART_LCR_SBC = 0x40;
export const UART_LCR_DLAB = 0x80;

export const UART_MCR_DTR = 0x01;
export const UART_MCR_RTS = 0x02;
export const UART_MCR_OUT1 = 0x04;
export const UART_MCR_OUT2 = 0x08;
export const UART_MCR_LOOP = 0x10;

export const UART_LSR_DR = 0x01;
export const UART_LSR_OE = 0x02;
export const UART_LSR_PE = 0x04;
export const UART_LSR_FE = 0x08;
export const UART_LSR_BI = 0x10;
export const UART_LSR_THRE = 0x20;
export const UART_LSR_TEMT = 0x40;
export const UART_LSR_FIFOE = 0x80;
/** The line status conditions that raise the receiver line status interrupt. */
const UART_LSR_INT_ANY = UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI;

export const UART_MSR_DCTS = 0x01;
export const UART_MSR_DDSR = 0x02;
export const UART_MSR_TERI = 0x04;
export const UART_MSR_DDCD = 0x08;
export const UART_MSR_ANY_DELTA = 0x0f;
export const UART_MSR_CTS = 0x10;
export const UART_MSR_DSR = 0x20;
export const UART_MSR_RI = 0x40;
export const UART_MSR_DCD = 0x80;

/** The 16550A's receive and transmit FIFOs hold 16 characters. */
export const UART_FIFO_SIZE = 16;
/** Receiver trigger levels selected by FCR bits 7:6 (datasheet table V). */
const RX_TRIGGER = [1, 4, 8, 14] as const;
/** The PC's 1.8432 MHz crystal divided by 16. */
const BAUD_BASE = 115200;

export interface UartOptions {
  /** First of the 8 ports (default 0x3F8, COM1). */
  base?: number;
  /** ISA interrupt line (default 4, COM1's). */
  irq?: number;
  /** The modem inputs while not in loopback (default: CTS, DSR and DCD on, RI off: a cable to a ready peer). */
  modem?: { cts: boolean; dsr: boolean; dcd: boolean; ri: boolean };
  /** Gate INTR with OUT2 as a PC does (default true). */
  gateOut2?: boolean;
  /** Most bytes handed to CharBackend.write at once (default 256). */
  txBatch?: number;
}

/** What plugging the UART in needs of its machine. */
export interface UartHost { ports: IoSpace; irq: IrqLines; clock: Clock }

export class Uart16550 implements IoHandler {
  readonly base: number;
  readonly irqLine: number;
  private readonly region: IoRegion;
  private readonly gateOut2: boolean;

  // Registers.
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private fcr = 0; // bits FE, DMA mode and trigger (0xc9)
  private scr = 0;
  private dll = 0x0c; // 9600 baud until the guest programs it; the latch is undefined at reset
  private dlm = 0;
  /** OE, PE, FE, BI: sticky until LSR is read. */
  private lsrErrors = 0;
  /** THR empty is pending as an interrupt (cleared by reading IIR while it is the cause, or by writing THR). */
  private thrPending = false;
  /** The character timeout has expired with characters in the FIFO. */
  private timeoutPending = false;
  private msrDelta = 0;
  /** The modem input lines as the UART sees them (CTS, DSR, RI, DCD in MSR's bit positions). */
  private msrLines = 0;
  private modemInputs: number;

  // Receive FIFO (depth 1 while FIFOs are disabled: the 16450's receiver buffer register).
  private readonly rxFifo = new Uint8Array(UART_FIFO_SIZE);
  private rxHead = 0;
  private rxCount = 0;
  private timeoutTimer: number | null = null;
  /** Input the FIFO had no room for, oldest first. */
  private readonly rxQueue: Uint8Array[] = [];
  private rxQueueOffset = 0;
  private rxQueueBytes = 0;

  // Transmit batch.
  private readonly txBuf: Uint8Array;
  private txLen = 0;
  private txTimer: number | null = null;

  private irqLevel: 0 | 1 = 0;
  private readonly clock: Clock;
  private readonly irqLines: IrqLines;

  /** Bytes the guest wrote and the back end was given, and received bytes lost to overrun. */
  readonly stats = { txBytes: 0, rxBytes: 0, overruns: 0 };

  constructor(host: UartHost, private readonly backend: CharBackend, opts: UartOptions = {}) {
    this.base = opts.base ?? 0x3f8;
    this.irqLine = opts.irq ?? 4;
    this.gateOut2 = opts.gateOut2 ?? true;
    this.clock = host.clock;
    this.irqLines = host.irq;
    this.txBuf = new Uint8Array(Math.max(1, opts.txBatch ?? 256));
    const m = opts.modem ?? { cts: true, dsr: true, dcd: true, ri: false };
    this.modemInputs = modemBits(m);
    this.msrLines = this.modemInputs;
    this.region = host.ports.register(this.base, 8, this, `uart16550@0x${this.base.toString(16)}`);
    backend.onInput((bytes) => this.input(bytes));
  }

  /** Unplugs the UART: its ports go, its line is lowered, batched output is flushed. */
  dispose(): void {
    this.flush();
    if (this.timeoutTimer !== null) this.clock.cancel(this.timeoutTimer);
    this.timeoutTimer = null;
    this.region.unregister();
    if (this.irqLevel) this.irqLines.setIsaIrq(this.irqLine, 0);
    this.irqLevel = 0;
  }

  /** Input bytes the FIFO has not taken yet. */
  get rxQueued(): number { return this.rxQueueBytes; }

  /** Changes the modem inputs (a peer dropping carrier, ringing); sets MSR's delta bits as the lines move. */
  setModemInputs(m: { cts: boolean; dsr: boolean; dcd: boolean; ri: boolean }): void {
    this.modemInputs = modemBits(m);
    this.refreshModemLines();
    this.update();
  }

  // --- IoHandler: byte registers; wider accesses are consecutive ports, as on the ISA bus.

  read(offset: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readReg(offset + i) << (8 * i);
    this.update();
    return v >>> 0;
  }

  write(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.writeReg(offset + i, (value >>> (8 * i)) & 0xff);
    this.update();
  }

  private readReg(reg: number): number {
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (reg) {
      case UART_RX:
        return dlab ? this.dll : this.readRbr();
      case UART_IER:
        return dlab ? this.dlm : this.ier;
      case UART_IIR: {
        const id = this.interruptId();
        // Reading IIR while THR empty is the cause acknowledges it (datasheet table IV, "reset control").
        if (id === UART_IIR_THRI) this.thrPending = false;
        return id | (this.fcr & UART_FCR_ENABLE_FIFO ? UART_IIR_FIFO_ENABLED : 0);
      }
      case UART_LCR:
        return this.lcr;
      case UART_MCR:
        return this.mcr;
      case UART_LSR: {
        const v = this.lsr();
        this.lsrErrors = 0;
        return v;
      }
      case UART_MSR: {
        const v = this.msrLines | this.msrDelta;
        this.msrDelta = 0;
        return v;
      }
      default:
        return this.scr;
    }
  }

  private writeReg(reg: number, v: number): void {
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (reg) {
      case UART_TX:
        if (dlab) this.dll = v;
        else this.transmit(v);
        return;
      case UART_IER: {
        if (dlab) { this.dlm = v; return; }
        const changed = (this.ier ^ v) & 0x0f;
        this.ier = v & 0x0f;
        // Enabling THRI while THR is empty raises the interrupt again even if
        // an IIR read had acknowledged it: not in the datasheet, but 8250s do
        // it, QEMU does it, and Linux's startup test (serial8250_do_startup's
        // THRE probe) and Windows rely on it.
        if (changed & UART_IER_THRI) this.thrPending = (this.ier & UART_IER_THRI) !== 0;
        return;
      }
      case UART_FCR:
        this.writeFcr(v);
        return;
      case UART_LCR:
        this.lcr = v;
        return;
      case UART_MCR: {
        const wasLoop = (this.mcr & UART_MCR_LOOP) !== 0;
        this.mcr = v & 0x1f;
        this.refreshModemLines();
        // Leaving loopback reconnects the receiver: input that waited meanwhile comes in.
        if (wasLoop && !(this.mcr & UART_MCR_LOOP)) this.refill();
        return;
      }
      case UART_LSR:
      case UART_MSR:
        return; // factory test registers on real parts; writes are ignored, as QEMU does
      default:
        this.scr = v;
    }
  }

  private writeFcr(v: number): void {
    // Turning the FIFOs on or off clears both (datasheet, FCR bit 0).
    if ((v ^ this.fcr) & UART_FCR_ENABLE_FIFO) v |= UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT;
    if (v & UART_FCR_CLEAR_RCVR) {
      this.rxHead = 0;
      this.rxCount = 0;
      this.timeoutPending = false;
      this.stopTimeout();
    }
    if (v & UART_FCR_CLEAR_XMIT) {
      // Transmission is immediate, so the transmit FIFO is always empty; clearing it re-arms THRE as QEMU does.
      this.thrPending = true;
    }
    this.fcr = v & (UART_FCR_ENABLE_FIFO | UART_FCR_DMA_SELECT | UART_FCR_TRIGGER_MASK);
    if (v & UART_FCR_CLEAR_RCVR) this.refill();
  }

  private lsr(): number {
    return (this.rxCount > 0 ? UART_LSR_DR : 0) | this.lsrErrors | UART_LSR_THRE | UART_LSR_TEMT;
  }

  /** The pending interrupt of highest priority, as IIR bits 3:0. */
  private interruptId(): number {
    if (this.ier & UART_IER_RLSI && this.lsrErrors & UART_LSR_INT_ANY) return UART_IIR_RLSI;
    // The timeout is masked by IER.RDI, as on real parts (QEMU notes the same).
    if (this.ier & UART_IER_RDI && this.timeoutPending) return UART_IIR_RX_TIMEOUT;
    if (this.ier & UART_IER_RDI && this.rxCount > 0 && this.rxCount >= this.triggerLevel()) return UART_IIR_RDI;
    if (this.ier & UART_IER_THRI && this.thrPending) return UART_IIR_THRI;
    if (this.ier & UART_IER_MSI && this.msrDelta) return UART_IIR_MSI;
    return UART_IIR_NO_INT;
  }

  private triggerLevel(): number {
    return this.fcr & UART_FCR_ENABLE_FIFO ? RX_TRIGGER[this.fcr >> 6]! : 1;
  }

  private get rxCapacity(): number { return this.fcr & UART_FCR_ENABLE_FIFO ? UART_FIFO_SIZE : 1; }

  /** Drives the ISA line from the pending interrupt and the OUT2 gate; calls out only on a change. */
  private update(): void {
    const pending = this.interruptId() !== UART_IIR_NO_INT;
    const gate = !this.gateOut2 || ((this.mcr & UART_MCR_OUT2) !== 0 && (this.mcr & UART_MCR_LOOP) === 0);
    const level: 0 | 1 = pending && gate ? 1 : 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irqLines.setIsaIrq(this.irqLine, level);
    }
  }

  // --- Transmit.

  private transmit(byte: number): void {
    this.thrPending = false;
    if (this.mcr & UART_MCR_LOOP) {
      // Loopback: the transmitter's output is the receiver's input (datasheet, MCR bit 4).
      this.receiveByte(byte);
    } else {
      this.txBuf[this.txLen++] = byte;
      this.stats.txBytes++;
      if (this.txLen === this.txBuf.length) this.flush();
      else if (this.txTimer === null) this.txTimer = this.clock.setTimer(this.clock.now(), () => { this.txTimer = null; this.flush(); });
    }
    // The byte left at once: THR and the shift register are empty again.
    this.thrPending = true;
  }

  /** Hands the batched output to the back end now. */
  flush(): void {
    if (this.txTimer !== null) { this.clock.cancel(this.txTimer); this.txTimer = null; }
    if (this.txLen === 0) return;
    const out = this.txBuf.slice(0, this.txLen);
    this.txLen = 0;
    this.backend.write(out);
  }

  // --- Receive.

  private input(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.rxQueue.push(Uint8Array.from(bytes));
    this.rxQueueBytes += bytes.length;
    this.refill();
    this.update();
  }

  /** Moves queued input into the FIFO while it has room (not in loopback, where the line is disconnected). */
  private refill(): void {
    if (this.mcr & UART_MCR_LOOP) return;
    let moved = false;
    while (this.rxQueueBytes > 0 && this.rxCount < this.rxCapacity) {
      const chunk = this.rxQueue[0]!;
      this.pushRx(chunk[this.rxQueueOffset++]!);
      this.rxQueueBytes--;
      moved = true;
      if (this.rxQueueOffset === chunk.length) { this.rxQueue.shift(); this.rxQueueOffset = 0; }
    }
    if (moved) this.restartTimeout();
  }

  /** A character arrives at the receiver from loopback; with no room it is an overrun. */
  private receiveByte(byte: number): void {
    if (this.rxCount >= this.rxCapacity) {
      // FIFO mode keeps the FIFO and loses the new character; the 16450 mode overwrites RBR.
      this.lsrErrors |= UART_LSR_OE;
      this.stats.overruns++;
      if (!(this.fcr & UART_FCR_ENABLE_FIFO)) this.rxFifo[this.rxHead] = byte;
      return;
    }
    this.pushRx(byte);
    this.restartTimeout();
  }

  private pushRx(byte: number): void {
    this.rxFifo[(this.rxHead + this.rxCount) % UART_FIFO_SIZE] = byte;
    this.rxCount++;
    this.stats.rxBytes++;
  }

  private readRbr(): number {
    if (this.rxCount === 0) return this.rxFifo[this.rxHead]!; // RBR keeps the last character
    const v = this.rxFifo[this.rxHead]!;
    if (this.rxCount > 1) this.rxHead = (this.rxHead + 1) % UART_FIFO_SIZE;
    this.rxCount--;
    this.timeoutPending = false;
    this.refill();
    if (this.rxCount > 0) this.restartTimeout();
    else this.stopTimeout();
    return v;
  }

  /**
   * The character timeout (datasheet, FCR and IIR): with FIFOs on, characters
   * below the trigger level raise an interrupt once neither a character came
   * in nor the CPU read one for four character times at the programmed rate.
   */
  private restartTimeout(): void {
    if (!(this.fcr & UART_FCR_ENABLE_FIFO)) return;
    this.stopTimeout();
    this.timeoutTimer = this.clock.setTimer(this.clock.now() + 4 * this.charTimeNs(), () => {
      this.timeoutTimer = null;
      if (this.rxCount > 0) {
        this.timeoutPending = true;
        this.update();
      }
    });
  }

  private stopTimeout(): void {
    if (this.timeoutTimer !== null) this.clock.cancel(this.timeoutTimer);
    this.timeoutTimer = null;
  }

  /** Nanoseconds one character takes on the line: start bit, data bits, parity, stop bits at BAUD_BASE / divisor. */
  charTimeNs(): number {
    const divisor = (this.dlm << 8 | this.dll) || 0x10000;
    const data = 5 + (this.lcr & UART_LCR_WLEN_MASK);
    const stop = this.lcr & UART_LCR_STOP ? (data === 5 ? 1.5 : 2) : 1;
    const bits = 1 + data + (this.lcr & UART_LCR_PARITY ? 1 : 0) + stop;
    return Math.round((bits * divisor * 1e9) / BAUD_BASE);
  }

  // --- Modem status.

  private refreshModemLines(): void {
    let lines: number;
    if (this.mcr & UART_MCR_LOOP) {
      // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (datasheet, MCR bit 4).
      lines = (this.mcr & UART_MCR_DTR ? UART_MSR_DSR : 0) | (this.mcr & UART_MCR_RTS ? UART_MSR_CTS : 0)
        | (this.mcr & UART_MCR_OUT1 ? UART_MSR_RI : 0) | (this.mcr & UART_MCR_OUT2 ? UART_MSR_DCD : 0);
    } else {
      lines = this.modemInputs;
    }
    const changed = lines ^ this.msrLines;
    if (changed & UART_MSR_CTS) this.msrDelta |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR) this.msrDelta |= UART_MSR_DDSR;
    if (changed & UART_MSR_DCD) this.msrDelta |= UART_MSR_DDCD;
    // TERI flags the trailing edge of RI only: the ringing stopped.
    if (changed & UART_MSR_RI && !(lines & UART_MSR_RI)) this.msrDelta |= UART_MSR_TERI;
    this.msrLines = lines;
  }
}

function modemBits(m: { cts: boolean; dsr: boolean; dcd: boolean; ri: boolean }): number {
  return (m.cts ? UART_MSR_CTS : 0) | (m.dsr ? UART_MSR_DSR : 0) | (m.dcd ? UART_MSR_DCD : 0) | (m.ri ? UART_MSR_RI : 0);
}
