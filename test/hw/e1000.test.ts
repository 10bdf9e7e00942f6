// The 82540EM (shared/hw/e1000.ts) on a PCI bus, driven as Linux's e1000
// driver drives it (e1000_main.c, e1000_hw.c): probe and BAR placement,
// reset through the I/O BAR, the EEPROM bit-banged through EECD and read
// through EERD, the PHY through MDIC, interrupts, the transmit ring with
// legacy, checksum-offload and TSO descriptors, the receive ring with its
// filters, and guests that program nonsense.
import t from 'tap';
import { E1000, E1000Pci, TX_BUDGET_DESCRIPTORS } from '../../shared/hw/e1000.js';
import * as R from '../../shared/hw/e1000_regs.js';
import { crc32, inetChecksum, onesSum } from '../../shared/hw/net_checksum.js';
import { PCI_COMMAND } from '../../shared/hw/pci.js';
import { PciBus } from '../../shared/hw/pci.js';
import { MemNetBackend, testMachine, type TestMachine } from './fakes.js';

const MAC = '52:54:00:12:34:56';
const MAC_BYTES = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const BAR0 = 0xfebc0000;
const BAR1 = 0xc000;
const SLOT = 3;
const TX_RING = 0x10000;
const RX_RING = 0x20000;
const TX_BUFS = 0x30000;
const RX_BUFS = 0x80000;

interface Nic {
  m: TestMachine; net: MemNetBackend; dev: E1000Pci;
  rd(off: number): number; wr(off: number, v: number): void;
  intx(): 0 | 1;
}

function plug(opts: { master?: boolean } = {}): Nic {
  const m = testMachine(4 << 20);
  const net = new MemNetBackend();
  const dev = new E1000Pci(m, net, { mac: MAC });
  const bus = new PciBus(m);
  bus.plug(dev, SLOT);
  const devfn = SLOT << 3;
  bus.configWrite(devfn, 0x10, 4, BAR0);
  bus.configWrite(devfn, 0x14, 4, BAR1 | 1);
  bus.configWrite(devfn, PCI_COMMAND, 2, 0x3 | (opts.master === false ? 0 : 0x4));
  return {
    m, net, dev,
    rd: (off) => m.mmio.read(BAR0 + off, 4),
    wr: (off, v) => m.mmio.write(BAR0 + off, 4, v >>> 0),
    intx: () => m.irq.pci(SLOT, 0),
  };
}

/** Linux's e1000_reset_hw for an 82540: quiesce, then CTRL.RST through IOADDR/IODATA. */
function resetHw(n: Nic): void {
  n.wr(R.E1000_IMC, 0xffffffff);
  n.wr(R.E1000_RCTL, 0);
  n.wr(R.E1000_TCTL, R.E1000_TCTL_PSP);
  n.rd(R.E1000_STATUS);
  const ctrl = n.rd(R.E1000_CTRL);
  n.m.ports.write(BAR1, 4, R.E1000_CTRL);
  n.m.ports.write(BAR1 + 4, 4, (ctrl | R.E1000_CTRL_RST) >>> 0);
  n.wr(R.E1000_IMC, 0xffffffff);
  n.rd(R.E1000_ICR);
}

/** e1000_read_eeprom for a Microwire part: acquire, opcode 110 + 6 address bits, 16 bits in, release. */
function eepromReadMicrowire(n: Nic, word: number): number {
  let eecd = n.rd(R.E1000_EECD);
  eecd |= R.E1000_EECD_REQ;
  n.wr(R.E1000_EECD, eecd);
  eecd = n.rd(R.E1000_EECD);
  if (!(eecd & R.E1000_EECD_GNT)) throw new Error('no EEPROM grant');
  eecd &= ~(R.E1000_EECD_DI | R.E1000_EECD_SK);
  n.wr(R.E1000_EECD, eecd);
  eecd |= R.E1000_EECD_CS;
  n.wr(R.E1000_EECD, eecd);
  const shiftOut = (data: number, count: number) => {
    let mask = 1 << (count - 1);
    eecd &= ~R.E1000_EECD_DO;
    do {
      eecd &= ~R.E1000_EECD_DI;
      if (data & mask) eecd |= R.E1000_EECD_DI;
      n.wr(R.E1000_EECD, eecd);
      n.wr(R.E1000_EECD, eecd | R.E1000_EECD_SK);
      n.wr(R.E1000_EECD, eecd);
      mask >>= 1;
    } while (mask);
    eecd &= ~R.E1000_EECD_DI;
    n.wr(R.E1000_EECD, eecd);
  };
  shiftOut(0b110, 3);
  shiftOut(word, 6);
  let data = 0;
  eecd = n.rd(R.E1000_EECD) & ~(R.E1000_EECD_DO | R.E1000_EECD_DI);
  for (let i = 0; i < 16; i++) {
    data <<= 1;
    eecd |= R.E1000_EECD_SK;
    n.wr(R.E1000_EECD, eecd);
    eecd = n.rd(R.E1000_EECD) & ~R.E1000_EECD_DI;
    if (eecd & R.E1000_EECD_DO) data |= 1;
    eecd &= ~R.E1000_EECD_SK;
    n.wr(R.E1000_EECD, eecd);
  }
  // e1000_standby_eeprom, then e1000_release_eeprom.
  eecd &= ~(R.E1000_EECD_CS | R.E1000_EECD_SK);
  n.wr(R.E1000_EECD, eecd);
  eecd &= ~R.E1000_EECD_REQ;
  n.wr(R.E1000_EECD, eecd);
  return data;
}

/** e1000_read_phy_reg_ex: MDIC read at PHY address 1, polling READY. */
function phyRead(n: Nic, reg: number, phyAddr = 1): { data: number; error: boolean } {
  n.wr(R.E1000_MDIC, (reg << R.E1000_MDIC_REG_SHIFT) | (phyAddr << R.E1000_MDIC_PHY_SHIFT) | R.E1000_MDIC_OP_READ);
  const mdic = n.rd(R.E1000_MDIC);
  if (!(mdic & R.E1000_MDIC_READY)) throw new Error('MDIC not ready');
  return { data: mdic & 0xffff, error: (mdic & R.E1000_MDIC_ERROR) !== 0 };
}

function phyWrite(n: Nic, reg: number, v: number): void {
  n.wr(R.E1000_MDIC, v | (reg << R.E1000_MDIC_REG_SHIFT) | (1 << R.E1000_MDIC_PHY_SHIFT) | R.E1000_MDIC_OP_WRITE);
  if (!(n.rd(R.E1000_MDIC) & R.E1000_MDIC_READY)) throw new Error('MDIC not ready');
}

/** e1000_configure_tx with a ring of `count` descriptors. */
function setupTx(n: Nic, count = 16): void {
  n.wr(R.E1000_TDBAL, TX_RING);
  n.wr(R.E1000_TDBAH, 0);
  n.wr(R.E1000_TDLEN, count * 16);
  n.wr(R.E1000_TDH, 0);
  n.wr(R.E1000_TDT, 0);
  n.wr(R.E1000_TIPG, 0x00602008);
  n.wr(R.E1000_TCTL, R.E1000_TCTL_EN | R.E1000_TCTL_PSP | (0x0f << 4) | (0x40 << 12));
}

/** e1000_configure_rx with `count` descriptors of 2048-byte buffers, RDT one behind RDH as Linux leaves it. */
function setupRx(n: Nic, count = 8, extra = 0): void {
  const mem = n.m.mem.bytes;
  const dv = new DataView(mem.buffer);
  for (let i = 0; i < count; i++) {
    dv.setUint32(RX_RING + i * 16, RX_BUFS + i * 0x4000, true);
    dv.setUint32(RX_RING + i * 16 + 4, 0, true);
  }
  n.wr(R.E1000_RDBAL, RX_RING);
  n.wr(R.E1000_RDBAH, 0);
  n.wr(R.E1000_RDLEN, count * 16);
  n.wr(R.E1000_RDH, 0);
  n.wr(R.E1000_RDT, count - 1);
  n.wr(R.E1000_RCTL, R.E1000_RCTL_EN | R.E1000_RCTL_BAM | extra);
}

interface TxDesc { addr: number; len: number; cmd: number; cso?: number; css?: number; popts?: number; special?: number; dtyp?: number }

/** Writes descriptors at ring slots from `slot` and returns the next slot. */
function putTx(n: Nic, slot: number, descs: TxDesc[]): number {
  const dv = new DataView(n.m.mem.bytes.buffer);
  for (const d of descs) {
    const at = TX_RING + slot * 16;
    dv.setUint32(at, d.addr % 0x100000000, true);
    dv.setUint32(at + 4, Math.floor(d.addr / 0x100000000), true);
    const ext = (d.cmd & R.E1000_TXD_CMD_DEXT) !== 0;
    const lower = ext ? (d.len & 0xfffff) | ((d.dtyp ?? 1) << 20) : (d.len & 0xffff) | ((d.cso ?? 0) << 16);
    dv.setUint32(at + 8, (lower | (d.cmd << 24)) >>> 0, true);
    n.m.mem.bytes[at + 12] = 0;
    n.m.mem.bytes[at + 13] = ext ? d.popts ?? 0 : d.css ?? 0;
    dv.setUint16(at + 14, d.special ?? 0, true);
    slot++;
  }
  return slot;
}

/** A context descriptor at `slot`. */
function putContext(n: Nic, slot: number, c: { ipcss: number; ipcso: number; ipcse: number; tucss: number; tucso: number; tucse: number;
  paylen: number; tucmd: number; hdrlen: number; mss: number }): number {
  const at = TX_RING + slot * 16;
  const b = n.m.mem.bytes;
  const dv = new DataView(b.buffer);
  b[at] = c.ipcss; b[at + 1] = c.ipcso; dv.setUint16(at + 2, c.ipcse, true);
  b[at + 4] = c.tucss; b[at + 5] = c.tucso; dv.setUint16(at + 6, c.tucse, true);
  dv.setUint32(at + 8, ((c.paylen & 0xfffff) | (c.tucmd << 24)) >>> 0, true);
  b[at + 12] = 0; b[at + 13] = c.hdrlen; dv.setUint16(at + 14, c.mss, true);
  return slot + 1;
}

function txStatus(n: Nic, slot: number): number { return n.m.mem.bytes[TX_RING + slot * 16 + 12]!; }

function rxDesc(n: Nic, slot: number) {
  const at = RX_RING + slot * 16;
  const dv = new DataView(n.m.mem.bytes.buffer);
  return { length: dv.getUint16(at + 8, true), csum: dv.getUint16(at + 10, true), status: n.m.mem.bytes[at + 12]!,
    errors: n.m.mem.bytes[at + 13]!, special: dv.getUint16(at + 14, true) };
}

function rxData(n: Nic, slot: number, len: number): Uint8Array { return n.m.mem.bytes.slice(RX_BUFS + slot * 0x4000, RX_BUFS + slot * 0x4000 + len); }

function ether(dst: number[], src: number[], type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst); f.set(src, 6); f[12] = type >> 8; f[13] = type & 0xff; f.set(payload, 14);
  return f;
}

const SRC_IP = [10, 0, 0, 1];
const DST_IP = [10, 0, 0, 2];

/** An Ethernet/IPv4/TCP frame with 12 bytes of TCP options (Linux's timestamps) and a correct or zero checksum. */
function tcpFrame(payload: Uint8Array, opts: { seq?: number; flags?: number; id?: number; checksums?: boolean; dst?: number[] } = {}): Uint8Array {
  const tcpLen = 32 + payload.length;
  const ip = new Uint8Array(20 + tcpLen);
  const v = new DataView(ip.buffer);
  ip[0] = 0x45; v.setUint16(2, ip.length); v.setUint16(4, opts.id ?? 0x1234); v.setUint16(6, 0x4000); ip[8] = 64; ip[9] = 6;
  ip.set(SRC_IP, 12); ip.set(DST_IP, 16);
  v.setUint16(20, 40000); v.setUint16(22, 80); v.setUint32(24, opts.seq ?? 1000); v.setUint32(28, 1);
  ip[32] = 8 << 4; ip[33] = opts.flags ?? 0x18; v.setUint16(34, 502);
  ip[40] = 1; ip[41] = 1; ip[42] = 8; ip[43] = 10; // NOP NOP timestamp
  ip.set(payload, 52);
  if (opts.checksums !== false) {
    v.setUint16(10, inetChecksum(ip, 0, 20));
    v.setUint16(36, inetChecksum(ip, 20, ip.length, onesSum(ip, 12, 20, 6 + tcpLen)));
  }
  return ether(opts.dst ?? MAC_BYTES, [0x52, 0x54, 0, 0, 0, 1], 0x0800, ip);
}

function tcpChecksumOk(frame: Uint8Array): boolean {
  const ip = frame.subarray(14);
  const total = (ip[2]! << 8) | ip[3]!;
  return onesSum(ip, 20, total, onesSum(ip, 12, 20, 6 + total - 20)) === 0xffff;
}

t.test('PCI identity and BARs as QEMU\'s e1000', async (t) => {
  const n = plug();
  const bus = new PciBus(testMachine());
  const d2 = new E1000Pci(testMachine(), new MemNetBackend(), { mac: MAC });
  bus.plug(d2, 4);
  t.equal(bus.configRead(4 << 3, 0, 4), 0x100e8086, '8086:100E');
  t.equal(bus.configRead(4 << 3, 0x08, 4) >>> 8, 0x020000, 'class Ethernet');
  t.equal(bus.configRead(4 << 3, 0x2c, 4), 0x001e8086, 'subsystem 8086:001E');
  t.equal(bus.configRead(4 << 3, 0x3d, 1), 1, 'INTA#');
  bus.configWrite(4 << 3, 0x10, 4, 0xffffffff);
  bus.configWrite(4 << 3, 0x14, 4, 0xffffffff);
  t.equal(bus.configRead(4 << 3, 0x10, 4), 0xfffe0000, 'BAR0: 128 KiB memory');
  t.equal(bus.configRead(4 << 3, 0x14, 4), 0xffffffc1, 'BAR1: 64 I/O ports (all 32 bits above the size writable, as QEMU: SeaBIOS sizes from them)');
  t.same(n.m.mmio.list(), [{ base: BAR0, length: 0x20000, name: 'e1000 BAR0' }]);
  t.same(n.m.ports.list(), [{ base: BAR1, length: 0x40, name: 'e1000 BAR1' }]);
});

t.test('reset through IOADDR/IODATA, EEPROM by EECD and EERD, MAC in RAR0', async (t) => {
  const n = plug();
  n.wr(R.E1000_RAL(0), 0xdeadbeef);
  n.wr(R.E1000_CTRL, n.rd(R.E1000_CTRL) | R.E1000_CTRL_VME);
  resetHw(n);
  t.equal(n.rd(R.E1000_CTRL) & (R.E1000_CTRL_RST | R.E1000_CTRL_VME), 0, 'RST self-clears and the registers went back to defaults');
  t.equal(n.rd(R.E1000_RAL(0)), 0x12005452, 'RAL0 from the EEPROM');
  t.equal(n.rd(R.E1000_RAH(0)), (0x80000000 | 0x5634) >>> 0, 'RAH0 valid');
  n.m.ports.write(BAR1, 4, R.E1000_STATUS);
  t.equal(n.m.ports.read(BAR1 + 4, 4), n.rd(R.E1000_STATUS), 'IODATA reads the register IOADDR names');
  t.equal(n.m.ports.read(BAR1, 4), R.E1000_STATUS, 'IOADDR reads back');

  const words: number[] = [];
  for (let i = 0; i < 64; i++) words.push(eepromReadMicrowire(n, i));
  t.equal(words.reduce((a, b) => (a + b) & 0xffff, 0), 0xbaba, 'e1000_validate_eeprom_checksum: words 0-0x3F sum to 0xBABA');
  t.same([words[0]! & 0xff, words[0]! >> 8, words[1]! & 0xff, words[1]! >> 8, words[2]! & 0xff, words[2]! >> 8], MAC_BYTES, 'MAC in words 0-2');
  t.equal(words[0x0d], 0x100e, 'device ID word');
  t.equal(words[0x0f]! & 0x3000, 0, 'ICW2: no pause, so Linux leaves flow control off');
  t.equal(n.rd(R.E1000_EECD) & (R.E1000_EECD_PRES | R.E1000_EECD_SIZE), R.E1000_EECD_PRES, 'present, 64 words');
  // EERD: start, then DONE with the word.
  n.wr(R.E1000_EERD, (1 << 8) | R.E1000_EEPROM_RW_REG_START);
  const eerd = n.rd(R.E1000_EERD);
  t.ok(eerd & R.E1000_EEPROM_RW_REG_DONE, 'DONE');
  t.equal(eerd >>> 16, words[1], 'EERD data');
});

t.test('PHY through MDIC: an M88E1011 with link up at 1000 full', async (t) => {
  const n = plug();
  resetHw(n);
  const id = (phyRead(n, 2).data << 16) | (phyRead(n, 3).data & 0xfff0);
  t.equal(id >>> 0, 0x01410c20, 'M88E1011_I_PHY_ID');
  const st1 = phyRead(n, 1).data;
  const st2 = phyRead(n, 1).data;
  t.ok(st1 & 0x0004 && st2 & 0x0004, 'link up');
  t.ok(st2 & 0x0020, 'auto-negotiation complete');
  t.equal(phyRead(n, 10).data & 0x3c00, 0x3c00, '1000BASE-T status: receivers OK, partner 1000 capable');
  t.equal(phyRead(n, 0x11).data & 0xac00, 0xac00, 'M88 specific status: 1000, full, resolved, link');
  t.equal(phyRead(n, 0x11).data & 0x20, 0, 'no downshift');
  t.equal(phyRead(n, 5).data & 0x01e0, 0x01e0, 'partner advertises 10/100');
  t.ok(phyRead(n, 1, 2).error, 'another PHY address errors');
  // e1000_phy_setup_autoneg and a restart.
  phyWrite(n, 4, 0x01e1 | 0x0c00);
  phyWrite(n, 9, 0x0200);
  t.equal(phyRead(n, 4).data, 0x0de1, 'advertisement stored');
  n.rd(R.E1000_ICR);
  phyWrite(n, 0, 0x1000 | 0x0200 | 0x0140);
  t.equal(phyRead(n, 0).data & 0x0200, 0, 'restart self-clears');
  t.ok(n.rd(R.E1000_ICR) & R.E1000_ICR_LSC, 'negotiation done: LSC');
  phyWrite(n, 2, 0x1234);
  t.equal(phyRead(n, 2).data, 0x0141, 'identifiers are read-only');
  const status = n.rd(R.E1000_STATUS);
  t.equal(status & (R.E1000_STATUS_LU | R.E1000_STATUS_FD | R.E1000_STATUS_SPEED_1000), 0x83, 'STATUS: link up, full duplex, 1000 Mb/s');
  t.equal(status & (R.E1000_STATUS_PCIX_MODE | R.E1000_STATUS_BUS64 | R.E1000_STATUS_PCI66), 0, 'PCI 33 MHz 32-bit');
  n.dev.nic.setLink(false);
  t.equal(n.rd(R.E1000_STATUS) & R.E1000_STATUS_LU, 0, 'cable out');
  t.equal(phyRead(n, 1).data & 0x0004, 0, 'PHY link down');
  n.dev.nic.setLink(true);
  t.ok(phyRead(n, 1).data & 0x0004, 'back up');
  n.dev.nic.setLink(false);
  n.dev.nic.setLink(true);
  t.equal(phyRead(n, 1).data & 0x0004, 0, 'a drop since the last read shows once: link status latches low');
  t.ok(phyRead(n, 1).data & 0x0004, 'then up');
});

t.test('interrupts: ICS/IMS/IMC, ICR read-to-clear, INTA# and INTx disable', async (t) => {
  const n = plug();
  resetHw(n);
  n.wr(R.E1000_ICS, R.E1000_ICR_LSC);
  t.equal(n.intx(), 0, 'masked');
  n.wr(R.E1000_IMS, R.E1000_ICR_RXT0 | R.E1000_ICR_TXDW | R.E1000_ICR_RXDMT0 | R.E1000_ICR_RXSEQ | R.E1000_ICR_LSC);
  t.equal(n.intx(), 1, 'asserted while ICR & IMS');
  t.equal(n.rd(R.E1000_IMS), 0x9d, 'IMS reads the mask');
  t.ok(n.dev.configRead(0x06, 2) & 0x08, 'PCI status interrupt bit');
  t.equal(n.rd(R.E1000_ICR), R.E1000_ICR_LSC, 'ICR holds the cause');
  t.equal(n.intx(), 0, 'and reading it deasserts');
  t.equal(n.rd(R.E1000_ICR), 0, 'cleared');
  n.wr(R.E1000_ICS, R.E1000_ICR_RXT0);
  t.equal(n.intx(), 1);
  n.wr(R.E1000_IMC, R.E1000_ICR_RXT0);
  t.equal(n.intx(), 0, 'IMC masks');
  n.wr(R.E1000_IMS, R.E1000_ICR_RXT0);
  t.equal(n.intx(), 1);
  n.dev.configWrite(PCI_COMMAND, 2, 0x7 | 0x400);
  t.equal(n.intx(), 0, 'INTx disable');
  t.ok(n.dev.configRead(0x06, 2) & 0x08, 'status bit still set');
  n.dev.configWrite(PCI_COMMAND, 2, 0x7);
  t.equal(n.intx(), 1);
  n.wr(R.E1000_ICR, R.E1000_ICR_RXT0);
  t.equal(n.intx(), 0, 'writing 1 clears a cause');
  n.wr(R.E1000_ITR, 195);
  t.equal(n.rd(R.E1000_ITR), 195, 'ITR stored');
});

t.test('transmit: legacy descriptors, statistics, write-back', async (t) => {
  const n = plug();
  resetHw(n);
  setupTx(n);
  n.wr(R.E1000_IMS, R.E1000_ICR_TXDW);
  const frame = tcpFrame(new TextEncoder().encode('hello, wire'));
  const mem = n.m.mem.bytes;
  mem.set(frame.subarray(0, 20), TX_BUFS);
  mem.set(frame.subarray(20), TX_BUFS + 0x1000);
  const cmd = R.E1000_TXD_CMD_IFCS | R.E1000_TXD_CMD_RS;
  const next = putTx(n, 0, [
    { addr: TX_BUFS, len: 20, cmd },
    { addr: TX_BUFS + 0x1000, len: frame.length - 20, cmd: cmd | R.E1000_TXD_CMD_EOP },
  ]);
  n.wr(R.E1000_TDT, next);
  t.equal(n.net.sent.length, 1, 'one frame');
  t.same(n.net.sent[0], frame, 'the two buffers joined');
  t.equal(n.rd(R.E1000_TDH), 2, 'TDH caught up');
  t.equal(txStatus(n, 1) & R.E1000_TXD_STAT_DD, 1, 'DD written back');
  t.equal(n.intx(), 1, 'TXDW');
  t.equal(n.rd(R.E1000_ICR) & 3, R.E1000_ICR_TXDW | R.E1000_ICR_TXQE);
  t.equal(n.rd(R.E1000_GPTC), 1, 'GPTC');
  t.equal(n.rd(R.E1000_GPTC), 0, 'clear on read');
  t.equal(n.rd(R.E1000_TPT), 1, 'TPT');
  t.equal(n.rd(R.E1000_GOTCL), frame.length + 4, 'GOTCL counts octets with FCS');
  t.equal(n.rd(R.E1000_GOTCH), 0);
  t.equal(n.rd(R.E1000_GOTCL), 0, 'the pair clears when the high half is read');
  t.equal(n.rd(R.E1000_PTC64 + 4), 1, 'PTC127: a 79-byte frame');

  // A short frame is padded with TCTL.PSP; IC inserts a legacy checksum.
  const short = new Uint8Array(42).fill(0xab);
  short.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  short[40] = 0; short[41] = 0;
  mem.set(short, TX_BUFS);
  n.wr(R.E1000_TDT, putTx(n, 2, [{ addr: TX_BUFS, len: 42, cmd: cmd | R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_IC, cso: 40, css: 14 }]));
  const out = n.net.sent[1]!;
  t.equal(out.length, 60, 'padded to 60');
  t.equal(onesSum(out, 14, 42), 0xffff, 'checksum inserted at CSO over CSS..end');
  t.equal(n.rd(R.E1000_BPTC), 1, 'broadcast counted');
});

t.test('transmit: checksum offload with a context descriptor, as e1000_tx_csum', async (t) => {
  const n = plug();
  resetHw(n);
  setupTx(n);
  const payload = new Uint8Array(301).map((_, i) => i * 7);
  const frame = tcpFrame(payload, { checksums: false });
  // Linux's CHECKSUM_PARTIAL: the TCP checksum field holds the pseudo-header sum, the IP header checksum is done.
  const ip = frame.subarray(14);
  new DataView(ip.buffer, ip.byteOffset).setUint16(10, inetChecksum(ip, 0, 20));
  new DataView(ip.buffer, ip.byteOffset).setUint16(36, onesSum(ip, 12, 20, 6 + 32 + payload.length));
  n.m.mem.bytes.set(frame, TX_BUFS);
  let slot = putContext(n, 0, { ipcss: 0, ipcso: 0, ipcse: 0, tucss: 34, tucso: 34 + 16, tucse: 0, paylen: 0,
    tucmd: R.E1000_TXD_CMD_DEXT | R.E1000_TXD_CMD_TCP, hdrlen: 0, mss: 0 });
  slot = putTx(n, slot, [{ addr: TX_BUFS, len: frame.length, popts: R.E1000_TXD_POPTS_TXSM,
    cmd: R.E1000_TXD_CMD_DEXT | R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_IFCS | R.E1000_TXD_CMD_RS }]);
  n.wr(R.E1000_TDT, slot);
  t.equal(n.net.sent.length, 1);
  t.ok(tcpChecksumOk(n.net.sent[0]!), 'the TCP checksum verifies');
  t.equal(txStatus(n, 1) & 1, 1, 'DD on the data descriptor');
});

t.test('transmit: TCP segmentation as e1000_tso sets it up', async (t) => {
  const n = plug();
  resetHw(n);
  setupTx(n);
  const mss = 1448;
  const payload = new Uint8Array(4000).map((_, i) => (i * 13) & 0xff);
  const frame = tcpFrame(payload, { checksums: false, seq: 0xfffff000, flags: 0x19, id: 0xfffe }); // PSH|FIN|ACK, seq and id about to wrap
  const ip = frame.subarray(14);
  const ipv = new DataView(ip.buffer, ip.byteOffset);
  ipv.setUint16(2, 0); // tot_len and check zeroed, TCP check the pseudo-header sum without length
  ipv.setUint16(10, 0);
  ipv.setUint16(36, onesSum(ip, 12, 20, 6));
  const hdrlen = 14 + 20 + 32;
  n.m.mem.bytes.set(frame.subarray(0, hdrlen + 100), TX_BUFS); // the skb head: header and some payload
  n.m.mem.bytes.set(frame.subarray(hdrlen + 100, hdrlen + 3000), TX_BUFS + 0x2000); // frags
  n.m.mem.bytes.set(frame.subarray(hdrlen + 3000), TX_BUFS + 0x4000);
  let slot = putContext(n, 0, { ipcss: 14, ipcso: 14 + 10, ipcse: 14 + 20 - 1, tucss: 34, tucso: 34 + 16, tucse: 0,
    paylen: payload.length, tucmd: R.E1000_TXD_CMD_DEXT | R.E1000_TXD_CMD_TSE | R.E1000_TXD_CMD_TCP | R.E1000_TXD_CMD_IP, hdrlen, mss });
  const dcmd = R.E1000_TXD_CMD_DEXT | R.E1000_TXD_CMD_TSE | R.E1000_TXD_CMD_IFCS;
  const popts = R.E1000_TXD_POPTS_TXSM | R.E1000_TXD_POPTS_IXSM;
  slot = putTx(n, slot, [
    { addr: TX_BUFS, len: hdrlen + 100, cmd: dcmd, popts },
    { addr: TX_BUFS + 0x2000, len: 2900, cmd: dcmd, popts },
    { addr: TX_BUFS + 0x4000, len: payload.length - 3000, cmd: dcmd | R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS, popts },
  ]);
  n.wr(R.E1000_TDT, slot);
  const segs = n.net.sent;
  t.equal(segs.length, 3, 'ceil(4000 / 1448) segments');
  const got = new Uint8Array(payload.length);
  let off = 0;
  segs.forEach((s, k) => {
    const sip = s.subarray(14);
    const v = new DataView(sip.buffer, sip.byteOffset);
    const len = Math.min(mss, payload.length - k * mss);
    t.equal(s.length, hdrlen + len, `segment ${k} length`);
    t.equal(v.getUint16(2), 20 + 32 + len, `segment ${k} IP total length`);
    t.equal(v.getUint16(4), (0xfffe + k) & 0xffff, `segment ${k} IP id`);
    t.equal(inetChecksum(sip, 0, 20), 0, `segment ${k} IP header checksum`);
    t.equal(v.getUint32(24), (0xfffff000 + k * mss) >>> 0, `segment ${k} sequence`);
    t.equal(sip[33]! & 0x09, k === 2 ? 0x09 : 0, `segment ${k} PSH/FIN only on the last`);
    t.ok(tcpChecksumOk(s), `segment ${k} TCP checksum`);
    got.set(s.subarray(hdrlen), off);
    off += len;
  });
  t.same(got, payload, 'payload reassembles');
  t.equal(n.rd(R.E1000_TSCTC), 1, 'TSCTC');
  t.equal(n.rd(R.E1000_GPTC), 3);
  t.equal(txStatus(n, 3) & 1, 1, 'DD on the EOP descriptor');
});

t.test('transmit: VLAN insertion with CTRL.VME and VLE', async (t) => {
  const n = plug();
  resetHw(n);
  setupTx(n);
  n.wr(R.E1000_CTRL, n.rd(R.E1000_CTRL) | R.E1000_CTRL_VME);
  n.wr(R.E1000_VET, 0); // what Linux writes on an 82540: the type is hardwired to 0x8100
  const frame = tcpFrame(new Uint8Array(10));
  n.m.mem.bytes.set(frame, TX_BUFS);
  n.wr(R.E1000_TDT, putTx(n, 0, [{ addr: TX_BUFS, len: frame.length, special: 0x2005,
    cmd: R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_IFCS | R.E1000_TXD_CMD_RS | R.E1000_TXD_CMD_VLE }]));
  const out = n.net.sent[0]!;
  t.same([...out.subarray(12, 16)], [0x81, 0x00, 0x20, 0x05], '802.1Q tag after the addresses');
  t.same(out.subarray(16), frame.subarray(12));
});

t.test('receive: ring, FCS, filters, interrupts, statistics', async (t) => {
  const n = plug();
  resetHw(n);
  setupRx(n);
  n.wr(R.E1000_IMS, R.E1000_ICR_RXT0);
  const f = tcpFrame(new TextEncoder().encode('incoming'));
  n.net.deliver(f);
  const d = rxDesc(n, 0);
  t.equal(d.status & (R.E1000_RXD_STAT_DD | R.E1000_RXD_STAT_EOP), 3, 'DD and EOP');
  t.ok(d.status & R.E1000_RXD_STAT_IXSM, 'no checksum offload asked: IXSM');
  t.equal(d.length, f.length + 4, 'length includes the FCS without SECRC');
  const data = rxData(n, 0, d.length);
  t.same(data.subarray(0, f.length), f);
  t.equal(new DataView(data.buffer).getUint32(f.length, true), crc32(f), 'the FCS is the frame\'s CRC-32');
  t.equal(n.rd(R.E1000_RDH), 1);
  t.equal(n.intx(), 1, 'RXT0');
  t.equal(n.rd(R.E1000_ICR) & R.E1000_ICR_RXT0, R.E1000_ICR_RXT0);
  t.equal(n.rd(R.E1000_GPRC), 1);
  t.equal(n.rd(R.E1000_GORCL), f.length + 4);
  t.equal(n.rd(R.E1000_GORCH), 0);

  // SECRC strips it; a short frame is padded to 60.
  n.wr(R.E1000_RCTL, n.rd(R.E1000_RCTL) | R.E1000_RCTL_SECRC);
  n.net.deliver(ether(MAC_BYTES, [2, 0, 0, 0, 0, 1], 0x0806, new Uint8Array(28)));
  t.equal(rxDesc(n, 1).length, 60, 'padded runt, no FCS');

  // Filters.
  const other = [0x52, 0x54, 0, 0, 0, 0x99];
  n.net.deliver(tcpFrame(new Uint8Array(4), { dst: other }));
  t.equal(n.rd(R.E1000_RDH), 2, 'another host\'s unicast is filtered');
  t.equal(n.dev.nic.drops.rx_filtered, 1);
  n.net.deliver(tcpFrame(new Uint8Array(4), { dst: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] }));
  t.equal(n.rd(R.E1000_RDH), 3, 'broadcast with BAM');
  t.equal(n.rd(R.E1000_BPRC), 1);
  const mcast = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
  n.net.deliver(tcpFrame(new Uint8Array(4), { dst: mcast }));
  t.equal(n.rd(R.E1000_RDH), 3, 'multicast not in the table is filtered');
  const h = (((mcast[5]! << 8) | mcast[4]!) >> 4) & 0xfff; // MO=0: address bits 47:36
  n.wr(R.E1000_MTA + 4 * (h >> 5), 1 << (h & 31));
  n.net.deliver(tcpFrame(new Uint8Array(4), { dst: mcast }));
  t.equal(n.rd(R.E1000_RDH), 4, 'multicast hash hit');
  n.wr(R.E1000_RAL(1), 0x00005452);
  n.wr(R.E1000_RAH(1), 0x80009900);
  n.net.deliver(tcpFrame(new Uint8Array(4), { dst: other }));
  t.equal(n.rd(R.E1000_RDH), 5, 'exact match in RAR1');
  n.wr(R.E1000_RAH(1), 0);
  n.wr(R.E1000_RCTL, n.rd(R.E1000_RCTL) | R.E1000_RCTL_UPE);
  n.net.deliver(tcpFrame(new Uint8Array(4), { dst: [0x02, 1, 2, 3, 4, 5] }));
  t.equal(n.rd(R.E1000_RDH), 6, 'unicast promiscuous');
  t.equal(n.rd(R.E1000_ICR) & R.E1000_ICR_RXDMT0, R.E1000_ICR_RXDMT0, 'RXDMT0 once half the ring is used');
});

t.test('receive: a frame over several buffers, checksum offload, VLAN stripping', async (t) => {
  const n = plug();
  resetHw(n);
  setupRx(n, 8, R.E1000_RCTL_LPE | R.E1000_RCTL_SECRC | (2 << R.E1000_RCTL_BSIZE_SHIFT)); // 512-byte buffers
  const big = tcpFrame(new Uint8Array(1200).map((_, i) => i));
  n.net.deliver(big);
  const parts = Math.ceil(big.length / 512);
  t.equal(n.rd(R.E1000_RDH), parts, `${parts} descriptors`);
  let joined: number[] = [];
  for (let i = 0; i < parts; i++) {
    const d = rxDesc(n, i);
    t.equal(d.status & R.E1000_RXD_STAT_EOP, i === parts - 1 ? 2 : 0, `EOP only on the last (${i})`);
    joined = joined.concat([...rxData(n, i, d.length)]);
  }
  t.same(Uint8Array.from(joined), big);

  n.wr(R.E1000_RXCSUM, R.E1000_RXCSUM_IPOFL | R.E1000_RXCSUM_TUOFL);
  n.net.deliver(tcpFrame(new Uint8Array(64).fill(1)));
  let d = rxDesc(n, parts);
  t.equal(d.status & (R.E1000_RXD_STAT_TCPCS | R.E1000_RXD_STAT_IPCS | R.E1000_RXD_STAT_IXSM), 0x60, 'TCPCS and IPCS, no IXSM');
  t.equal(d.errors, 0);
  const bad = tcpFrame(new Uint8Array(64).fill(1));
  bad[bad.length - 1] ^= 0xff;
  n.net.deliver(bad);
  d = rxDesc(n, parts + 1);
  t.ok(d.errors & R.E1000_RXD_ERR_TCPE, 'TCPE on a bad TCP checksum');

  n.wr(R.E1000_CTRL, n.rd(R.E1000_CTRL) | R.E1000_CTRL_VME);
  const inner = tcpFrame(new Uint8Array(8));
  const tagged = new Uint8Array(inner.length + 4);
  tagged.set(inner.subarray(0, 12)); tagged.set([0x81, 0x00, 0x00, 0x07], 12); tagged.set(inner.subarray(12), 16);
  n.net.deliver(tagged);
  d = rxDesc(n, parts + 2);
  t.ok(d.status & R.E1000_RXD_STAT_VP, 'VP');
  t.equal(d.special, 7, 'the tag in special');
  t.same(rxData(n, parts + 2, d.length), inner, 'tag stripped');
});

t.test('receive: no descriptors, the packet buffer, RNBC, MPC and RXO', async (t) => {
  const n = plug();
  resetHw(n);
  setupRx(n, 8);
  n.wr(R.E1000_IMS, R.E1000_ICR_RXO);
  const f = tcpFrame(new Uint8Array(1000));
  for (let i = 0; i < 7; i++) n.net.deliver(f); // the ring holds 7 (RDT one behind)
  t.equal(n.rd(R.E1000_RDH), 7);
  n.net.deliver(f);
  t.equal(n.dev.nic.rxWaiting, 1, 'waits in the packet buffer');
  t.equal(n.rd(R.E1000_RNBC), 1, 'RNBC');
  n.wr(R.E1000_RDT, 0); // the driver refilled one descriptor
  t.equal(n.dev.nic.rxWaiting, 0, 'delivered once a descriptor came');
  t.equal(n.rd(R.E1000_RDH), 0);
  const fits = Math.floor(48 * 1024 / f.length);
  for (let i = 0; i < fits + 5; i++) n.net.deliver(f);
  t.equal(n.rd(R.E1000_MPC), 5, 'MPC once 48 KiB are waiting');
  t.equal(n.dev.nic.drops.rx_no_descriptors, 5);
  t.equal(n.dev.nic.rxWaiting, fits, 'what fits in 48 KiB waits');
  t.equal(n.intx(), 1, 'RXO');
  n.wr(R.E1000_RCTL, 0);
  t.equal(n.dev.nic.rxWaiting, 0, 'disabling RX drops what waited');
  n.net.deliver(f);
  t.equal(n.dev.nic.drops.rx_disabled, fits + 1);
  n.net.deliver(new Uint8Array(2000));
  t.equal(n.dev.nic.drops.rx_disabled, fits + 2, 'even an oversized one: RX is off first');
  setupRx(n, 8);
  n.net.deliver(ether(MAC_BYTES, MAC_BYTES, 0x0800, new Uint8Array(1600)));
  t.equal(n.dev.nic.drops.rx_oversize, 1, 'over 1522 without LPE');
  t.equal(n.rd(R.E1000_ROC), 1, 'ROC');
  setupRx(n, 8, R.E1000_RCTL_LPE);
  n.net.deliver(ether(MAC_BYTES, MAC_BYTES, 0x0800, new Uint8Array(17000)));
  t.equal(n.dev.nic.drops.rx_oversize, 2, 'over 16 KiB even with LPE');
});

t.test('no DMA before the bus master bit', async (t) => {
  const n = plug({ master: false });
  resetHw(n);
  setupTx(n);
  setupRx(n);
  const frame = tcpFrame(new Uint8Array(4));
  n.m.mem.bytes.set(frame, TX_BUFS);
  n.wr(R.E1000_TDT, putTx(n, 0, [{ addr: TX_BUFS, len: frame.length, cmd: R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS }]));
  t.equal(n.net.sent.length, 0, 'nothing sent');
  t.equal(txStatus(n, 0), 0, 'nothing written');
  n.net.deliver(frame);
  t.equal(n.dev.nic.drops.rx_no_bus_master, 1);
  n.dev.configWrite(PCI_COMMAND, 2, 0x7);
  t.equal(n.net.sent.length, 1, 'sent once DMA is allowed');
});

t.test('hostile rings and descriptors: stop and count, never throw or spin', async (t) => {
  const n = plug();
  resetHw(n);
  setupTx(n);
  const nic = n.dev.nic;
  const mem = n.m.mem.bytes;
  // TDLEN 0 with TDT ahead.
  n.wr(R.E1000_TDLEN, 0);
  n.wr(R.E1000_TDT, 5);
  t.equal(nic.drops.tx_bad_ring, 1, 'TDLEN 0');
  // TDT beyond the ring.
  n.wr(R.E1000_TDLEN, 16 * 16);
  n.wr(R.E1000_TDT, 100);
  t.equal(nic.drops.tx_bad_ring, 2, 'TDT outside the ring');
  // The ring outside RAM.
  n.wr(R.E1000_TDT, 0);
  n.wr(R.E1000_TDBAL, 0xfff00000);
  n.wr(R.E1000_TDT, 3);
  t.equal(nic.drops.tx_dma_fault, 1, 'descriptor outside RAM');
  t.equal(n.rd(R.E1000_TDH), 0, 'TDH does not move past what could not be read');
  n.wr(R.E1000_TDBAH, 0xffffffff);
  n.wr(R.E1000_TDT, 4);
  t.equal(nic.drops.tx_dma_fault, 2, 'a 64-bit ring address past any RAM');
  // A buffer outside RAM: the packet is dropped, the descriptor still completes.
  resetHw(n);
  setupTx(n);
  n.wr(R.E1000_TDT, putTx(n, 0, [{ addr: 0x7fffffff0000, len: 100, cmd: R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS }]));
  t.equal(nic.drops.tx_dma_fault, 3);
  t.equal(txStatus(n, 0) & 1, 1, 'DD so the driver can reclaim it');
  t.equal(n.net.sent.length, 0);
  // A chain over 16 KiB.
  const chain: TxDesc[] = [];
  for (let i = 0; i < 5; i++) chain.push({ addr: TX_BUFS, len: 4000, cmd: i === 4 ? R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS : 0 });
  n.wr(R.E1000_TDT, putTx(n, 1, chain));
  t.equal(nic.drops.tx_oversize, 1, '20000 bytes dropped');
  t.equal(n.net.sent.length, 0);
  // A chain that never ends: the whole ring without EOP, TDT wrapping round and round.
  resetHw(n);
  setupTx(n, 8);
  const oversizeBefore = nic.drops.tx_oversize;
  for (let round = 0; round < 10; round++) {
    putTx(n, 0, Array.from({ length: 8 }, () => ({ addr: TX_BUFS, len: 1000, cmd: R.E1000_TXD_CMD_RS })));
    n.wr(R.E1000_TDT, 7);
    n.wr(R.E1000_TDT, 0);
  }
  t.equal(nic.drops.tx_oversize, oversizeBefore, 'nothing sent yet and nothing dropped: no EOP ever came');
  putTx(n, 0, [{ addr: TX_BUFS, len: 10, cmd: R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS }]);
  n.wr(R.E1000_TDT, 1);
  t.equal(nic.drops.tx_oversize, oversizeBefore + 1, 'the endless packet was dropped at its EOP');
  t.equal(n.net.sent.length, 0);
  // TSO with MSS 0.
  resetHw(n);
  setupTx(n);
  mem.fill(0, TX_BUFS, TX_BUFS + 200);
  let slot = putContext(n, 0, { ipcss: 14, ipcso: 24, ipcse: 33, tucss: 34, tucso: 50, tucse: 0, paylen: 100,
    tucmd: R.E1000_TXD_CMD_DEXT | R.E1000_TXD_CMD_TSE | R.E1000_TXD_CMD_TCP | R.E1000_TXD_CMD_IP, hdrlen: 54, mss: 0 });
  slot = putTx(n, slot, [{ addr: TX_BUFS, len: 154, cmd: R.E1000_TXD_CMD_DEXT | R.E1000_TXD_CMD_TSE | R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS,
    popts: R.E1000_TXD_POPTS_TXSM }]);
  n.wr(R.E1000_TDT, slot);
  t.equal(nic.drops.tso_bad_context, 1, 'MSS 0');
  t.equal(n.rd(R.E1000_TDH), slot);
  // Reserved descriptor type.
  n.wr(R.E1000_TDT, putTx(n, slot, [{ addr: TX_BUFS, len: 10, cmd: R.E1000_TXD_CMD_DEXT, dtyp: 7 }]));
  t.equal(nic.drops.tx_bad_descriptor, 1);
  // The largest ring, all of it queued: one access does a bounded amount, a timer the rest.
  resetHw(n);
  n.wr(R.E1000_TDBAL, 0x100000);
  n.wr(R.E1000_TDLEN, 0xfffff);
  t.equal(n.rd(R.E1000_TDLEN), 0xfff80, 'TDLEN is a multiple of 128');
  n.wr(R.E1000_TCTL, R.E1000_TCTL_EN);
  n.wr(R.E1000_TDT, 0xfff80 / 16 - 1);
  t.equal(n.rd(R.E1000_TDH), TX_BUDGET_DESCRIPTORS, 'one budget of descriptors per access');
  for (let i = 0; i < 100 && n.rd(R.E1000_TDH) !== n.rd(R.E1000_TDT); i++) n.m.clock.runDue();
  t.equal(n.rd(R.E1000_TDH), 0xfff80 / 16 - 1, 'the rest on the timer');

  // RX rings.
  setupRx(n);
  n.wr(R.E1000_RDT, 50);
  n.net.deliver(tcpFrame(new Uint8Array(4)));
  t.equal(nic.drops.rx_bad_ring, 1, 'RDT outside the ring');
  n.wr(R.E1000_RDT, 3);
  n.wr(R.E1000_RDBAL, 0xfff00000);
  n.net.deliver(tcpFrame(new Uint8Array(4)));
  t.equal(nic.drops.rx_dma_fault, 1, 'RX ring outside RAM');
  n.wr(R.E1000_RDBAL, RX_RING);
  new DataView(mem.buffer).setUint32(RX_RING + 4, 0x10, true); // buffer at 0x10_0008_0000
  n.net.deliver(tcpFrame(new Uint8Array(4)));
  t.equal(nic.drops.rx_dma_fault, 2, 'RX buffer outside RAM');
  const d = rxDesc(n, 0);
  t.equal(d.errors & R.E1000_RXD_ERR_RXE, R.E1000_RXD_ERR_RXE, 'RXE on the descriptor');
  t.equal(d.status & 3, 3, 'completed so the driver moves on');
});

t.test('the controller stands alone: a host-side NIC without PCI', async (t) => {
  const m = testMachine();
  const net = new MemNetBackend();
  const levels: number[] = [];
  const nic = new E1000(m, net, (l) => levels.push(l), { mac: Uint8Array.from(MAC_BYTES) });
  nic.mmioWrite(R.E1000_IMS, 4, R.E1000_ICR_LSC);
  nic.setLink(false);
  t.same(levels, [1], 'link change interrupt');
  t.equal(nic.mmioRead(R.E1000_ICR, 4), R.E1000_ICR_LSC);
  t.same(levels, [1, 0]);
  t.equal(nic.mmioRead(R.E1000_STATUS, 2) & R.E1000_STATUS_LU, 0, 'a narrow read');
  nic.mmioWrite(R.E1000_RAL(0) + 2, 2, 0xbeef);
  t.equal(nic.mmioRead(R.E1000_RAL(0), 4), 0xbeef5452, 'a narrow write changes its bytes only');
  nic.mmioWrite(R.E1000_ICS, 4, R.E1000_ICR_RXT0 | R.E1000_ICR_MDAC);
  nic.mmioWrite(R.E1000_ICR + 1, 1, R.E1000_ICR_MDAC >> 8);
  t.equal(nic.peek(R.E1000_ICR), R.E1000_ICR_RXT0, 'a byte written to ICR clears only its own bits');
  t.throws(() => new E1000(m, net, () => {}, { mac: '52:54:00' }), /bad MAC/);
});
