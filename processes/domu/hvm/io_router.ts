// Which ioreq server an access goes to: the part of Xen's hvm_io_intercept
// and ioreq_server_select (xen/arch/x86/hvm/ioreq.c) that xenemu runs in
// the guest's own process, next to the vCPU that trapped the access.
//
// - Ports: the server whose XEN_DMOP_IO_RANGE_PORT range holds the port.
// - PCI configuration through 0xCF8/0xCFC: a dword written to 0xCF8 is the
//   address latch (kept here, as Xen keeps d->arch.hvm.pci_cf8); an access to
//   0xCFC-0xCFF with the enable bit set goes, as IOREQ_TYPE_PCI_CONFIG with
//   addr = sbdf << 32 | register, to the server whose XEN_DMOP_IO_RANGE_PCI
//   range holds the SBDF.
// - MMIO: the server whose XEN_DMOP_IO_RANGE_MEMORY range holds the address
//   (IOREQ_TYPE_COPY); writes to the legacy VGA window go to the buffered
//   ring when the server takes it (hvm_buffered_io_intercept).
// - Before any of that, the ports the hypervisor answers itself (Xen's
//   hvm_io_intercept handlers: here the PM timer, pmtimer.ts), and the
//   host device BARs mapped into the guest (XEN_DOMCTL_memory_mapping /
//   ioport_mapping, the HVM segment's passthrough page): those go straight
//   to the device's BAR channel, as a guest's access to a p2m entry of
//   Xen's map_mmio_regions reaches the device without any exit.
// - Nobody: reads are all-ones, writes are dropped, as under Xen.
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import { IOREQ_READ, IOREQ_TYPE_COPY, IOREQ_TYPE_PCI_CONFIG, IOREQ_TYPE_PIO, IOREQ_WRITE } from '../../../shared/abi/hvm/ioreq.js';
import { XEN_DMOP_IO_RANGE_MEMORY, XEN_DMOP_IO_RANGE_PCI, XEN_DMOP_IO_RANGE_PORT } from '../../../shared/abi/hvm/dm_op.js';
import { SERVER_BUFIOREQ, hvm_ctl, readRanges, type IoRange } from '../../../shared/abi/hvm/xenemu_hvm.js';
import { VGA_HOLE_END, VGA_HOLE_START } from '../../../shared/abi/hvm/e820.js';
import { isPlatformPort, MMAP_BLOCK_BITS, type MmioHandler, type PortHandler, type V86Machine } from './v86.js';
import type { IoreqClient } from './ioreq.js';
import { PT_KIND_INTX, PT_KIND_MEM, PT_KIND_PORT, PT_PAGE_OFFSET, pt_page, readPtMappings, type PtMapping } from '../../../shared/abi/hvm/xenemu_hvm.js';
import { BAR_MAX_SLOTS, BarChannel } from '../../../shared/hw/bar_channel.js';
import { formatSbdf, pciBarSegment } from '../../../shared/wire/pcidev.js';

/**
 * Port writes that go to the buffered ring (buf_ioreq_t with IOREQ_TYPE_PIO)
 * when the server takes it: writes whose only effect is the device's state,
 * with no interrupt and no answer the guest waits for. The device model
 * drains the ring before it answers any synchronous request, so a later
 * read (a VGA register's, the debug console's) sees every write before it,
 * as the guest issued them. Xen buffers only the VGA window's memory
 * writes; these are xenemu's addition to the same ring, for what firmware
 * writes in long runs: SeaBIOS's debug console (QEMU's isa-debugcon port
 * 0x402, its DebugOutputPort when no Xen CPUID leaves are found; about 6,000
 * bytes per boot) and the VGA BIOS's sequencer, graphics, attribute, DAC
 * and CRTC registers (0x3B4-0x3B5, 0x3C0-0x3CF, 0x3D4-0x3D5; about 2,700
 * writes while it sets a mode and its palette).
 */
export function isPostedPort(p: number): boolean {
  return p === 0x402 || (p >= 0x3c0 && p <= 0x3cf) || p === 0x3b4 || p === 0x3b5 || p === 0x3d4 || p === 0x3d5;
}

/** Where a vCPU's accesses to passed-through BARs go: its slot of each device's BAR channel. */
export interface PtOptions {
  host: string;
  slot: number;
  log(m: string): void;
  /** bind_pt_irq's pins (device * 4 + intx), each with the line of a device that drives it. */
  intx?(lines: ReadonlyArray<{ pin: number; line(): 0 | 1 }>): void;
}

interface PtWindow { start: number; end: number; bar: number; barOffset: number; ch: BarChannel }

const ONES = [0, 0xff, 0xffff, 0, 0xffffffff] as const;

export interface IoRouterState {
  cf8: number;
  rep: { port: number; size: number; ip: number; vals: number[]; pos: number } | null;
}

export class IoRouter {
  /** port -> server + 1 (0: nobody). */
  private readonly portServer = new Uint8Array(0x10000);
  private pci: Array<{ server: number; start: number; end: number }> = [];
  private mmio: Array<{ server: number; start: number; end: number }> = [];
  private gen = -1;
  private cf8 = 0;
  /** MMIO blocks handed to the router, with what v86 had there before. */
  private readonly blocks = new Map<number, MmioHandler | null>();
  private readonly dv: DataView;
  /**
   * A `rep ins` answered ahead: the elements one ioreq fetched (count N,
   * data_is_ptr, written by the device model straight into guest RAM where
   * the instruction puts them), handed out one by one as v86 asks for each,
   * as long as it is the same instruction on the same port.
   */
  private rep: { port: number; size: number; ip: number; vals: Uint32Array; pos: number } | null = null;
  /** The same for a `rep movs` out of MMIO (movsFromMmio): the next element's address. */
  private movs: { next: number; size: number; ip: number; vals: Uint32Array; pos: number } | null = null;
  private readonly ram: Uint8Array;
  private ptGen = 0;
  private ptMem: PtWindow[] = [];
  private ptPorts: PtWindow[] = [];
  /** port -> 1 while some passthrough window holds it. */
  private readonly portPt = new Uint8Array(0x10000);
  /** Open BAR channels by `sbdf:key` (a new key after a reassignment is a new channel). */
  private readonly channels = new Map<string, BarChannel>();
  /** Accesses that went to a BAR channel (memory, ports). */
  readonly ptStats = { mmio: 0, pio: 0 };

  constructor(private readonly m: V86Machine, private readonly io: IoreqClient, private readonly i32: Int32Array,
              seg: SharedArrayBuffer, private readonly local: ReadonlyMap<number, PortHandler>,
              private readonly afterIo: () => void = () => {},
              private readonly intercept: (PortHandler & { handles(p: number): boolean }) | null = null,
              private readonly pt: PtOptions | null = null) {
    this.dv = new DataView(seg);
    this.ram = m.cpu.mem8;
    const port: PortHandler = { read: (p, s) => this.portRead(p, s), write: (p, s, v) => this.portWrite(p, s, v) };
    for (let p = 0; p < 0x10000; p++) if (!isPlatformPort(p)) m.setPort(p, local.get(p) ?? port);
    m.setPortReadFirst((p, s) => this.repElement(p, s));
    // The VGA window is never RAM in an HVM guest (libxl leaves it out of the physmap).
    this.claimBlocks(VGA_HOLE_START, VGA_HOLE_END - VGA_HOLE_START);
    this.refresh();
  }

  /** The PCI address latch and a `rep ins` answered ahead: what a save keeps of the router. */
  get state(): IoRouterState {
    const r = this.rep;
    return { cf8: this.cf8, rep: r ? { port: r.port, size: r.size, ip: r.ip, vals: Array.from(r.vals), pos: r.pos } : null };
  }

  set state(s: IoRouterState) {
    this.cf8 = s.cf8 >>> 0;
    const r = s.rep;
    this.rep = r ? { port: r.port, size: r.size, ip: r.ip, vals: Uint32Array.from(r.vals), pos: r.pos } : null;
  }

  /** An ioreq, then whatever the device model did to the interrupt lines meanwhile reaches the PIC at once. */
  private send(s: number, type: number, addr: number, addrHi: number, size: number, dir: number, data: number,
               count = 1, dataIsPtr = false): number {
    const r = this.io.send(s, type, addr, addrHi, size, dir, data, count, dataIsPtr);
    this.afterIo();
    return r;
  }

  /** Re-reads the servers' ranges when the hypervisor changed them (a generation in the control page). */
  refresh(): void {
    if (this.pt && Atomics.load(this.i32, (PT_PAGE_OFFSET + pt_page.gen) >> 2) !== this.ptGen) this.refreshPt();
    if (Atomics.load(this.i32, hvm_ctl.ranges_gen >> 2) === this.gen) return;
    const { gen, ranges } = readRanges(this.i32, this.dv);
    this.gen = gen;
    this.portServer.fill(0);
    for (const r of ranges) {
      if (r.type !== XEN_DMOP_IO_RANGE_PORT) continue;
      for (let p = Number(r.start); p <= Number(r.end) && p < 0x10000; p++) if (this.portServer[p] === 0) this.portServer[p] = r.server + 1;
    }
    // Below 4 GiB only: v86 is a 32-bit processor without PAE's wider addresses.
    const below4g = (r: IoRange) => ({ server: r.server, start: Number(r.start), end: Number(r.end < 0xffffffffn ? r.end : 0xffffffffn) });
    this.pci = ranges.filter((r) => r.type === XEN_DMOP_IO_RANGE_PCI).map(below4g);
    this.mmio = ranges.filter((r) => r.type === XEN_DMOP_IO_RANGE_MEMORY && r.start <= 0xffffffffn).map(below4g);
    for (const r of this.mmio) this.claimBlocks(r.start, r.end - r.start + 1);
  }

  /** Re-reads the passthrough page: the BAR windows, each with its device's channel. */
  private refreshPt(): void {
    const { gen, list } = readPtMappings(this.i32, this.dv);
    this.ptGen = gen;
    const win = (e: PtMapping, unit: number): PtWindow | null => {
      const ch = this.channel(e);
      return ch && { start: e.first * unit, end: (e.first + e.nr) * unit - 1, bar: e.bar, barOffset: e.barOffset, ch };
    };
    this.ptMem = list.filter((e) => e.kind === PT_KIND_MEM && e.first + e.nr <= 0x100000)
      .map((e) => win(e, PAGE_SIZE)).filter((w): w is PtWindow => w !== null);
    this.ptPorts = list.filter((e) => e.kind === PT_KIND_PORT && e.first + e.nr <= 0x10000)
      .map((e) => win(e, 1)).filter((w): w is PtWindow => w !== null);
    this.portPt.fill(0);
    for (const w of this.ptPorts) this.portPt.fill(1, w.start, w.end + 1);
    for (const w of this.ptMem) this.claimBlocks(w.start, w.end - w.start + 1);
    const lines: Array<{ pin: number; line(): 0 | 1 }> = [];
    for (const e of list) {
      if (e.kind !== PT_KIND_INTX) continue;
      const ch = this.channel(e);
      if (ch) lines.push({ pin: e.first, line: () => ch.intx });
    }
    this.pt?.intx?.(lines);
  }

  private channel(e: PtMapping): BarChannel | null {
    const id = `${e.sbdf}:${e.key}`;
    let ch = this.channels.get(id);
    if (!ch) {
      try {
        ch = new BarChannel({ segment: pciBarSegment(this.pt!.host, formatSbdf(e.sbdf)), key: e.key, slots: BAR_MAX_SLOTS, bars: [] },
                            this.pt!.slot, this.pt!.log);
      } catch (err) {
        this.pt!.log(`pci: no BAR channel for ${formatSbdf(e.sbdf)}: ${(err as Error).message}`);
        return null;
      }
      this.channels.set(id, ch);
    }
    return ch;
  }

  /** The frames the owned devices' DMA wrote (each BAR channel's DMA ring). */
  drainDma(fn: (pfn: number, n: number) => void, everything: () => void): void {
    for (const ch of this.channels.values()) ch.drainDma(fn, everything);
  }

  private ptWindow(list: PtWindow[], at: number): PtWindow | null {
    for (const w of list) if (at >= w.start && at <= w.end) return w;
    return null;
  }

  private ptRead(w: PtWindow, at: number, size: 1 | 2 | 4, io: boolean): number {
    if (io) this.ptStats.pio++; else this.ptStats.mmio++;
    const v = w.ch.read(w.bar, w.barOffset + at - w.start, size);
    this.afterIo();
    return v;
  }

  private ptWrite(w: PtWindow, at: number, size: 1 | 2 | 4, v: number, io: boolean): void {
    if (io) this.ptStats.pio++; else this.ptStats.mmio++;
    w.ch.write(w.bar, w.barOffset + at - w.start, size, v >>> 0);
    this.afterIo();
  }

  private claimBlocks(addr: number, len: number): void {
    const first = addr >>> MMAP_BLOCK_BITS;
    const last = (addr + len - 1) >>> MMAP_BLOCK_BITS;
    for (let b = first; b <= last; b++) {
      if (this.blocks.has(b)) continue;
      const base = b << MMAP_BLOCK_BITS >>> 0;
      // RAM below ramBytes stays RAM unless it is the VGA window.
      if (base < this.m.ramBytes && !(base >= VGA_HOLE_START && base < VGA_HOLE_END)) continue;
      this.blocks.set(b, this.m.mmioOf(base));
      this.m.setMmio(base, 1 << MMAP_BLOCK_BITS, { read: (a, s) => this.mmioRead(a, s), write: (a, s, v) => this.mmioWrite(a, s, v) });
    }
  }

  private serverOf(ranges: ReadonlyArray<{ server: number; start: number; end: number }>, at: number): number {
    for (const r of ranges) if (at >= r.start && at <= r.end) return r.server;
    return -1;
  }

  /**
   * The next element of the `rep ins` being executed, when repIns fetched
   * its elements in one ioreq; asked by v86 before any port handler
   * (V86Machine.setPortReadFirst): a firmware reading a CD takes a thousand
   * of them per sector.
   */
  private repElement(p: number, size: 1 | 2 | 4): number | null {
    const r = this.rep;
    if (r === null) return null;
    if (r.port === p && r.size === size && r.pos < r.vals.length && r.ip === this.m.cpu.previous_ip[0]) return r.vals[r.pos++]!;
    this.rep = null;
    return null;
  }

  private portRead(p: number, size: 1 | 2 | 4): number {
    if (this.intercept?.handles(p)) return this.intercept.read(p, size);
    this.refresh();
    if (this.portPt[p]) { const w = this.ptWindow(this.ptPorts, p); if (w) return this.ptRead(w, p, size, true); }
    if (p >= 0xcf8 && p <= 0xcff) {
      if (p === 0xcf8 && size === 4) return this.cf8 >>> 0;
      if (p >= 0xcfc && (this.cf8 & 0x80000000)) return this.pciConfig(IOREQ_READ, p, size, 0);
    }
    const s = this.portServer[p]! - 1;
    if (s < 0) return ONES[size];
    const batch = this.repIns(s, p, size);
    if (batch !== null) return batch;
    return (this.send(s, IOREQ_TYPE_PIO, p, 0, size, IOREQ_READ, 0) & ONES[size]) >>> 0;
  }

  /**
   * `rep insw` from an IDE data port is how firmware reads a disk by PIO:
   * one ioreq per word would be a round trip per two bytes. Xen hands the
   * whole string to the device model as one ioreq (count, data_is_ptr, df),
   * and so does this: the elements left in the current page (without
   * crossing a 16-bit DI wrap) in one request, the device model writing them
   * where the instruction will. Returns the first element, or null when this
   * is not such an instruction.
   */
  private repIns(s: number, p: number, size: 1 | 2 | 4): number | null {
    const info = this.m.repIns(p, size);
    if (!info || info.count < 2 || info.backwards) return null;
    let n = Math.min(info.count, Math.floor((PAGE_SIZE - (info.dest & (PAGE_SIZE - 1))) / size));
    if (!info.addr32) n = Math.min(n, Math.floor((0x10000 - (info.dest & 0xffff)) / size));
    const end = info.dest + n * size;
    if (n < 2 || end > this.m.ramBytes || (end > VGA_HOLE_START && info.dest < VGA_HOLE_END)) return null;
    this.send(s, IOREQ_TYPE_PIO, p, 0, size, IOREQ_READ, info.dest, n, true);
    const vals = new Uint32Array(n);
    const dv = new DataView(this.ram.buffer, this.ram.byteOffset + info.dest, n * size);
    for (let i = 0; i < n; i++) vals[i] = size === 1 ? dv.getUint8(i) : size === 2 ? dv.getUint16(i * 2, true) : dv.getUint32(i * 4, true);
    this.rep = { port: p, size, ip: this.m.cpu.previous_ip[0]!, vals, pos: 1 };
    return vals[0]!;
  }

  private portWrite(p: number, size: 1 | 2 | 4, v: number): void {
    if (this.intercept?.handles(p)) { this.intercept.write(p, size, v); return; }
    this.refresh();
    if (this.portPt[p]) { const w = this.ptWindow(this.ptPorts, p); if (w) { this.ptWrite(w, p, size, v, true); return; } }
    if (p >= 0xcf8 && p <= 0xcff) {
      if (p === 0xcf8 && size === 4) { this.cf8 = v >>> 0; return; }
      if (p >= 0xcfc && (this.cf8 & 0x80000000)) { this.pciConfig(IOREQ_WRITE, p, size, v); return; }
    }
    const s = this.portServer[p]! - 1;
    if (s < 0) return;
    if (isPostedPort(p) && (Atomics.load(this.i32, (hvm_ctl.server_state >> 2) + s) & SERVER_BUFIOREQ) !== 0 &&
      this.io.buffered(s, p, size, v, IOREQ_TYPE_PIO)) return;
    this.send(s, IOREQ_TYPE_PIO, p, 0, size, IOREQ_WRITE, v >>> 0);
  }

  /** CF8: enable(31) bus(23:16) device(15:11) function(10:8) register(7:2); extended register bits 27:24 (AMD). */
  private pciConfig(dir: number, port: number, size: 1 | 2 | 4, v: number): number {
    const cf8 = this.cf8;
    const sbdf = (cf8 >>> 8) & 0xffff; // segment 0: bus, device, function
    const reg = (cf8 & 0xfc) | (port & 3);
    const s = this.serverOf(this.pci, sbdf);
    if (s < 0) return dir === IOREQ_READ ? ONES[size] : 0;
    const r = this.send(s, IOREQ_TYPE_PCI_CONFIG, reg, sbdf, size, dir, dir === IOREQ_WRITE ? v >>> 0 : 0);
    return (r & ONES[size]) >>> 0;
  }

  private mmioRead(a: number, size: 1 | 4): number {
    const r = this.movs;
    if (r) {
      if (r.next === a && r.size === size && r.pos < r.vals.length && r.ip === this.m.cpu.previous_ip[0]) {
        r.next = (r.next + size) >>> 0;
        return r.vals[r.pos++]!;
      }
      this.movs = null;
    }
    this.refresh();
    if (this.ptMem.length) { const w = this.ptWindow(this.ptMem, a); if (w) return this.ptRead(w, a, size, false); }
    const s = this.serverOf(this.mmio, a);
    if (s < 0) {
      const fallback = this.blocks.get(a >>> MMAP_BLOCK_BITS);
      return fallback ? fallback.read(a, size) : ONES[size];
    }
    const batch = this.movsFromMmio(s, a, size);
    if (batch !== null) return batch;
    return (this.send(s, IOREQ_TYPE_COPY, a, 0, size, IOREQ_READ, 0) & ONES[size]) >>> 0;
  }

  /**
   * `rep movs` from MMIO into RAM is how firmware copies an option ROM out
   * of its BAR (SeaBIOS's iomemcpy: `rep movsl`, 2 KiB at a time): a round
   * trip per dword would be ten thousand of them for a VGA BIOS. Xen's
   * hvmemul_rep_movs (xen/arch/x86/hvm/emulate.c) sends such a copy as one
   * ioreq (IOREQ_TYPE_COPY, count, data_is_ptr: the device model writes the
   * elements into guest RAM), the repetitions clipped so neither side
   * crosses a page; so does this, and hands v86 the elements one by one as
   * it reads them. Returns the first element, or null when this is not such
   * an instruction (or the copy runs backwards, or out of RAM).
   */
  private movsFromMmio(s: number, a: number, size: 1 | 4): number | null {
    const info = this.m.repMovs(a, size);
    if (!info || info.count < 2 || info.backwards) return null;
    const inPage = (x: number) => Math.floor((PAGE_SIZE - (x & (PAGE_SIZE - 1))) / size);
    const n = Math.min(info.count, info.untilWrap, inPage(a), inPage(info.dest));
    const end = info.dest + n * size;
    if (n < 2 || end > this.m.ramBytes || (end > VGA_HOLE_START && info.dest < VGA_HOLE_END)) return null;
    this.send(s, IOREQ_TYPE_COPY, a, 0, size, IOREQ_READ, info.dest, n, true);
    const vals = new Uint32Array(n);
    const dv = new DataView(this.ram.buffer, this.ram.byteOffset + info.dest, n * size);
    for (let i = 0; i < n; i++) vals[i] = size === 1 ? dv.getUint8(i) : dv.getUint32(i * 4, true);
    this.movs = { next: (a + size) >>> 0, size, ip: this.m.cpu.previous_ip[0]!, vals, pos: 1 };
    return vals[0]!;
  }

  private mmioWrite(a: number, size: 1 | 4, v: number): void {
    this.refresh();
    if (this.ptMem.length) { const w = this.ptWindow(this.ptMem, a); if (w) { this.ptWrite(w, a, size, v, false); return; } }
    const s = this.serverOf(this.mmio, a);
    if (s < 0) {
      this.blocks.get(a >>> MMAP_BLOCK_BITS)?.write(a, size, v);
      return;
    }
    const buffered = a >= VGA_HOLE_START && a < VGA_HOLE_END &&
      (Atomics.load(this.i32, (hvm_ctl.server_state >> 2) + s) & SERVER_BUFIOREQ) !== 0;
    if (buffered && this.io.buffered(s, a, size, v)) return;
    this.send(s, IOREQ_TYPE_COPY, a, 0, size, IOREQ_WRITE, v >>> 0);
  }
}
