// The 16550A UART (shared/hw/uart16550.ts) driven through its ports as
// SeaBIOS (src/hw/serialio.c detect_serial) and Linux's 8250 driver
// (8250_port.c: autoconfig, autoconfig_16550a, size_fifo, autoconfig_irq,
// serial8250_do_startup, the tx/rx interrupt paths) drive it.
import t from 'tap';
import {
  Uart16550, UART_FCR, UART_IER, UART_IIR, UART_LCR, UART_LSR, UART_MCR, UART_MSR, UART_RX, UART_SCR, UART_TX,
} from '../../shared/hw/uart16550.js';
import { MemCharBackend, testMachine } from './fakes.js';

const COM1 = 0x3f8;

function setup(opts: ConstructorParameters<typeof Uart16550>[2] = {}) {
  const m = testMachine();
  const be = new MemCharBackend();
  const uart = new Uart16550(m, be, opts);
  const base = opts.base ?? COM1;
  const inb = (reg: number) => m.ports.read(base + reg, 1);
  const outb = (reg: number, v: number) => m.ports.write(base + reg, 1, v);
  return { m, be, uart, inb, outb, irq: () => m.irq.isa[opts.irq ?? 4] };
}

t.test('reset state and SeaBIOS detect_serial', async (t) => {
  const { inb, outb, irq, m } = setup();
  t.same(m.ports.list(), [{ base: COM1, length: 8, name: 'uart16550@0x3f8' }], 'COM1 claims 0x3F8-0x3FF');
  t.equal(inb(UART_IIR), 0x01, 'IIR: no interrupt, FIFOs off');
  t.equal(inb(UART_LSR), 0x60, 'LSR: THRE and TEMT');
  t.equal(inb(UART_MSR), 0xb0, 'MSR: CTS, DSR, DCD as connected, no deltas');
  t.equal(inb(UART_LCR), 0);
  t.equal(inb(UART_MCR), 0);
  // detect_serial: IER=2 must read back and IIR must at once say THR empty.
  outb(UART_IER, 0x02);
  t.equal(inb(UART_IER), 0x02);
  t.equal(inb(UART_IIR) & 0x3f, 0x02, 'THRI pending as soon as it is enabled');
  t.equal(inb(UART_IIR) & 0x3f, 0x01, 'reading IIR acknowledged it');
  outb(UART_IER, 0);
  t.equal(irq(), 0, 'no interrupt without OUT2');
});

t.test('Linux autoconfig finds a 16550A with a 16-byte FIFO', async (t) => {
  const { inb, outb } = setup();
  // IER existence test.
  const scratch = inb(UART_IER);
  outb(UART_IER, 0);
  t.equal(inb(UART_IER) & 0x0f, 0);
  outb(UART_IER, 0x0f);
  t.equal(inb(UART_IER) & 0x0f, 0x0f);
  outb(UART_IER, scratch);
  // Loopback test: LOOP | OUT2 | RTS reads back as DCD | CTS.
  const saveMcr = inb(UART_MCR);
  outb(UART_MCR, 0x10 | 0x0a);
  t.equal(inb(UART_MSR) & 0xf0, 0x90, 'loopback maps RTS to CTS and OUT2 to DCD');
  outb(UART_MCR, saveMcr);
  // EFR probe with LCR=0xBF, then the FIFO type from IIR bits 7:6.
  outb(UART_LCR, 0xbf);
  outb(2, 0);
  outb(UART_LCR, 0);
  outb(UART_FCR, 0x01);
  t.equal(inb(UART_IIR) >> 6, 3, 'IIR bits 7:6 = 3: a 16550A');
  // autoconfig_16550a: no EFR with DLAB (IIR reads non-zero), nor with 0xBF.
  outb(UART_LCR, 0x80);
  t.not(inb(2), 0, 'no EFR under DLAB');
  outb(UART_LCR, 0xbf);
  t.not(inb(2), 0, 'no EFR under 0xBF');
  // National SuperIO probe: bit 4 of "EXCR1" (IIR here) must not follow MCR.LOOP.
  outb(UART_LCR, 0);
  const status1 = inb(UART_MCR);
  outb(UART_LCR, 0xe0);
  let status2 = inb(2);
  t.equal((status1 ^ status2) & 0x10, 0);
  outb(UART_LCR, 0);
  outb(UART_MCR, status1 ^ 0x10);
  outb(UART_LCR, 0xe0);
  status2 = inb(2);
  outb(UART_LCR, 0);
  outb(UART_MCR, status1);
  t.equal((status2 ^ status1) & 0x10, 0, 'not a NatSemi part');
  // TI16750 probe: the 64-byte bit never shows in IIR bit 5.
  outb(UART_FCR, 0x01 | 0x20);
  const iir1 = inb(UART_IIR) >> 5;
  outb(UART_FCR, 0x01);
  outb(UART_LCR, 0x80);
  outb(UART_FCR, 0x01 | 0x20);
  const iir2 = inb(UART_IIR) >> 5;
  outb(UART_FCR, 0x01);
  outb(UART_LCR, 0);
  t.not(iir1 === 6 && iir2 === 7, true, 'not a 16750');
  // IER bit 6 (XScale UUE) does not stick.
  outb(UART_IER, 0x40);
  t.equal(inb(UART_IER) & 0x40, 0, 'not an XScale');
  // size_fifo: in loopback at divisor 1, 256 bytes written, the FIFO's worth comes back.
  outb(UART_FCR, 0x07);
  outb(UART_MCR, 0x10);
  outb(UART_LCR, 0x80);
  outb(0, 1);
  outb(1, 0);
  outb(UART_LCR, 0x03);
  for (let i = 0; i < 256; i++) outb(UART_TX, i);
  t.equal(inb(UART_LSR) & 0x02, 0x02, 'overrun reported after the FIFO filled');
  t.equal(inb(UART_LSR) & 0x02, 0, 'OE clears once LSR is read');
  const got: number[] = [];
  while (inb(UART_LSR) & 0x01 && got.length < 256) got.push(inb(UART_RX));
  t.equal(got.length, 16, 'FIFO depth 16');
  t.same(got, Array.from({ length: 16 }, (_, i) => i), 'the first 16 bytes, in order');
});

t.test('divisor latch, LCR and scratch', async (t) => {
  const { inb, outb, uart } = setup();
  outb(UART_LCR, 0x80);
  outb(0, 0x01);
  outb(1, 0x00);
  t.equal(inb(0), 0x01, 'DLL');
  t.equal(inb(1), 0x00, 'DLM');
  outb(UART_LCR, 0x03);
  t.equal(inb(UART_LCR), 0x03);
  t.equal(uart.charTimeNs(), Math.round(10 * 1e9 / 115200), '8N1 at 115200: 10 bits');
  outb(UART_IER, 0x05);
  t.equal(inb(UART_IER), 0x05, 'IER again once DLAB is clear');
  outb(UART_SCR, 0xa5);
  t.equal(inb(UART_SCR), 0xa5);
  outb(UART_SCR, 0x5a);
  t.equal(inb(UART_SCR), 0x5a);
});

t.test('Linux autoconfig_irq: OUT2 gates the line, loopback keeps it off', async (t) => {
  const { inb, outb, irq, m } = setup();
  outb(UART_MCR, 0x01 | 0x02 | 0x08);
  outb(UART_IER, 0x0f);
  inb(UART_LSR); inb(UART_RX); inb(UART_IIR); inb(UART_MSR);
  outb(UART_TX, 0xff);
  t.equal(irq(), 1, 'IRQ 4 asserted: THR empty, OUT2 set');
  outb(UART_MCR, 0x03);
  t.equal(irq(), 0, 'OUT2 clear: the PC buffer is off');
  outb(UART_MCR, 0x18);
  t.equal(irq(), 0, 'loopback forces OUT2 inactive');
  outb(UART_MCR, 0x08);
  t.equal(irq(), 1, 'back on');
  outb(UART_IER, 0);
  t.equal(irq(), 0);
  // IER=0x0f raises it, the IIR read acknowledges THRE, the TX write raises it again; then the gate.
  t.same(m.irq.log, ['isa4=1', 'isa4=0', 'isa4=1', 'isa4=0', 'isa4=1', 'isa4=0'], 'only changes of level reach the PIC');
});

t.test('serial8250_do_startup: THRE re-arms on every IER write and TX goes out in a batch', async (t) => {
  const { inb, outb, irq, be, m } = setup();
  outb(UART_FCR, 0x01 | 0x02 | 0x04 | 0x80); // FIFO on, cleared, trigger 8
  outb(UART_LCR, 0x03);
  outb(UART_MCR, 0x0b); // DTR RTS OUT2
  // The THRE test: enable, read IIR, disable, enable again: THRI both times.
  outb(UART_IER, 0x02);
  const iir1 = inb(UART_IIR);
  outb(UART_IER, 0);
  outb(UART_IER, 0x02);
  const iir = inb(UART_IIR);
  outb(UART_IER, 0);
  t.equal(iir1 & 0x0f, 0x02);
  t.equal(iir & 0x0f, 0x02, 'a working UART re-asserts THRE (no UART_BUG_THRE)');
  t.equal(iir & 0xc0, 0xc0, 'FIFO-enabled bits');
  // A console write: enable THRI, the interrupt comes, 16 bytes per interrupt.
  const msg = 'Linux version 6.1.0 (xenemu) #1 SMP\r\n';
  let sent = 0;
  outb(UART_IER, 0x07);
  let interrupts = 0;
  while (irq()) {
    interrupts++;
    const id = inb(UART_IIR) & 0x0f;
    t.equal(id, 0x02, 'THR empty');
    if (sent === msg.length) { outb(UART_IER, 0x05); break; }
    for (let n = 0; n < 16 && sent < msg.length; n++) outb(UART_TX, msg.charCodeAt(sent++));
    t.equal(inb(UART_LSR) & 0x60, 0x60, 'THRE and TEMT: no pacing');
  }
  t.equal(interrupts, Math.ceil(msg.length / 16) + 1, 'one interrupt per 16 bytes and one to stop');
  t.equal(be.writes.length, 0, 'output waits for the batch timer');
  m.clock.runDue();
  t.equal(be.output, msg);
  t.ok(be.writes.length <= 2, `${be.writes.length} back-end write(s) for ${msg.length} bytes`);
});

t.test('a full batch is written at once', async (t) => {
  const { outb, be } = setup({ txBatch: 8 });
  for (const c of 'abcdefghij') outb(UART_TX, c.charCodeAt(0));
  t.equal(be.output, 'abcdefgh', 'eight bytes went when the batch filled');
  t.equal(be.writes.length, 1);
});

t.test('receive: trigger level, character timeout, queued input never dropped', async (t) => {
  const { inb, outb, irq, be, m, uart } = setup();
  outb(UART_LCR, 0x03);
  outb(UART_FCR, 0x01 | 0x02 | 0x04 | 0x80); // trigger 8
  outb(UART_MCR, 0x0b);
  outb(UART_IER, 0x05); // RDI | RLSI
  be.type('abc');
  t.equal(inb(UART_LSR) & 0x01, 1, 'DR');
  t.equal(irq(), 0, 'below the trigger level: no interrupt yet');
  const charNs = uart.charTimeNs();
  m.clock.advance(4 * charNs - 1);
  t.equal(irq(), 0, 'not before four character times');
  m.clock.advance(1);
  t.equal(irq(), 1, 'character timeout');
  t.equal(inb(UART_IIR) & 0x0f, 0x0c, 'IIR says timeout');
  t.equal(inb(UART_RX), 0x61);
  t.equal(irq(), 0, 'a read clears the timeout indication');
  m.clock.advance(4 * charNs);
  t.equal(irq(), 1, 'the timeout comes back for what is left');
  t.equal(String.fromCharCode(inb(UART_RX), inb(UART_RX)), 'bc');
  t.equal(inb(UART_LSR) & 0x01, 0);
  t.equal(irq(), 0);

  // 100 bytes at once: 16 in the FIFO, 84 queued; the interrupt comes at the trigger level.
  const text = Array.from({ length: 100 }, (_, i) => String.fromCharCode(33 + (i % 90))).join('');
  be.type(text);
  t.equal(uart.rxQueued, 84, 'the rest waits, nothing is lost');
  t.equal(irq(), 1);
  t.equal(inb(UART_IIR) & 0x0f, 0x04, 'received data available');
  // serial8250_rx_chars: read while DR, up to 256.
  let got = '';
  for (let n = 0; n < 256 && inb(UART_LSR) & 0x01; n++) got += String.fromCharCode(inb(UART_RX));
  t.equal(got, text, 'all 100 bytes in order');
  t.equal(inb(UART_LSR) & 0x02, 0, 'no overrun');
  t.equal(irq(), 0);
  t.equal(uart.rxQueued, 0);
});

t.test('non-FIFO (16450) mode: one byte at a time, interrupt per byte', async (t) => {
  const { inb, outb, irq, be } = setup();
  outb(UART_MCR, 0x08);
  outb(UART_IER, 0x01);
  be.type('xy');
  t.equal(irq(), 1, 'RDI at one byte');
  t.equal(inb(UART_IIR), 0x04, 'no FIFO bits');
  t.equal(inb(UART_RX), 0x78);
  t.equal(irq(), 1, 'the next byte came in behind it');
  t.equal(inb(UART_RX), 0x79);
  t.equal(irq(), 0);
});

t.test('interrupt priority: line status > data > THRE > modem status', async (t) => {
  const { inb, outb, uart } = setup();
  outb(UART_FCR, 0x01);
  outb(UART_MCR, 0x10 | 0x08);
  outb(UART_IER, 0x0f);
  // A loopback overrun with data waiting, THRE pending and a modem delta.
  for (let i = 0; i < 17; i++) outb(UART_TX, i);
  outb(UART_MCR, 0x10 | 0x08 | 0x01); // DTR -> DSR changes: DDSR
  t.equal(inb(UART_IIR) & 0x0f, 0x06, 'receiver line status first');
  t.equal(inb(UART_LSR) & 0x03, 0x03, 'DR and OE');
  t.equal(inb(UART_IIR) & 0x0f, 0x04, 'then received data');
  for (let i = 0; i < 16; i++) inb(UART_RX);
  t.equal(inb(UART_IIR) & 0x0f, 0x02, 'then THR empty');
  t.equal(inb(UART_IIR) & 0x0f, 0x00, 'then modem status');
  // Entering loopback dropped CTS and DSR (only OUT2->DCD stayed on), then DTR raised DSR.
  t.equal(inb(UART_MSR) & 0x0f, 0x03, 'DCTS and DDSR');
  t.equal(inb(UART_IIR) & 0x0f, 0x01, 'nothing left');
  t.equal(uart.stats.overruns, 1);
});

t.test('modem status deltas follow the lines, and input waits out loopback', async (t) => {
  const { inb, outb, uart, be, irq } = setup();
  outb(UART_MCR, 0x08);
  outb(UART_IER, 0x08);
  uart.setModemInputs({ cts: true, dsr: true, dcd: false, ri: true });
  t.equal(irq(), 1, 'modem status interrupt');
  t.equal(inb(UART_MSR), 0x50 | 0x20 | 0x08, 'CTS DSR RI, DDCD');
  uart.setModemInputs({ cts: true, dsr: true, dcd: false, ri: false });
  t.equal(inb(UART_MSR) & 0x0f, 0x04, 'TERI on the trailing edge of RI');
  t.equal(inb(UART_MSR) & 0x0f, 0, 'deltas clear on read');
  t.equal(irq(), 0);
  outb(UART_IER, 0x01);
  outb(UART_MCR, 0x18);
  inb(UART_MSR);
  be.type('z');
  t.equal(inb(UART_LSR) & 1, 0, 'loopback disconnects the receiver from the line');
  outb(UART_MCR, 0x08);
  t.equal(inb(UART_LSR) & 1, 1, 'the byte arrives once loopback ends');
  t.equal(inb(UART_RX), 0x7a);
});

t.test('base and IRQ are parameters; word accesses are two ports; dispose', async (t) => {
  const { m, inb, outb, irq, uart } = setup({ base: 0x2f8, irq: 3 });
  t.same(m.ports.list().map((r) => r.base), [0x2f8]);
  outb(UART_LCR, 0x80);
  m.ports.write(0x2f8, 2, 0x0201); // DLL=1, DLM=2 in one 16-bit out
  t.equal(inb(0), 0x01);
  t.equal(inb(1), 0x02);
  t.equal(m.ports.read(0x2f8, 2), 0x0201);
  outb(UART_LCR, 0);
  outb(UART_MCR, 0x08);
  outb(UART_IER, 0x02);
  t.equal(irq(), 1, 'IRQ 3');
  uart.dispose();
  t.equal(irq(), 0, 'lowered on dispose');
  t.same(m.ports.list(), []);
  t.equal(m.clock.pending, 0, 'no timer left');
});
