// xenemu's HVM segment, /xenemu.<host>.dom<id>.hvm: what Xen keeps inside
// the hypervisor for an HVM domain and its ioreq servers, in pages that the
// domain process (whose vCPU plays the hypervisor's part in routing I/O),
// the hypervisor and the device models map. xenemu's own layout (no Xen
// header has it); Xen's pages inside it are byte for byte Xen's.
//
//   page 0                  the control page (below)
//   page 1                  the modified-memory ring (below)
//   page 2 + 2*s            ioreq server s's shared_iopage_t   (hvm/ioreq.h)
//   page 3 + 2*s            ioreq server s's buffered_iopage_t (hvm/ioreq.h)
//   page 2 + 2*MAX_SERVERS  the passthrough page: host device BARs mapped into
//                           the guest's physical address space (below)
//   pages 3 + 2*MAX_SERVERS .. +HVM_CONTEXT_PAGES
//                           the vCPU's context (XEN_DOMCTL_gethvmcontext /
//                           sethvmcontext, docs/saverestore.md): u32 length,
//                           u32 reserved, then the context blob
//
// XENMEM_acquire_resource(XENMEM_resource_ioreq_server, s) hands out server
// s's two pages: frame 0 the buffered page, frame 1 + v the synchronous page
// of vCPU v's slot (one page holds every vCPU's ioreq_t).
//
// Control page (little-endian 32-bit words unless said):
//   0x000  vcpu_doorbell      futex word: bumped by whoever wants the vCPU
//                             thread to look again (an interrupt level changed,
//                             a stop); it sleeps on it while halted (HLT)
//   0x040  dm_doorbell[s]     futex word per server: bumped when a vCPU posts
//                             an ioreq or a buffered ioreq to server s
//   0x060  dm_sleeping[s]     1 while server s's device model is about to sleep
//                             on its doorbell: only then does a poster futexWake it
//                             (the device model sets it, then looks for work once
//                             more, then sleeps: no wake-up is lost)
//   0x080  server_state[s]    bit 0 enabled, bit 1 takes buffered ioreqs,
//                             bit 2 exists; byte 1 the server's emulator domid
//   0x0a0  msi_pending[8]     latch: bit v of the 256 set when a message with
//                             vector v is due for the vCPU's local APIC (a
//                             passed-through device's MSI, bound by
//                             XEN_DOMCTL_bind_pt_irq PT_IRQ_TYPE_MSI; Xen's
//                             vmsi_deliver to a fixed, edge vector), taken
//                             (exchanged with 0) by the vCPU into the APIC's IRR
//   0x0c0  irq_gen            bumped after any change below
//   0x0c4  isa_irq_level      bit n: ISA IRQ n asserted (XEN_DMOP_set_isa_irq_level)
//   0x0c8  pci_intx_level[4]  bit (dev*4 + intx) % 32 of word (dev*4 + intx) / 32
//   0x0d8  pci_link_route[4]  PCI link A-D -> ISA IRQ (0 none), XEN_DMOP_set_pci_link_route
//   0x0e8  suspend_req        1: the hypervisor asks the vCPU to stop at its next
//                             turn, write its context and suspend the domain
//                             (SCHEDOP_remote_shutdown(SHUTDOWN_suspend) of an
//                             HVM guest); cleared when it resumes in place
//   0x0ec  context_state      the context pages: 0 empty, 1 written by the vCPU
//                             at a suspend, 2 written by the toolstack for the
//                             vCPU to start from (a restore)
//   0x0f0  isa_irq_raised     latch: bit n set when ISA IRQ n went from low to
//                             high, taken (exchanged with 0) by the vCPU, so an
//                             edge the device dropped again before the vCPU
//                             looked still reaches the PIC, as Xen's vPIC
//                             latches a rising edge in IRR
//   0x0f4  pm1a_raise         PM1a status bits the hypervisor raised for the
//                             vCPU's ACPI PM registers (XEN_DOMCTL_sendtrigger:
//                             PWRBTN_STS, SLPBTN_STS), taken (exchanged with 0)
//                             by the vCPU
//   0x0f8  shutdown_req       the vCPU's request to the hypervisor (reserved)
//   0x0fc  acpi_ioports       HVM_PARAM_ACPI_IOPORTS_LOCATION: 0 the PM block at
//                             0x1f40 (Xen's original), 1 at 0xb000 (QEMU's PIIX4)
//   0x100  ranges_gen         bumped after the range table changed
//   0x104  nr_ranges
//   0x110  ranges[nr_ranges]  16 bytes each: u8 server, u8 type (XEN_DMOP_IO_RANGE_*),
//                             u16 pad, u32 pad, ... see below
//
// Modified-memory ring (page 1): guest frames a device model wrote behind
// the vCPU's back (DMA), which the vCPU must forget any code it translated
// from (v86's JIT): Xen's XEN_DMOP_modified_memory, as a ring the device
// model fills without a hypercall.
//   0x000  prod               bumped by device models after writing an entry
//   0x004  cons               the vCPU's
//   0x008  overflow           set when a writer found the ring full: forget everything
//   0x010  entries[MODIFIED_RING_SLOTS]   u32 first_pfn, u32 nr_pages
//
// Passthrough page: what XEN_DOMCTL_memory_mapping / ioport_mapping put in
// the guest's p2m (Xen's map_mmio_regions) for a device the guest owns. The
// hypervisor alone writes it (a seqlock: pt_gen odd while it writes); the
// vCPU sends an access inside an entry straight to the device's BAR channel
// (shared/hw/bar_channel.ts), never to a device model.
//   0x000  pt_gen             bumped (twice) around every rewrite
//   0x004  nr_pt
//   0x010  pt[nr_pt]          32 bytes each: u32 kind (0 memory, 1 ports),
//                             u32 first (guest frame or port), u32 nr (frames or ports),
//                             u32 sbdf, u32 bar, u32 bar_offset (bytes into the BAR),
//                             u32 key (the owner's BAR channel key), u32 pad
//                             kind 2 (INTx): what XEN_DOMCTL_bind_pt_irq bound, one
//                             entry per device on the machine GSI: first the guest's
//                             pin (device * 4 + intx, as pci_intx_level numbers it),
//                             nr 1, sbdf the device, bar the machine GSI, key its
//                             BAR channel key. The vCPU takes the pin's level in
//                             pci_intx_level (the hypervisor's, from the device's
//                             `irq` messages: the assert path) only while some
//                             device bound to it still drives its line in its BAR
//                             channel (shared/hw/bar_channel.ts `intx`): the guest's
//                             handler quietening the device through a BAR access
//                             drops the pin at once, as the device's own register
//                             write would, not a message's trip later (a level line
//                             seen high after the device dropped it is a storm of
//                             unhandled interrupts).
//
// A range is { server, type, start, end } with start/end inclusive 64-bit;
// the table holds at most MAX_IO_RANGES entries (Xen allows 256 per server
// and type; xenemu's device models claim a few dozen).
import { PAGE_SIZE } from '../xen.js';

export const XENEMU_HVM_MAX_IOREQ_SERVERS = 8;
/** Byte offset of the passthrough page. */
export const PT_PAGE_OFFSET = (2 + 2 * XENEMU_HVM_MAX_IOREQ_SERVERS) * PAGE_SIZE;
export const pt_page = { gen: 0, nr: 4, entries: 16 } as const;
export const PT_ENTRY_SIZE = 32;
export const MAX_PT_ENTRIES = Math.floor((PAGE_SIZE - pt_page.entries) / PT_ENTRY_SIZE);
export const PT_KIND_MEM = 0;
export const PT_KIND_PORT = 1;
export const PT_KIND_INTX = 2;

/** One BAR window mapped into the guest (memory: frames; ports: ports). */
export interface PtMapping { kind: number; first: number; nr: number; sbdf: number; bar: number; barOffset: number; key: number }

/** The hypervisor's rewrite of the passthrough page. */
export function writePtMappings(i32: Int32Array, dv: DataView, list: readonly PtMapping[]): void {
  const base = PT_PAGE_OFFSET;
  const n = Math.min(list.length, MAX_PT_ENTRIES);
  Atomics.add(i32, (base + pt_page.gen) >> 2, 1);
  for (let i = 0; i < n; i++) {
    const e = list[i]!;
    const at = base + pt_page.entries + i * PT_ENTRY_SIZE;
    [e.kind, e.first, e.nr, e.sbdf, e.bar, e.barOffset, e.key, 0].forEach((v, k) => dv.setUint32(at + 4 * k, v >>> 0, true));
  }
  Atomics.store(i32, (base + pt_page.nr) >> 2, n);
  Atomics.add(i32, (base + pt_page.gen) >> 2, 1);
}

/** The vCPU's consistent read of the passthrough page. */
export function readPtMappings(i32: Int32Array, dv: DataView): { gen: number; list: PtMapping[] } {
  const base = PT_PAGE_OFFSET;
  for (;;) {
    const g = Atomics.load(i32, (base + pt_page.gen) >> 2);
    if (g & 1) continue;
    const n = Math.min(Atomics.load(i32, (base + pt_page.nr) >> 2), MAX_PT_ENTRIES);
    const list: PtMapping[] = [];
    for (let i = 0; i < n; i++) {
      const at = base + pt_page.entries + i * PT_ENTRY_SIZE;
      const u = (k: number) => dv.getUint32(at + 4 * k, true);
      list.push({ kind: u(0), first: u(1), nr: u(2), sbdf: u(3), bar: u(4), barOffset: u(5), key: u(6) });
    }
    if (Atomics.load(i32, (base + pt_page.gen) >> 2) === g) return { gen: g, list };
  }
}
/** The vCPU context's pages (v86's registers and platform devices, a few KiB; RAM is the memory segment's). */
export const HVM_CONTEXT_PAGES = 8;
export const HVM_CONTEXT_OFFSET = (3 + 2 * XENEMU_HVM_MAX_IOREQ_SERVERS) * PAGE_SIZE;
/** The largest context blob the pages hold (after its 8-byte header). */
export const HVM_CONTEXT_MAX = HVM_CONTEXT_PAGES * PAGE_SIZE - 8;
export const XENEMU_HVM_SEGMENT_PAGES = 3 + 2 * XENEMU_HVM_MAX_IOREQ_SERVERS + HVM_CONTEXT_PAGES;
export const HVM_CONTEXT_EMPTY = 0;
export const HVM_CONTEXT_SAVED = 1;
export const HVM_CONTEXT_RESTORE = 2;
export const MODIFIED_RING_OFFSET = PAGE_SIZE;
export const modified_ring = { prod: 0, cons: 4, overflow: 8, entries: 16 } as const;
export const MODIFIED_RING_SLOTS = (PAGE_SIZE - modified_ring.entries) / 8;

export const hvm_ctl = {
  vcpu_doorbell: 0x000,
  dm_doorbell: 0x040,
  dm_sleeping: 0x060,
  server_state: 0x080,
  msi_pending: 0x0a0,
  irq_gen: 0x0c0,
  isa_irq_level: 0x0c4,
  pci_intx_level: 0x0c8,
  pci_link_route: 0x0d8,
  suspend_req: 0x0e8,
  context_state: 0x0ec,
  isa_irq_raised: 0x0f0,
  pm1a_raise: 0x0f4,
  shutdown_req: 0x0f8,
  acpi_ioports: 0x0fc,
  ranges_gen: 0x100,
  nr_ranges: 0x104,
  ranges: 0x110,
} as const;

export const HVM_RANGE_SIZE = 24;
export const MAX_IO_RANGES = Math.floor((PAGE_SIZE - hvm_ctl.ranges) / HVM_RANGE_SIZE);
//   range: u8 server, u8 type, u16 pad, u32 pad, u64 start, u64 end   (24 bytes)
export const hvm_range = { server: 0, type: 1, start: 8, end: 16 } as const;

export const SERVER_EXISTS = 1 << 2;
export const SERVER_ENABLED = 1 << 0;
export const SERVER_BUFIOREQ = 1 << 1;

/** Byte offset in the segment of server s's synchronous page. */
export const ioreqPageOffset = (s: number): number => (2 + 2 * s) * PAGE_SIZE;
/** Byte offset in the segment of server s's buffered page. */
export const bufioreqPageOffset = (s: number): number => (3 + 2 * s) * PAGE_SIZE;

/**
 * A device model records that it wrote guest frames [pfn, pfn+n) (one
 * producer per ring position: callers serialise; qemu-dm has one ioreq thread).
 */
export function recordModified(i32: Int32Array, dv: DataView, pfn: number, n: number,
                               base = MODIFIED_RING_OFFSET, slots = MODIFIED_RING_SLOTS): void {
  const prod = Atomics.load(i32, (base + modified_ring.prod) >> 2) >>> 0;
  const cons = Atomics.load(i32, (base + modified_ring.cons) >> 2) >>> 0;
  if (((prod - cons) >>> 0) >= slots) { Atomics.store(i32, (base + modified_ring.overflow) >> 2, 1); return; }
  const at = base + modified_ring.entries + (prod % slots) * 8;
  dv.setUint32(at, pfn >>> 0, true);
  dv.setUint32(at + 4, n >>> 0, true);
  Atomics.store(i32, (base + modified_ring.prod) >> 2, (prod + 1) | 0);
}

/**
 * The vCPU takes what was recorded: calls fn per range, or everything() after an overflow.
 * `base` and `slots` name another ring of the same layout (a host device's, shared/hw/bar_channel.ts).
 */
export function drainModified(i32: Int32Array, dv: DataView, fn: (pfn: number, n: number) => void, everything: () => void,
                              base = MODIFIED_RING_OFFSET, slots = MODIFIED_RING_SLOTS): void {
  if (Atomics.exchange(i32, (base + modified_ring.overflow) >> 2, 0)) everything();
  let cons = Atomics.load(i32, (base + modified_ring.cons) >> 2) >>> 0;
  const prod = Atomics.load(i32, (base + modified_ring.prod) >> 2) >>> 0;
  while (cons !== prod) {
    const at = base + modified_ring.entries + (cons % slots) * 8;
    fn(dv.getUint32(at, true), dv.getUint32(at + 4, true));
    cons = (cons + 1) >>> 0;
  }
  Atomics.store(i32, (base + modified_ring.cons) >> 2, cons | 0);
}

/**
 * Which of PIRQ A-D an INTx pin of bus-0 device `device` drives. Xen's
 * hvm_pci_intx_link is (dev + intx) & 3, matched by hvmloader's tables; but
 * xenemu boots SeaBIOS without hvmloader, as on QEMU, and SeaBIOS routes the
 * links, fills PCI_INTERRUPT_LINE and its $PIR table with QEMU's PIIX3
 * swizzle, (dev - 1 + intx) & 3 (piix_pci_slot_get_irq). The platform
 * follows the firmware it runs, so that what the firmware tells the guest
 * is true.
 */
export const pciIntxLink = (device: number, intx: number): number => (device - 1 + intx) & 3;

export interface IoRange { server: number; type: number; start: bigint; end: bigint }

// The range table is a seqlock: the writer (the hypervisor) makes ranges_gen
// odd, writes, makes it even; a reader that saw an odd or changed generation
// reads again. Returns the table and the generation it belongs to.
export function readRanges(i32: Int32Array, dv: DataView): { gen: number; ranges: IoRange[] } {
  for (;;) {
    const g1 = Atomics.load(i32, hvm_ctl.ranges_gen >> 2);
    if (g1 & 1) continue;
    const n = Math.min(dv.getUint32(hvm_ctl.nr_ranges, true), MAX_IO_RANGES);
    const ranges: IoRange[] = [];
    for (let i = 0; i < n; i++) {
      const at = hvm_ctl.ranges + i * HVM_RANGE_SIZE;
      ranges.push({
        server: dv.getUint8(at + hvm_range.server), type: dv.getUint8(at + hvm_range.type),
        start: dv.getBigUint64(at + hvm_range.start, true), end: dv.getBigUint64(at + hvm_range.end, true),
      });
    }
    if (Atomics.load(i32, hvm_ctl.ranges_gen >> 2) === g1) return { gen: g1, ranges };
  }
}

export function writeRanges(i32: Int32Array, dv: DataView, ranges: readonly IoRange[]): void {
  if (ranges.length > MAX_IO_RANGES) throw new RangeError('too many ioreq ranges');
  Atomics.add(i32, hvm_ctl.ranges_gen >> 2, 1);
  ranges.forEach((r, i) => {
    const at = hvm_ctl.ranges + i * HVM_RANGE_SIZE;
    dv.setUint8(at + hvm_range.server, r.server);
    dv.setUint8(at + hvm_range.type, r.type);
    dv.setBigUint64(at + hvm_range.start, r.start, true);
    dv.setBigUint64(at + hvm_range.end, r.end, true);
  });
  dv.setUint32(hvm_ctl.nr_ranges, ranges.length, true);
  Atomics.add(i32, hvm_ctl.ranges_gen >> 2, 1);
}

/** The context blob in the segment's context pages, or null when there is none of `state`. */
export function readHvmContext(seg: SharedArrayBuffer, state: number): Uint8Array | null {
  const i32 = new Int32Array(seg);
  if (Atomics.load(i32, hvm_ctl.context_state >> 2) !== state) return null;
  const len = new DataView(seg).getUint32(HVM_CONTEXT_OFFSET, true);
  if (len > HVM_CONTEXT_MAX) return null;
  return new Uint8Array(seg, HVM_CONTEXT_OFFSET + 8, len).slice();
}

/** Puts a context blob in the segment's context pages, marked `state`; false when it does not fit. */
export function writeHvmContext(seg: SharedArrayBuffer, blob: Uint8Array, state: number): boolean {
  if (blob.byteLength > HVM_CONTEXT_MAX) return false;
  new DataView(seg).setUint32(HVM_CONTEXT_OFFSET, blob.byteLength, true);
  new Uint8Array(seg, HVM_CONTEXT_OFFSET + 8, blob.byteLength).set(blob);
  Atomics.store(new Int32Array(seg), hvm_ctl.context_state >> 2, state);
  return true;
}
