// Intel 82540EM gigabit Ethernet controller (PCI 8086:100E, QEMU's default
// `e1000`), after Intel's "PCI/PCI-X Family of Gigabit Ethernet Controllers
// Software Developer's Manual" (8254x SDM) with Linux's e1000 driver as the
// judge of what must work. Register names are in e1000_regs.ts, the EEPROM
// in e1000_eeprom.ts, the PHY in e1000_phy.ts.
//
// Two layers: `E1000` is the controller (registers, EEPROM, PHY, the two
// descriptor rings, statistics) and needs only guest memory for DMA, a
// clock, a NetBackend and a function that drives its interrupt line, so a
// process other than qemu-dm can host it (a "physical" NIC of a host whose
// function is later passed through). `E1000Pci` puts it on a PCI bus: BAR0
// is the 128 KiB register window, BAR1 64 I/O ports with IOADDR/IODATA
// (SDM 13.2.2), INTA# follows (ICR & IMS) != 0 unless the command register
// disables INTx, and DMA waits for the bus master bit.
//
// Transmit (SDM 3.3-3.6): legacy descriptors (EOP, IFCS, IC with CSO/CSS,
// RS, VLE), context descriptors (two contexts, one for TSO and one for plain
// checksum offload, as the controller keeps them and QEMU learned the hard
// way) and data descriptors with IXSM/TXSM checksum insertion and TCP
// segmentation (IPv4 and IPv6 headers, TCP and UDP). Linux's e1000 turns on
// checksum offload and TSO for every MAC from the 82544 on, so both are
// implemented rather than hidden. Receive (SDM 3.2): the legacy descriptor
// ring with buffer sizes from RCTL.BSIZE/BSEX, frames spanning descriptors,
// the FCS appended unless RCTL.SECRC (Linux's e1000 strips it itself),
// exact (RAL/RAH), multicast hash (MTA) and VLAN (VFTA) filters, VLAN
// stripping, and IPv4/TCP/UDP receive checksum status. Frames that find no
// free descriptor wait in the controller's receive packet buffer (PBA's RX
// share, 48 KiB by default) and count in RNBC; when it is full they are
// dropped as hardware drops them, counting MPC and raising ICR.RXO.
//
// A hostile guest cannot make the model throw or spin: rings whose registers
// point outside their length or outside RAM, DMA outside RAM, a TSO context
// that cannot be segmented, packets over the SDM's 16288-byte limit and
// chains that never reach EOP stop or drop what they touch, each under a
// named reason in `drops`; one TDT write processes at most TX_BUDGET
// descriptors and bytes and continues on a timer, as a line-rate NIC would
// take its time. Interrupt moderation (ITR, RDTR/RADV, TIDV/TADV) is stored
// and not applied: every cause is signalled at once.
import type { NetBackend } from './backend.js';
import { e1000EepromImage, MicrowireEeprom } from './e1000_eeprom.js';
import { M88E1011Phy } from './e1000_phy.js';
import * as R from './e1000_regs.js';
import { dmaRead, dmaWrite, type AccessSize, type Clock, type GuestMemory, type IrqLines } from './machine.js';
import { crc32, inetChecksum, onesSum } from './net_checksum.js';
import { PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_MASTER, PciFunction } from './pci.js';

export const E1000_VENDOR_ID = 0x8086;
export const E1000_DEV_ID_82540EM = 0x100e;
/** Intel PRO/1000 MT Desktop Adapter, the 82540EM's board. */
export const E1000_SUBSYSTEM_ID = 0x001e;
export const E1000_MMIO_SIZE = 0x20000;
export const E1000_IO_SIZE = 0x40;

/** SDM 3.3.3: the largest packet the transmitter takes, before padding and FCS. */
export const TX_MAX_FRAME = 16288;
/** Longest frame (without FCS) accepted with RCTL.LPE clear: 1518 plus an 802.1Q tag, as QEMU's maximum_ethernet_vlan_size. */
const RX_MAX_FRAME = 1522;
const RX_MAX_FRAME_LPE = 16384;
const ETH_ZLEN = 60;
const ETH_P_VLAN = 0x8100;
/** Work one TDT write may do before the rest is left to a timer. */
export const TX_BUDGET_DESCRIPTORS = 1024;
export const TX_BUDGET_BYTES = 1 << 20;

/** Why the controller dropped something, counted in `drops`. */
export const E1000_DROP_REASONS = [
  'rx_disabled', // a frame arrived with RCTL.EN clear (or RX was disabled with frames waiting)
  'rx_no_bus_master', // a frame arrived while the PCI command register forbids DMA
  'rx_runt', // shorter than an Ethernet header
  'rx_oversize', // over 1522 bytes without RCTL.LPE, or over 16 KiB (ROC)
  'rx_filtered', // no address, hash or promiscuous filter accepted it (normal, not an error)
  'rx_no_descriptors', // the packet buffer overflowed while the ring had no room (MPC, ICR.RXO)
  'rx_bad_ring', // RDH or RDT outside the ring RDLEN describes
  'rx_dma_fault', // a descriptor or buffer outside guest RAM
  'rx_truncated', // null-buffer descriptors used up the ring in the middle of a frame
  'tx_bad_ring', // TDLEN 0 with TDH != TDT, or TDH/TDT outside the ring
  'tx_dma_fault', // a descriptor or buffer outside guest RAM
  'tx_bad_descriptor', // DEXT with a descriptor type other than context or data
  'tx_oversize', // a packet over TX_MAX_FRAME bytes
  'tso_bad_context', // TSO with MSS 0 or header offsets outside HDRLEN
] as const;
export type E1000Drop = (typeof E1000_DROP_REASONS)[number];

export interface E1000Options {
  /** The MAC address, as 6 bytes or "52:54:00:12:34:56". */
  mac: Uint8Array | string;
  /** The cable is in (default true). */
  linkUp?: boolean;
}

/** What the controller needs of whoever hosts it. */
export interface E1000Host { mem: GuestMemory; clock: Clock }

interface TxContext {
  ipcss: number; ipcso: number; ipcse: number;
  tucss: number; tucso: number; tucse: number;
  paylen: number; hdrlen: number; mss: number;
  tcp: boolean; ipv4: boolean;
}

const emptyContext = (): TxContext => ({
  ipcss: 0, ipcso: 0, ipcse: 0, tucss: 0, tucso: 0, tucse: 0, paylen: 0, hdrlen: 0, mss: 0, tcp: false, ipv4: false,
});

interface RxFrame { data: Uint8Array; special: number; tagged: boolean; wireLength: number }

export function parseMac(mac: Uint8Array | string): Uint8Array {
  if (typeof mac !== 'string') {
    if (mac.length !== 6) throw new RangeError('a MAC address is 6 bytes');
    return Uint8Array.from(mac);
  }
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new RangeError(`bad MAC address ${mac}`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export class E1000 {
  /** The register file, one word per 4 bytes of BAR0. */
  private readonly r = new Uint32Array(E1000_MMIO_SIZE >> 2);
  readonly mac: Uint8Array;
  readonly eeprom: MicrowireEeprom;
  readonly phy: M88E1011Phy;
  /** DMA is allowed (the PCI command register's bus master bit; always on for a host-side NIC). */
  private dmaOn = true;
  readonly drops = Object.fromEntries(E1000_DROP_REASONS.map((k) => [k, 0])) as Record<E1000Drop, number>;
  private irqLevel: 0 | 1 = 0;
  private ioAddr = 0;

  // Transmit state.
  private readonly desc = new Uint8Array(R.E1000_DESC_SIZE);
  private readonly descView = new DataView(this.desc.buffer);
  private readonly txStatus = new Uint8Array(1);
  private readonly txBuf = new Uint8Array(0x10000 + 256);
  private readonly txView = new DataView(this.txBuf.buffer);
  private readonly tsoHeader = new Uint8Array(256);
  private ctx = emptyContext();
  private tsoCtx = emptyContext();
  private pkt = { active: false, tse: false, popts: 0, ic: false, cso: 0, css: 0, vlan: -1, len: 0, frames: 0, bad: null as E1000Drop | null };
  private txBusy = false;
  private txTimer: number | null = null;
  private txBudget = 0;

  // Receive state: the packet buffer, and scratch apart from transmit's (loopback receives inside a transmit).
  private readonly rxDesc = new Uint8Array(R.E1000_DESC_SIZE);
  private readonly rxDescView = new DataView(this.rxDesc.buffer);
  private readonly rxWb = new Uint8Array(8);
  private readonly rxWbView = new DataView(this.rxWb.buffer);
  private readonly rxFifo: RxFrame[] = [];
  private rxFifoBytes = 0;

  constructor(private readonly host: E1000Host, private readonly net: NetBackend,
    private readonly setIrq: (level: 0 | 1) => void, opts: E1000Options) {
    this.mac = parseMac(opts.mac);
    this.eeprom = new MicrowireEeprom(e1000EepromImage(this.mac, {
      vendor: E1000_VENDOR_ID, device: E1000_DEV_ID_82540EM, subVendor: E1000_VENDOR_ID, subDevice: E1000_SUBSYSTEM_ID,
    }));
    this.phy = new M88E1011Phy(opts.linkUp ?? true);
    this.reset();
    net.onReceive((frame) => this.receive(frame));
  }

  /** Whether DMA is allowed; turning it on resumes transmission and delivery of waiting frames. */
  get busMaster(): boolean { return this.dmaOn; }
  set busMaster(on: boolean) {
    if (on === this.dmaOn) return;
    this.dmaOn = on;
    if (on) { this.kickTx(); this.drainRx(); }
  }

  /** The cable goes in or out: PHY and STATUS follow and LSC is raised. */
  setLink(up: boolean): void {
    if (this.phy.setLink(up)) this.raise(R.E1000_ICR_LSC);
  }

  /** A register's raw value, without read side effects (for tests and logs). */
  peek(offset: number): number { return this.r[offset >>> 2]!; }

  /** Frames waiting in the receive packet buffer. */
  get rxWaiting(): number { return this.rxFifo.length; }

  /** Device reset (CTRL.RST, and power-on): registers to their defaults, EEPROM reloaded, PHY reset. */
  reset(): void {
    const r = this.r;
    r.fill(0);
    r[R.E1000_CTRL >> 2] = R.E1000_CTRL_SLU | R.E1000_CTRL_SPD_1000 | R.E1000_CTRL_FD;
    r[R.E1000_PBA >> 2] = 0x00100030; // 48 KiB receive, 16 KiB transmit (SDM 13.4.30)
    r[R.E1000_VET >> 2] = ETH_P_VLAN;
    // The EEPROM's address becomes receive address 0 (SDM 5.6.1).
    r[R.E1000_RA >> 2] = (this.mac[0]! | this.mac[1]! << 8 | this.mac[2]! << 16 | this.mac[3]! << 24) >>> 0;
    r[(R.E1000_RA + 4) >> 2] = (this.mac[4]! | this.mac[5]! << 8 | R.E1000_RAH_AV) >>> 0;
    this.eeprom.reset();
    this.phy.reset();
    this.ctx = emptyContext();
    this.tsoCtx = emptyContext();
    this.endPacket();
    if (this.txTimer !== null) this.host.clock.cancel(this.txTimer);
    this.txTimer = null;
    this.rxFifo.length = 0;
    this.rxFifoBytes = 0;
    this.ioAddr = 0;
    this.updateIrq();
  }

  // --- Register access: BAR0 and BAR1.

  mmioRead(offset: number, size: AccessSize): number {
    const v = this.readReg(offset & ~3);
    if (size === 4 && (offset & 3) === 0) return v >>> 0;
    const shifted = v >>> ((offset & 3) * 8);
    return size === 4 ? shifted >>> 0 : shifted & ((1 << (8 * size)) - 1);
  }

  mmioWrite(offset: number, size: AccessSize, value: number): void {
    if (size === 4 && (offset & 3) === 0) { this.writeReg(offset, value >>> 0); return; }
    // A narrow write changes its bytes of the register; the others keep their value.
    const aligned = offset & ~3;
    const shift = (offset & 3) * 8;
    const mask = ((size === 4 ? 0xffffffff : (1 << (8 * size)) - 1) << shift) >>> 0;
    this.writeReg(aligned, ((this.mergeBase(aligned) & ~mask) | ((value << shift) & mask)) >>> 0);
  }

  /** What the bytes a narrow write leaves alone contribute: nothing for the set/clear strobes, the pins for EECD. */
  private mergeBase(off: number): number {
    switch (off) {
      case R.E1000_ICR: case R.E1000_ICS: case R.E1000_IMS: case R.E1000_IMC: return 0;
      case R.E1000_EECD: return this.eeprom.readEecd() & ~(R.E1000_EECD_DO | R.E1000_EECD_GNT | R.E1000_EECD_PRES);
      default: return this.r[off >> 2]!;
    }
  }

  /** BAR1: IOADDR at 0 selects a register, IODATA at 4 reads or writes it (SDM 13.2.2); Linux resets the 82540 through it. */
  ioRead(offset: number, size: AccessSize): number {
    if (offset < 4) return this.ioAddr >>> (offset * 8) & (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1);
    if (offset < 8) return this.mmioRead(this.ioAddr + (offset - 4), size);
    return 0;
  }

  ioWrite(offset: number, size: AccessSize, value: number): void {
    if (offset < 4) {
      const shift = offset * 8;
      const mask = ((size === 4 ? 0xffffffff : (1 << (8 * size)) - 1) << shift) >>> 0;
      this.ioAddr = ((this.ioAddr & ~mask) | ((value << shift) & mask)) & (E1000_MMIO_SIZE - 4) >>> 0;
    } else if (offset < 8) {
      this.mmioWrite(this.ioAddr + (offset - 4), size, value);
    }
  }

  private readReg(off: number): number {
    const r = this.r;
    switch (off) {
      case R.E1000_STATUS: return this.status();
      case R.E1000_EECD: return this.eeprom.readEecd();
      case R.E1000_ICR: {
        const v = r[R.E1000_ICR >> 2]!;
        r[R.E1000_ICR >> 2] = 0; // read to clear (SDM 13.4.17)
        this.updateIrq();
        return v;
      }
      case R.E1000_ICS: return r[R.E1000_ICR >> 2]!; // write-only in the SDM; real parts read ICR here (QEMU's note)
      case R.E1000_IMC: return 0;
    }
    if (off >= R.E1000_STATS_FIRST && off <= R.E1000_STATS_LAST) {
      // Clear on read; a 64-bit counter clears when its high half is read (Linux reads low, then high).
      const v = r[off >> 2]!;
      if (off === R.E1000_GORCH || off === R.E1000_GOTCH || off === R.E1000_TORH || off === R.E1000_TOTH) {
        r[(off >> 2) - 1] = 0;
        r[off >> 2] = 0;
      } else if (off !== R.E1000_GORCL && off !== R.E1000_GOTCL && off !== R.E1000_TORL && off !== R.E1000_TOTL) {
        r[off >> 2] = 0;
      }
      return v;
    }
    return r[off >> 2]!;
  }

  private writeReg(off: number, v: number): void {
    const r = this.r;
    const i = off >> 2;
    switch (off) {
      case R.E1000_CTRL:
        if (v & R.E1000_CTRL_RST) { this.reset(); return; } // self-clearing
        if (v & R.E1000_CTRL_PHY_RST && !(r[i]! & R.E1000_CTRL_PHY_RST)) this.phy.reset();
        r[i] = v;
        return;
      case R.E1000_STATUS:
        return; // read-only
      case R.E1000_EECD:
        this.eeprom.writeEecd(v);
        return;
      case R.E1000_EERD:
        if (v & R.E1000_EEPROM_RW_REG_START) {
          const a = (v >>> R.E1000_EEPROM_RW_ADDR_SHIFT) & 0xff;
          r[i] = (this.eeprom.readWord(a) << R.E1000_EEPROM_RW_REG_DATA | a << R.E1000_EEPROM_RW_ADDR_SHIFT | R.E1000_EEPROM_RW_REG_DONE) >>> 0;
        } else {
          r[i] = v;
        }
        return;
      case R.E1000_CTRL_EXT:
        r[i] = v & ~R.E1000_CTRL_EXT_EE_RST; // EEPROM reload is instant
        return;
      case R.E1000_MDIC:
        this.mdic(v);
        return;
      case R.E1000_ICR:
        r[i] = r[i]! & ~v;
        this.updateIrq();
        return;
      case R.E1000_ICS:
        this.raise(v);
        return;
      case R.E1000_IMS:
        r[R.E1000_IMS >> 2] = (r[R.E1000_IMS >> 2]! | (v & R.E1000_ICR_VALID)) >>> 0;
        this.updateIrq();
        return;
      case R.E1000_IMC:
        r[R.E1000_IMS >> 2] = r[R.E1000_IMS >> 2]! & ~v;
        this.updateIrq();
        return;
      case R.E1000_RCTL: {
        const was = r[i]!;
        r[i] = v;
        if (!(v & R.E1000_RCTL_EN)) this.flushRx();
        else if (!(was & R.E1000_RCTL_EN)) this.drainRx();
        return;
      }
      case R.E1000_TCTL:
        r[i] = v;
        this.kickTx();
        return;
      case R.E1000_TDT:
        r[i] = v & 0xffff;
        this.kickTx();
        return;
      case R.E1000_RDT:
        r[i] = v & 0xffff;
        this.drainRx();
        return;
      case R.E1000_TDH: case R.E1000_RDH:
        r[i] = v & 0xffff;
        return;
      case R.E1000_TDLEN: case R.E1000_RDLEN:
        r[i] = v & 0xfff80; // a multiple of 128 bytes (SDM 13.4.27)
        return;
      case R.E1000_TDBAL: case R.E1000_RDBAL:
        r[i] = v & ~0xf;
        return;
    }
    if (off >= R.E1000_STATS_FIRST && off <= R.E1000_STATS_LAST) return; // read-only counters
    r[i] = v;
  }

  private status(): number {
    const link = this.phy.isLinkUp && (this.r[R.E1000_CTRL >> 2]! & R.E1000_CTRL_SLU) !== 0;
    // 1000 Mb/s full duplex on a 32-bit 33 MHz PCI bus (Linux prints "PCI:33MHz:32-bit").
    return R.E1000_STATUS_FD | R.E1000_STATUS_SPEED_1000 | R.E1000_STATUS_ASDV_1000 | (link ? R.E1000_STATUS_LU : 0);
  }

  private mdic(v: number): void {
    const phyAddr = (v >>> R.E1000_MDIC_PHY_SHIFT) & 0x1f;
    const reg = (v >>> R.E1000_MDIC_REG_SHIFT) & 0x1f;
    let out = v & ~(R.E1000_MDIC_READY | R.E1000_MDIC_ERROR);
    if (phyAddr !== 1) {
      out |= R.E1000_MDIC_ERROR; // the internal PHY answers at address 1 only
    } else if (v & R.E1000_MDIC_OP_READ) {
      out = (out & ~R.E1000_MDIC_DATA_MASK) | this.phy.read(reg);
    } else if (v & R.E1000_MDIC_OP_WRITE) {
      if (this.phy.write(reg, v & R.E1000_MDIC_DATA_MASK)) this.raise(R.E1000_ICR_LSC);
    }
    this.r[R.E1000_MDIC >> 2] = (out | R.E1000_MDIC_READY) >>> 0;
    if (v & R.E1000_MDIC_INT_EN) this.raise(R.E1000_ICR_MDAC);
  }

  // --- Interrupts.

  private raise(cause: number): void {
    const i = R.E1000_ICR >> 2;
    this.r[i] = (this.r[i]! | (cause & R.E1000_ICR_VALID)) >>> 0;
    this.updateIrq();
  }

  private updateIrq(): void {
    const level: 0 | 1 = (this.r[R.E1000_ICR >> 2]! & this.r[R.E1000_IMS >> 2]!) !== 0 ? 1 : 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
  }

  /** The level the controller drives on its interrupt line. */
  get interruptLevel(): 0 | 1 { return this.irqLevel; }

  // --- Statistics.

  private count(off: number, by = 1): void {
    const i = off >> 2;
    this.r[i] = Math.min(0xffffffff, this.r[i]! + by);
  }

  /** A 64-bit counter as a low/high pair, saturating. */
  private count64(lowOff: number, by: number): void {
    const lo = lowOff >> 2;
    const sum = this.r[lo]! + by;
    if (sum <= 0xffffffff) { this.r[lo] = sum; return; }
    if (this.r[lo + 1] === 0xffffffff) { this.r[lo] = 0xffffffff; return; }
    this.r[lo] = sum - 0x100000000;
    this.r[lo + 1] = this.r[lo + 1]! + 1;
  }

  /** Size buckets of PRC64..PRC1522 and PTC64..PTC1522, by length with FCS. */
  private countSize(first: number, len: number): void {
    const bucket = len <= 64 ? 0 : len <= 127 ? 1 : len <= 255 ? 2 : len <= 511 ? 3 : len <= 1023 ? 4 : 5;
    this.count(first + 4 * bucket);
  }

  private drop(reason: E1000Drop): void { this.drops[reason]++; }

  // --- DMA.

  private dmaRead(gpa: number, dst: Uint8Array): boolean { return dmaRead(this.host.mem, gpa, dst); }

  private dmaWrite(gpa: number, src: Uint8Array): boolean { return dmaWrite(this.host.mem, gpa, src); }

  // --- Transmit.

  private kickTx(): void {
    if (this.txBusy || this.txTimer !== null) return;
    if (!(this.r[R.E1000_TCTL >> 2]! & R.E1000_TCTL_EN) || !this.dmaOn) return;
    this.txBusy = true;
    try { this.runTx(); } finally { this.txBusy = false; }
  }

  private runTx(): void {
    const r = this.r;
    const n = r[R.E1000_TDLEN >> 2]! / R.E1000_DESC_SIZE;
    let head = r[R.E1000_TDH >> 2]!;
    const tail = r[R.E1000_TDT >> 2]!;
    if (head === tail) return;
    if (n === 0 || head >= n || tail >= n) { this.drop('tx_bad_ring'); return; }
    const base = r[R.E1000_TDBAH >> 2]! * 0x100000000 + r[R.E1000_TDBAL >> 2]!;
    let cause = 0;
    let descriptors = TX_BUDGET_DESCRIPTORS;
    this.txBudget = TX_BUDGET_BYTES;
    while (head !== tail) {
      if (descriptors-- === 0 || this.txBudget <= 0) {
        // The rest after the host has run other work: a long chain cannot hold the access up.
        this.txTimer = this.host.clock.setTimer(this.host.clock.now(), () => { this.txTimer = null; this.kickTx(); });
        break;
      }
      const at = base + head * R.E1000_DESC_SIZE;
      if (!this.dmaRead(at, this.desc)) { this.drop('tx_dma_fault'); break; }
      const cmd = this.desc[11]!;
      const sta = this.desc[12]!;
      this.txDescriptor();
      if (cmd & (R.E1000_TXD_CMD_RS | R.E1000_TXD_CMD_RPS)) {
        // Write-back: DD in the status byte (SDM 3.3.3.2); the rest of the descriptor stays as the driver wrote it.
        this.txStatus[0] = (sta & 0xf0) | R.E1000_TXD_STAT_DD;
        if (this.dmaWrite(at + 12, this.txStatus)) cause |= R.E1000_ICR_TXDW;
        else this.drop('tx_dma_fault');
      }
      head = (head + 1) % n;
      r[R.E1000_TDH >> 2] = head;
    }
    if (head === tail) cause |= R.E1000_ICR_TXQE;
    if (cause) this.raise(cause);
  }

  private txDescriptor(): void {
    const d = this.desc;
    const dv = this.descView;
    const addr = dv.getUint32(4, true) * 0x100000000 + dv.getUint32(0, true);
    const lower = dv.getUint32(8, true);
    const cmd = lower >>> 24;
    if (cmd & R.E1000_TXD_CMD_DEXT) {
      const dtyp = (lower >>> 20) & 0xf;
      if (dtyp === R.E1000_TXD_DTYP_CONTEXT) {
        const c: TxContext = {
          ipcss: d[0]!, ipcso: d[1]!, ipcse: dv.getUint16(2, true),
          tucss: d[4]!, tucso: d[5]!, tucse: dv.getUint16(6, true),
          paylen: lower & 0xfffff, hdrlen: d[13]!, mss: dv.getUint16(14, true),
          tcp: (cmd & R.E1000_TXD_CMD_TCP) !== 0, ipv4: (cmd & R.E1000_TXD_CMD_IP) !== 0,
        };
        if (cmd & R.E1000_TXD_CMD_TSE) this.tsoCtx = c;
        else this.ctx = c;
      } else if (dtyp === R.E1000_TXD_DTYP_DATA) {
        this.txData(addr, lower & 0xfffff, cmd, d[13]!, dv.getUint16(14, true), true, 0, 0);
      } else {
        this.drop('tx_bad_descriptor');
      }
    } else {
      this.txData(addr, lower & 0xffff, cmd, 0, dv.getUint16(14, true), false, (lower >>> 16) & 0xff, d[13]!);
    }
  }

  private txData(addr: number, len: number, cmd: number, popts: number, special: number, ext: boolean, cso: number, css: number): void {
    const p = this.pkt;
    if (!p.active) {
      p.active = true;
      p.tse = ext && (cmd & R.E1000_TXD_CMD_TSE) !== 0;
      p.popts = ext ? popts : 0; // the options of the packet's first data descriptor apply (SDM 3.3.7.1)
      if (p.tse && !this.tsoContextValid()) p.bad = 'tso_bad_context';
    }
    if (!ext && cmd & R.E1000_TXD_CMD_IC && !p.ic) {
      // CSS "must be set in the first descriptor of the packet" (SDM 3.3.3); the first with IC is taken.
      p.ic = true;
      p.cso = cso;
      p.css = css;
    }
    if (cmd & R.E1000_TXD_CMD_VLE) p.vlan = special;
    // A null buffer address or a zero length transfers no data (SDM 3.3.3).
    if (p.bad === null && len > 0 && addr !== 0) {
      if (p.tse) this.gatherTso(addr, len);
      else this.gather(addr, len);
    }
    if (!(cmd & R.E1000_TXD_CMD_EOP)) return;
    if (p.bad !== null) this.drop(p.bad);
    else if (p.tse) this.finishTso();
    else this.finishPacket();
    this.endPacket();
  }

  private endPacket(): void {
    const p = this.pkt;
    p.active = false; p.tse = false; p.popts = 0; p.ic = false; p.cso = 0; p.css = 0; p.vlan = -1; p.len = 0; p.frames = 0; p.bad = null;
  }

  private gather(addr: number, len: number): void {
    const p = this.pkt;
    if (p.len + len > TX_MAX_FRAME) { p.bad = 'tx_oversize'; return; }
    if (!this.dmaRead(addr, this.txBuf.subarray(p.len, p.len + len))) { p.bad = 'tx_dma_fault'; return; }
    p.len += len;
    this.txBudget -= len;
  }

  private tsoContextValid(): boolean {
    const c = this.tsoCtx;
    if (c.mss === 0 || c.hdrlen < 14 || c.hdrlen + c.mss > TX_MAX_FRAME) return false;
    if (c.ipcss + (c.ipv4 ? 20 : 40) > c.hdrlen) return false;
    if (c.tucss + (c.tcp ? 20 : 8) > c.hdrlen || c.tucso + 2 > c.hdrlen || c.ipcso + 2 > c.hdrlen) return false;
    return true;
  }

  /**
   * TCP segmentation (SDM 3.5): the first HDRLEN bytes are the header of
   * every segment; the payload is cut into MSS pieces, each sent as soon as
   * it is complete, so a packet needs one segment's worth of buffer.
   */
  private gatherTso(addr: number, len: number): void {
    const p = this.pkt;
    const c = this.tsoCtx;
    const full = c.hdrlen + c.mss;
    let off = 0;
    while (off < len) {
      const take = Math.min(full - p.len, len - off);
      if (!this.dmaRead(addr + off, this.txBuf.subarray(p.len, p.len + take))) { p.bad = 'tx_dma_fault'; return; }
      if (p.len < c.hdrlen && p.len + take >= c.hdrlen) this.tsoHeader.set(this.txBuf.subarray(0, c.hdrlen));
      p.len += take;
      off += take;
      this.txBudget -= take;
      if (p.len === full) {
        this.sendSegment();
        this.txBuf.set(this.tsoHeader.subarray(0, c.hdrlen));
        p.len = c.hdrlen;
      }
    }
  }

  private finishTso(): void {
    const p = this.pkt;
    const c = this.tsoCtx;
    if (p.len > c.hdrlen || (p.frames === 0 && p.len === c.hdrlen)) this.sendSegment();
    if (p.frames > 0) this.count(R.E1000_TSCTC);
  }

  /** One TSO segment: lengths, IP identification, TCP sequence and flags, then the checksums (SDM 3.5.2). */
  private sendSegment(): void {
    const p = this.pkt;
    const c = this.tsoCtx;
    const v = this.txView;
    const len = p.len;
    const sofar = p.frames * c.mss;
    if (c.ipv4) {
      v.setUint16(c.ipcss + 2, len - c.ipcss);
      v.setUint16(c.ipcss + 4, (v.getUint16(c.ipcss + 4) + p.frames) & 0xffff);
    } else {
      v.setUint16(c.ipcss + 4, len - c.ipcss - 40); // IPv6 payload length
    }
    const l4len = len - c.tucss;
    if (c.tcp) {
      v.setUint32(c.tucss + 4, (v.getUint32(c.tucss + 4) + sofar) >>> 0);
      if (c.paylen - sofar > c.mss) this.txBuf[c.tucss + 13] = this.txBuf[c.tucss + 13]! & ~0x09; // FIN and PSH only on the last
    } else {
      v.setUint16(c.tucss + 4, l4len);
    }
    if (p.popts & R.E1000_TXD_POPTS_TXSM) {
      // The driver seeded the pseudo-header sum without the length; each segment adds its own.
      let ph = v.getUint16(c.tucso) + l4len;
      ph = (ph & 0xffff) + (ph >>> 16);
      v.setUint16(c.tucso, ph);
      this.insertChecksum(len, c.tucso, c.tucss, c.tucse);
    }
    if (p.popts & R.E1000_TXD_POPTS_IXSM) this.insertChecksum(len, c.ipcso, c.ipcss, c.ipcse);
    p.frames++;
    this.transmit(len);
  }

  private finishPacket(): void {
    const p = this.pkt;
    if (p.len === 0) return; // a null packet: nothing goes on the wire
    if (p.ic) this.insertChecksum(p.len, p.cso, p.css, 0);
    if (p.popts & R.E1000_TXD_POPTS_TXSM) this.insertChecksum(p.len, this.ctx.tucso, this.ctx.tucss, this.ctx.tucse);
    if (p.popts & R.E1000_TXD_POPTS_IXSM) this.insertChecksum(p.len, this.ctx.ipcso, this.ctx.ipcss, this.ctx.ipcse);
    this.transmit(p.len);
  }

  /** The Internet checksum of bytes css..cse (0: to the end) into cso; out of range, nothing (SDM 3.3.3 "IC is ignored"). */
  private insertChecksum(len: number, cso: number, css: number, cse: number): void {
    const end = cse && cse < len ? cse + 1 : len;
    if (css >= end || cso + 2 > len) return;
    const sum = inetChecksum(this.txBuf, css, end);
    this.txView.setUint16(cso, sum === 0 ? 0xffff : sum);
  }

  /** Puts txBuf[0, len) on the wire: VLAN tag inserted, padded if TCTL.PSP, counted. */
  private transmit(len: number): void {
    const r = this.r;
    const tag = this.pkt.vlan >= 0 && (r[R.E1000_CTRL >> 2]! & R.E1000_CTRL_VME) !== 0;
    const size = len + (tag ? 4 : 0);
    const out = new Uint8Array(r[R.E1000_TCTL >> 2]! & R.E1000_TCTL_PSP ? Math.max(size, ETH_ZLEN) : size);
    if (tag) {
      out.set(this.txBuf.subarray(0, 12));
      const vet = this.vlanType();
      out[12] = vet >> 8; out[13] = vet & 0xff;
      out[14] = this.pkt.vlan >> 8; out[15] = this.pkt.vlan & 0xff;
      out.set(this.txBuf.subarray(12, len), 16);
    } else {
      out.set(this.txBuf.subarray(0, len));
    }
    const wire = out.length + 4;
    this.count(R.E1000_TPT);
    this.count(R.E1000_GPTC);
    this.count64(R.E1000_GOTCL, wire);
    this.count64(R.E1000_TOTL, wire);
    this.countSize(R.E1000_PTC64, wire);
    if (out[0]! & 1) this.count(isBroadcast(out) ? R.E1000_BPTC : R.E1000_MPTC);
    if (this.phy.loopback || (r[R.E1000_RCTL >> 2]! & R.E1000_RCTL_LBM_MASK) === R.E1000_RCTL_LBM_MAC) this.receive(out);
    else this.net.send(out);
  }

  /** The 802.1Q type; Linux's e1000 writes VET 0 on MACs before the 82545 rev 3, where it is hardwired to 0x8100. */
  private vlanType(): number { return (this.r[R.E1000_VET >> 2]! & 0xffff) || ETH_P_VLAN; }

  // --- Receive.

  /** A frame from the wire (the NetBackend calls this between accesses). */
  receive(frame: Uint8Array): void {
    const rctl = this.r[R.E1000_RCTL >> 2]!;
    if (!(rctl & R.E1000_RCTL_EN)) { this.drop('rx_disabled'); return; }
    if (frame.length < 14) { this.drop('rx_runt'); return; }
    let f = frame;
    if (f.length < ETH_ZLEN) { f = new Uint8Array(ETH_ZLEN); f.set(frame); } // the sender padded it on the wire
    const max = rctl & R.E1000_RCTL_LPE ? RX_MAX_FRAME_LPE : RX_MAX_FRAME;
    if (f.length > max && !(rctl & R.E1000_RCTL_SBP)) { this.count(R.E1000_ROC); this.drop('rx_oversize'); return; }
    if (!this.accepts(f)) { this.drop('rx_filtered'); return; }
    const wireLength = f.length + 4;
    let special = 0;
    let tagged = false;
    if (this.r[R.E1000_CTRL >> 2]! & R.E1000_CTRL_VME && ((f[12]! << 8) | f[13]!) === this.vlanType()) {
      // VLAN stripping (SDM 3.2.8): the tag goes to the descriptor's special field.
      special = (f[14]! << 8) | f[15]!;
      const stripped = new Uint8Array(f.length - 4);
      stripped.set(f.subarray(0, 12));
      stripped.set(f.subarray(16), 12);
      f = stripped;
      tagged = true;
    } else if (f === frame) {
      f = Uint8Array.from(frame); // the back end may reuse its buffer
    }
    const item: RxFrame = { data: f, special, tagged, wireLength };
    if (this.rxFifo.length === 0 && this.deliver(item)) return;
    this.count(R.E1000_RNBC);
    const capacity = (this.r[R.E1000_PBA >> 2]! & 0xffff) * 1024;
    if (this.rxFifoBytes + f.length > capacity) {
      this.count(R.E1000_MPC);
      this.drop('rx_no_descriptors');
      this.raise(R.E1000_ICR_RXO);
      return;
    }
    this.rxFifo.push(item);
    this.rxFifoBytes += f.length;
  }

  /** Destination address filtering (SDM 3.2.1). */
  private accepts(f: Uint8Array): boolean {
    const r = this.r;
    const rctl = r[R.E1000_RCTL >> 2]!;
    if (rctl & R.E1000_RCTL_VFE && ((f[12]! << 8) | f[13]!) === this.vlanType()) {
      const vid = ((f[14]! << 8) | f[15]!) & 0xfff;
      if (!(r[(R.E1000_VFTA >> 2) + (vid >> 5)]! & (1 << (vid & 31)))) return false;
    }
    const multicast = (f[0]! & 1) !== 0;
    if (multicast) {
      if (isBroadcast(f)) { if (rctl & R.E1000_RCTL_BAM) return true; } else if (rctl & R.E1000_RCTL_MPE) return true;
    } else if (rctl & R.E1000_RCTL_UPE) {
      return true;
    }
    const lo = (f[0]! | f[1]! << 8 | f[2]! << 16 | f[3]! << 24) >>> 0;
    const hi = f[4]! | f[5]! << 8;
    for (let e = 0; e < 16; e++) {
      const rah = r[(R.E1000_RA >> 2) + 2 * e + 1]!;
      // Valid entries that match on the destination (address select 00).
      if (rah & R.E1000_RAH_AV && !(rah & 0x30000) && (rah & 0xffff) === hi && r[(R.E1000_RA >> 2) + 2 * e] === lo) return true;
    }
    if (multicast) {
      // The multicast table: 12 bits of the address picked by RCTL.MO index 4096 bits (SDM 13.4.43).
      const shift = [4, 3, 2, 0][(rctl >>> R.E1000_RCTL_MO_SHIFT) & 3]!;
      const h = (((f[5]! << 8) | f[4]!) >> shift) & 0xfff;
      if (r[(R.E1000_MTA >> 2) + (h >> 5)]! & (1 << (h & 31))) return true;
    }
    return false;
  }

  /** Delivers waiting frames while descriptors allow. */
  private drainRx(): void {
    while (this.rxFifo.length > 0 && this.deliver(this.rxFifo[0]!)) {
      const item = this.rxFifo.shift()!;
      this.rxFifoBytes -= item.data.length;
    }
  }

  /** Frames waiting when RX is turned off are lost. */
  private flushRx(): void {
    this.drops.rx_disabled += this.rxFifo.length;
    this.rxFifo.length = 0;
    this.rxFifoBytes = 0;
  }

  private rxBufferSize(): number {
    const rctl = this.r[R.E1000_RCTL >> 2]!;
    const bsize = (rctl >>> R.E1000_RCTL_BSIZE_SHIFT) & 3;
    if (rctl & R.E1000_RCTL_BSEX && bsize !== 0) return [0, 16384, 8192, 4096][bsize]!;
    return [2048, 1024, 512, 256][bsize]!;
  }

  /** Writes a frame into the ring; false when it must wait for descriptors (nothing written). */
  private deliver(item: RxFrame): boolean {
    const r = this.r;
    if (!(r[R.E1000_RCTL >> 2]! & R.E1000_RCTL_EN)) return false;
    if (!this.dmaOn) { this.drop('rx_no_bus_master'); return true; }
    const n = r[R.E1000_RDLEN >> 2]! / R.E1000_DESC_SIZE;
    let head = r[R.E1000_RDH >> 2]!;
    const tail = r[R.E1000_RDT >> 2]!;
    if (n === 0) return false;
    if (head >= n || tail >= n) { this.drop('rx_bad_ring'); return true; }
    const rctl = r[R.E1000_RCTL >> 2]!;
    const bufSize = this.rxBufferSize();
    let data = item.data;
    if (!(rctl & R.E1000_RCTL_SECRC)) {
      // The FCS as it came off the wire, which Linux's e1000 strips itself.
      const withFcs = new Uint8Array(data.length + 4);
      withFcs.set(data);
      new DataView(withFcs.buffer).setUint32(data.length, crc32(data), true);
      data = withFcs;
    }
    const needed = Math.ceil(data.length / bufSize);
    if ((tail - head + n) % n < needed) return false;
    const { status: csStatus, errors: csErrors, csum } = this.rxChecksum(item.data);
    const base = r[R.E1000_RDBAH >> 2]! * 0x100000000 + r[R.E1000_RDBAL >> 2]!;
    const wbv = this.rxWbView;
    let off = 0;
    while (off < data.length) {
      if (head === tail) { this.drop('rx_truncated'); break; }
      const at = base + head * R.E1000_DESC_SIZE;
      if (!this.dmaRead(at, this.rxDesc)) { this.drop('rx_dma_fault'); break; }
      const addr = this.rxDescView.getUint32(4, true) * 0x100000000 + this.rxDescView.getUint32(0, true);
      let length = 0;
      let status = R.E1000_RXD_STAT_DD;
      let errors = 0;
      if (addr !== 0) { // a null buffer is skipped (SDM 3.2.3)
        length = Math.min(bufSize, data.length - off);
        if (this.dmaWrite(addr, data.subarray(off, off + length))) {
          off += length;
          if (off >= data.length) { status |= R.E1000_RXD_STAT_EOP | csStatus; errors |= csErrors; }
        } else {
          this.drop('rx_dma_fault');
          status |= R.E1000_RXD_STAT_EOP;
          errors |= R.E1000_RXD_ERR_RXE;
          length = 0;
          off = data.length; // the rest of the frame is lost
        }
      }
      if (item.tagged) status |= R.E1000_RXD_STAT_VP;
      wbv.setUint16(0, length, true);
      wbv.setUint16(2, csum, true);
      this.rxWb[4] = status;
      this.rxWb[5] = errors;
      wbv.setUint16(6, item.special, true);
      if (!this.dmaWrite(at + 8, this.rxWb)) { this.drop('rx_dma_fault'); break; }
      head = (head + 1) % n;
      r[R.E1000_RDH >> 2] = head;
    }
    const wire = item.wireLength;
    this.count(R.E1000_TPR);
    this.count(R.E1000_GPRC);
    this.count64(R.E1000_GORCL, wire);
    this.count64(R.E1000_TORL, wire);
    this.countSize(R.E1000_PRC64, wire);
    if (item.data[0]! & 1) this.count(isBroadcast(item.data) ? R.E1000_BPRC : R.E1000_MPRC);
    let cause = R.E1000_ICR_RXT0;
    const free = (tail - head + n) % n;
    const rdmts = (rctl >>> R.E1000_RCTL_RDMTS_SHIFT) & 3;
    if (free <= n >> (rdmts + 1)) cause |= R.E1000_ICR_RXDMT0; // 1/2, 1/4 or 1/8 of the ring left (SDM 13.4.22)
    this.raise(cause);
    return true;
  }

  /**
   * Receive checksum offload (SDM 3.2.9, RXCSUM): IPv4 header (IPOFL) and
   * TCP/UDP over unfragmented IPv4 (TUOFL). Anything not verified carries
   * IXSM, so the driver checks it in software: Linux's e1000_rx_checksum
   * trusts only TCPCS without TCPE.
   */
  private rxChecksum(f: Uint8Array): { status: number; errors: number; csum: number } {
    const rc = this.r[R.E1000_RXCSUM >> 2]!;
    const csum = onesSum(f, Math.min(rc & R.E1000_RXCSUM_PCSS_MASK, f.length), f.length);
    let status = 0;
    let errors = 0;
    const ihl = (f[14]! & 0x0f) * 4;
    if (rc & (R.E1000_RXCSUM_IPOFL | R.E1000_RXCSUM_TUOFL) && ((f[12]! << 8) | f[13]!) === 0x0800
      && f[14]! >> 4 === 4 && ihl >= 20 && 14 + ihl <= f.length) {
      const ipOk = inetChecksum(f, 14, 14 + ihl) === 0;
      if (rc & R.E1000_RXCSUM_IPOFL) { status |= R.E1000_RXD_STAT_IPCS; if (!ipOk) errors |= R.E1000_RXD_ERR_IPE; }
      const total = (f[16]! << 8) | f[17]!;
      const fragment = (((f[20]! << 8) | f[21]!) & 0x3fff) !== 0;
      const proto = f[23]!;
      const end = 14 + total;
      const l4 = 14 + ihl;
      if (rc & R.E1000_RXCSUM_TUOFL && ipOk && !fragment && (proto === 6 || proto === 17) && total >= ihl + 8 && end <= f.length
        && !(proto === 17 && f[l4 + 6] === 0 && f[l4 + 7] === 0)) {
        const pseudo = onesSum(f, 26, 34, proto + (end - l4));
        status |= R.E1000_RXD_STAT_TCPCS;
        if (onesSum(f, l4, end, pseudo) !== 0xffff) errors |= R.E1000_RXD_ERR_TCPE;
      }
    }
    if (!(status & R.E1000_RXD_STAT_TCPCS)) status |= R.E1000_RXD_STAT_IXSM;
    return { status, errors, csum };
  }
}

function isBroadcast(f: Uint8Array): boolean {
  return f[0] === 0xff && f[1] === 0xff && f[2] === 0xff && f[3] === 0xff && f[4] === 0xff && f[5] === 0xff;
}

/** What plugging the NIC into a PCI machine needs. */
export interface E1000PciHost extends E1000Host { irq: IrqLines }

/** The 82540EM as a PCI function: class 0x020000, BAR0 128 KiB of registers, BAR1 64 I/O ports, INTA#. */
export class E1000Pci extends PciFunction {
  readonly nic: E1000;
  private line: 0 | 1 = 0;

  constructor(private readonly host: E1000PciHost, net: NetBackend, opts: E1000Options) {
    super('e1000', {
      vendor: E1000_VENDOR_ID, device: E1000_DEV_ID_82540EM, classCode: 0x020000, revision: 0x03,
      subVendor: E1000_VENDOR_ID, subDevice: E1000_SUBSYSTEM_ID, interruptPin: 1,
    });
    this.nic = new E1000(host, net, () => this.driveIntx(), opts);
    this.nic.busMaster = false; // no DMA before the driver sets the bus master bit
    const nic = this.nic;
    this.addBar(0, {
      kind: 'mem', size: E1000_MMIO_SIZE, name: 'e1000 registers',
      handler: { read: (o, s) => nic.mmioRead(o, s), write: (o, s, v) => nic.mmioWrite(o, s, v) },
    });
    this.addBar(1, {
      kind: 'io', size: E1000_IO_SIZE, name: 'e1000 IOADDR/IODATA',
      handler: { read: (o, s) => nic.ioRead(o, s), write: (o, s, v) => nic.ioWrite(o, s, v) },
    });
  }

  protected override configWriteHook(): void {
    this.nic.busMaster = (this.command & PCI_COMMAND_MASTER) !== 0;
    this.driveIntx();
  }

  /** INTA# follows the controller unless the command register disables INTx; the status bit follows it regardless. */
  private driveIntx(): void {
    const pending = this.nic.interruptLevel === 1;
    this.setInterruptStatus(pending);
    const level: 0 | 1 = pending && !(this.command & PCI_COMMAND_INTX_DISABLE) ? 1 : 0;
    if (level === this.line || this.device < 0) return;
    this.line = level;
    this.host.irq.setPciIntx(this.device, 0, level);
  }
}
