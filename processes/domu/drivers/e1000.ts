// The PV kernel's e1000 driver: a passed-through Intel 82540EM (the host's
// emulated one, shared/hw/e1000.ts, or a real 8086:100e) reached through a
// PciDeviceHandle (pci_device.ts), as Linux's drivers/net/ethernet/intel/
// e1000 does on real hardware, reduced to what an IPv4 interface needs:
//
//   probe   memory decode and bus mastering on; CTRL.RST, every interrupt
//           masked (IMC) and ICR read clean; the EEPROM's 64 words read
//           through EERD and their sum checked (0xBABA, e1000_validate_
//           eeprom_checksum); the MAC from words 0-2 (e1000_read_mac_addr)
//           written to receive address 0 (e1000_init_rx_addrs); CTRL.SLU;
//           the multicast table cleared; interrupts: MSI-X when the
//           function has it (the 82540EM has not), else INTx, the pirq of
//           the device's GSI
//   open    (ifconfig up, e1000_open) the rings in DMA memory: TX_RING and
//           RX_RING legacy descriptors, a 2 KiB buffer each; TCTL and RCTL
//           (broadcast accepted, CRC stripped, 2048-byte buffers); IMS
//   xmit    the frame copied into its slot's buffer, EOP|IFCS|RS; TDT written
//           once per turn of the event loop for every frame queued in it
//   irq     ICR read (which clears it and drops the line), received frames
//           reaped while DD is set and the buffers handed back through RDT,
//           finished transmits reaped, then PHYSDEVOP_eoi (level pirq)
//   close   (ifconfig down) RCTL and TCTL off, interrupts masked; the rings stay
//
// Frames carry no FCS (RCTL.SECRC), as netif's and the stack's (net/stack.ts).
import * as R from '../../../shared/hw/e1000_regs.js';
import type { NetDevice, NetDeviceStats } from '../../../shared/front/netdev.js';
import type { PciBar, PciDeviceHandle, PciDmaBuffer } from './pci_device.js';

export const E1000_VENDOR = 0x8086;
/** The device IDs this driver takes (Linux's e1000_pci_tbl has many; xenemu's host NIC is the 82540EM). */
export const E1000_DEVICES = new Set([0x100e]);

const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;
/** Ring sizes (Linux's e1000 default: 256 descriptors each way). */
const TX_RING = 256;
const RX_RING = 256;
const BUF = 2048;
/** TCTL.CT (collision threshold) and TCTL.COLD (full duplex), as e1000_configure_tx writes them. */
const TCTL_CT = 0x0f << 4;
const TCTL_COLD = 0x40 << 12;
/** TIPG for copper (e1000_configure_tx: IPGT 8, IPGR1 8, IPGR2 6). */
const TIPG = 8 | 8 << 10 | 6 << 20;
/** The causes taken (IMS_ENABLE_MASK of Linux's e1000: RXT0, TXDW, RXDMT0, RXSEQ, LSC). */
const IMS = R.E1000_ICR_RXT0 | R.E1000_ICR_TXDW | R.E1000_ICR_RXDMT0 | R.E1000_ICR_RXSEQ | R.E1000_ICR_LSC | R.E1000_ICR_RXO;
const EEPROM_WORDS = 64;
const EEPROM_SUM = 0xbaba;

export interface E1000DriverOptions { name: string; log?: (msg: string) => void }

export class E1000Driver implements NetDevice {
  readonly name: string;
  mac = new Uint8Array(6);
  readonly stats: NetDeviceStats & { interrupts: number; rxNoBuffer: number; txRingFull: number } =
    { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxDropped: 0, txDropped: 0, interrupts: 0, rxNoBuffer: 0, txRingFull: 0 };
  /** 'down' until ifconfig up; 'closed' once the function is gone. */
  state: 'down' | 'connected' | 'closed' = 'down';
  /** MSI-X vectors granted, 0 for INTx. */
  msixVectors = 0;

  private readonly bar: PciBar;
  private readonly log: (m: string) => void;
  private receive: (f: Uint8Array) => void = () => undefined;
  private rings: { tx: PciDmaBuffer; rx: PciDmaBuffer; txBufs: PciDmaBuffer; rxBufs: PciDmaBuffer } | null = null;
  private txTail = 0;
  private txClean = 0;
  private txTailWritten = 0;
  private rxNext = 0;
  /** Inside a frame that spans buffers: dropped up to its EOP. */
  private rxSkipping = false;
  private doorbellQueued = false;
  private spaceWaiters: Array<() => void> = [];
  private readonly closeHandlers: Array<() => void> = [];

  private constructor(readonly dev: PciDeviceHandle, opts: E1000DriverOptions) {
    this.name = opts.name;
    this.log = (m) => opts.log?.(`e1000 ${dev.bdf} ${this.name}: ${m}`);
    this.bar = dev.bar(0);
  }

  /** e1000_probe: the function reset, its address read, its interrupt bound; the interface is down. */
  static async probe(dev: PciDeviceHandle, opts: E1000DriverOptions): Promise<E1000Driver> {
    const d = new E1000Driver(dev, opts);
    await d.init();
    return d;
  }

  private rd(off: number): number { return this.bar.read(off, 4) >>> 0; }
  private wr(off: number, v: number): void { this.bar.write(off, 4, v >>> 0); }

  private async init(): Promise<void> {
    const dev = this.dev;
    const id = await dev.cfgRead(0x00, 4);
    if ((id & 0xffff) !== E1000_VENDOR || !E1000_DEVICES.has(id >>> 16)) throw new Error(`[${(id & 0xffff).toString(16)}:${(id >>> 16).toString(16)}] is not an 82540EM`);
    const cmd = await dev.cfgRead(PCI_COMMAND, 2);
    await dev.cfgWrite(PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    if (this.rd(R.E1000_STATUS) === 0xffffffff) throw new Error('BAR0 reads all-ones');

    // e1000_reset_hw: interrupts masked, the global reset, masked again, ICR cleared.
    this.wr(R.E1000_IMC, 0xffffffff);
    this.wr(R.E1000_RCTL, 0);
    this.wr(R.E1000_TCTL, R.E1000_TCTL_PSP);
    this.wr(R.E1000_CTRL, this.rd(R.E1000_CTRL) | R.E1000_CTRL_RST);
    await new Promise((r) => setTimeout(r, 5)); // msleep(5)
    this.wr(R.E1000_IMC, 0xffffffff);
    this.rd(R.E1000_ICR);

    // The EEPROM: its checksum, then the MAC (words 0-2, low byte first).
    const words = new Uint16Array(EEPROM_WORDS);
    for (let i = 0; i < EEPROM_WORDS; i++) words[i] = this.eepromRead(i);
    const sum = words.reduce((a, w) => (a + w) & 0xffff, 0);
    if (sum !== EEPROM_SUM) throw new Error(`The EEPROM Checksum Is Not Valid (0x${sum.toString(16)})`);
    for (let i = 0; i < 3; i++) { this.mac[2 * i] = words[i]! & 0xff; this.mac[2 * i + 1] = words[i]! >>> 8; }
    if (this.mac[0]! & 1 || this.mac.every((b) => b === 0)) throw new Error('Invalid MAC Address');
    // e1000_init_rx_addrs: receive address 0 is ours, the others cleared; the multicast table cleared.
    this.wr(R.E1000_RAL(0), this.mac[0]! | this.mac[1]! << 8 | this.mac[2]! << 16 | this.mac[3]! << 24);
    this.wr(R.E1000_RAH(0), this.mac[4]! | this.mac[5]! << 8 | R.E1000_RAH_AV);
    for (let i = 1; i < 16; i++) { this.wr(R.E1000_RAL(i), 0); this.wr(R.E1000_RAH(i), 0); }
    for (let i = 0; i < 128; i++) this.wr(R.E1000_MTA + 4 * i, 0);
    this.wr(R.E1000_CTRL, this.rd(R.E1000_CTRL) | R.E1000_CTRL_SLU);

    this.msixVectors = await dev.enableMsix(1).catch(() => 0);
    dev.onInterrupt(0, () => this.interrupt());
    this.log(`${macHex(this.mac)}, ${this.msixVectors ? `MSI-X ${this.msixVectors}` : 'INTx'}`);
  }

  /** e1000_read_eeprom through EERD: start, then poll DONE. */
  private eepromRead(word: number): number {
    this.wr(R.E1000_EERD, word << R.E1000_EEPROM_RW_ADDR_SHIFT | R.E1000_EEPROM_RW_REG_START);
    for (let i = 0; i < 100_000; i++) {
      const v = this.rd(R.E1000_EERD);
      if (v & R.E1000_EEPROM_RW_REG_DONE) return v >>> R.E1000_EEPROM_RW_REG_DATA;
    }
    throw new Error(`EEPROM word ${word}: EERD never done`);
  }

  /** The link as STATUS shows it. */
  get linkUp(): boolean { return (this.rd(R.E1000_STATUS) & R.E1000_STATUS_LU) !== 0; }

  /** e1000_open: rings, receive and transmit on, interrupts unmasked. */
  open(): void {
    if (this.state === 'connected') return;
    if (this.state === 'closed') throw new Error('the device is gone');
    const r = this.rings ??= {
      tx: this.dev.dmaAlloc(TX_RING * R.E1000_DESC_SIZE),
      rx: this.dev.dmaAlloc(RX_RING * R.E1000_DESC_SIZE),
      txBufs: this.dev.dmaAlloc(TX_RING * BUF),
      rxBufs: this.dev.dmaAlloc(RX_RING * BUF),
    };
    r.tx.bytes.fill(0, 0, TX_RING * R.E1000_DESC_SIZE);
    r.rx.bytes.fill(0, 0, RX_RING * R.E1000_DESC_SIZE);
    const rxv = view(r.rx);
    for (let i = 0; i < RX_RING; i++) setAddr(rxv, i * R.E1000_DESC_SIZE, r.rxBufs.busAddr + i * BUF);
    this.txTail = this.txClean = this.txTailWritten = 0;
    this.rxNext = 0;
    this.rxSkipping = false;
    // e1000_configure_tx.
    this.wr(R.E1000_TDBAL, r.tx.busAddr % 0x100000000); this.wr(R.E1000_TDBAH, Math.floor(r.tx.busAddr / 0x100000000));
    this.wr(R.E1000_TDLEN, TX_RING * R.E1000_DESC_SIZE);
    this.wr(R.E1000_TDH, 0); this.wr(R.E1000_TDT, 0);
    this.wr(R.E1000_TIPG, TIPG);
    this.wr(R.E1000_TCTL, R.E1000_TCTL_EN | R.E1000_TCTL_PSP | TCTL_CT | TCTL_COLD);
    // e1000_configure_rx: the ring full of buffers but one (RDT one behind RDH).
    this.wr(R.E1000_RDBAL, r.rx.busAddr % 0x100000000); this.wr(R.E1000_RDBAH, Math.floor(r.rx.busAddr / 0x100000000));
    this.wr(R.E1000_RDLEN, RX_RING * R.E1000_DESC_SIZE);
    this.wr(R.E1000_RDH, 0); this.wr(R.E1000_RDT, RX_RING - 1);
    this.wr(R.E1000_RCTL, R.E1000_RCTL_EN | R.E1000_RCTL_BAM | R.E1000_RCTL_SECRC); // BSIZE 00: 2048 bytes
    this.state = 'connected';
    this.wr(R.E1000_IMS, IMS);
    this.log(`NIC Link is ${this.linkUp ? 'Up 1000 Mbps Full Duplex' : 'Down'}`);
  }

  /** e1000_close: the function quiet; what it had received is lost. */
  down(): void {
    if (this.state !== 'connected') return;
    this.wr(R.E1000_IMC, 0xffffffff);
    this.wr(R.E1000_RCTL, 0);
    this.wr(R.E1000_TCTL, R.E1000_TCTL_PSP);
    this.rd(R.E1000_ICR);
    this.state = 'down';
    for (const w of this.spaceWaiters.splice(0)) w();
  }

  /** NetDevice.transmit: into the next descriptor; false when down or the ring is full. */
  transmit(frame: Uint8Array): boolean {
    if (this.state !== 'connected' || frame.length > BUF) return false;
    const next = (this.txTail + 1) % TX_RING;
    if (next === this.txClean) { this.reapTx(); if (next === this.txClean) { this.stats.txRingFull++; return false; } }
    const r = this.rings!;
    const i = this.txTail;
    r.txBufs.bytes.set(frame, i * BUF);
    const dv = view(r.tx);
    const o = i * R.E1000_DESC_SIZE;
    setAddr(dv, o, r.txBufs.busAddr + i * BUF);
    dv.setUint16(o + 8, frame.length, true);
    dv.setUint8(o + 10, 0); // CSO
    dv.setUint8(o + 11, R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_IFCS | R.E1000_TXD_CMD_RS);
    dv.setUint32(o + 12, 0, true); // STA, CSS, special
    this.txTail = next;
    this.stats.txPackets++;
    this.stats.txBytes += frame.length;
    if (!this.doorbellQueued) { this.doorbellQueued = true; queueMicrotask(() => this.doorbell()); }
    return true;
  }

  /** One TDT write for every frame queued this turn. */
  private doorbell(): void {
    this.doorbellQueued = false;
    if (this.state !== 'connected' || this.txTail === this.txTailWritten) return;
    this.txTailWritten = this.txTail;
    this.wr(R.E1000_TDT, this.txTail);
  }

  txSpace(): Promise<void> {
    if (this.state !== 'connected' || (this.txTail + 1) % TX_RING !== this.txClean) return Promise.resolve();
    return new Promise((r) => this.spaceWaiters.push(r));
  }

  onReceive(fn: (frame: Uint8Array) => void): void { this.receive = fn; }

  onClose(fn: () => void): void { this.closeHandlers.push(fn); }

  /** e1000_intr: ICR (read to clear), the rings reaped, the level pirq's EOI. */
  private interrupt(): void {
    if (this.state === 'closed') return;
    this.stats.interrupts++;
    const icr = this.rd(R.E1000_ICR);
    if (icr === 0xffffffff) { this.log('the device is gone (ICR all-ones)'); this.gone(); return; }
    if (this.state === 'connected') {
      if (icr & R.E1000_ICR_LSC) this.log(`NIC Link is ${this.linkUp ? 'Up 1000 Mbps Full Duplex' : 'Down'}`);
      if (icr & R.E1000_ICR_RXO) this.stats.rxNoBuffer++;
      this.reapRx();
      this.reapTx();
    }
    this.dev.eoi(0);
  }

  /** e1000_clean_rx_irq: frames handed up, their descriptors given back. */
  private reapRx(): void {
    const r = this.rings!;
    const dv = view(r.rx);
    let done = 0;
    for (;;) {
      const o = this.rxNext * R.E1000_DESC_SIZE;
      const status = dv.getUint8(o + 12);
      if (!(status & R.E1000_RXD_STAT_DD)) break;
      const len = dv.getUint16(o + 8, true);
      const errors = dv.getUint8(o + 13);
      const at = this.rxNext * BUF;
      // A frame over one buffer (never with the MTU of 1500): its pieces are dropped, as e1000 without jumbo frames does.
      if (this.rxSkipping || !(status & R.E1000_RXD_STAT_EOP)) {
        this.rxSkipping = !(status & R.E1000_RXD_STAT_EOP);
        this.stats.rxDropped++;
      } else if (errors & 0x80 /* RXE */ || len === 0) {
        this.stats.rxDropped++;
      } else {
        const frame = r.rxBufs.bytes.slice(at, at + len);
        this.stats.rxPackets++;
        this.stats.rxBytes += len;
        this.receive(frame);
      }
      dv.setUint8(o + 12, 0);
      this.rxNext = (this.rxNext + 1) % RX_RING;
      done++;
      if (this.state !== 'connected') return;
    }
    // The descriptors reaped go back: RDT is the last one the device may fill.
    if (done) this.wr(R.E1000_RDT, (this.rxNext + RX_RING - 1) % RX_RING);
  }

  /** e1000_clean_tx_irq: descriptors written back with DD are free again. */
  private reapTx(): void {
    if (!this.rings) return;
    const dv = view(this.rings.tx);
    const before = this.txClean;
    while (this.txClean !== this.txTail && (dv.getUint8(this.txClean * R.E1000_DESC_SIZE + 12) & R.E1000_TXD_STAT_DD)) {
      this.txClean = (this.txClean + 1) % TX_RING;
    }
    if (this.txClean !== before) for (const w of this.spaceWaiters.splice(0)) w();
  }

  /** The function went (unplug, or the bus with it): the interface with it. */
  gone(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const w of this.spaceWaiters.splice(0)) w();
    for (const f of this.closeHandlers.splice(0)) f();
  }

  async close(): Promise<void> {
    if (this.state === 'connected') { try { this.down(); } catch { /* the device may be gone */ } }
    this.gone();
  }
}

const view = (b: PciDmaBuffer): DataView => new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
function setAddr(dv: DataView, o: number, addr: number): void {
  dv.setUint32(o, addr % 0x100000000, true);
  dv.setUint32(o + 4, Math.floor(addr / 0x100000000), true);
}
const macHex = (m: Uint8Array) => Array.from(m, (b) => b.toString(16).padStart(2, '0')).join(':');

