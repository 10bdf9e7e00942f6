// A host PCI device's BAR channel (docs/passthrough.md): the shm segment
// `xenemu.<host>.pci<bdf>.bar` through which the device's owner reaches its
// registers without Domain-0 or qemu-dm in the path. The hypervisor creates
// it with the device and hands its name to the owner only.
//
//   offset  what
//   0       magic 'XBAR'
//   4       doorbell      the client adds 1 after posting a request
//   8       dev_sleeping  1 while the device process sleeps on the doorbell (futex)
//   12      gone          1 once the device process died (the hypervisor sets it):
//                         every request reads all-ones from then on
//   16      intx          the device's INTA# level (0/1), the device's to write:
//                         set before it answers the access that changed it and
//                         before its `irq {intx}` message leaves, so an HVM
//                         owner's vCPU sees a line its handler quietened drop
//                         at once (shared/abi/hvm/xenemu_hvm.ts, PT_KIND_INTX)
//   64      ioreq_t slots (xen/hvm/ioreq.h, shared/abi/hvm/ioreq.ts), 32 bytes each,
//           one per vCPU of the owner plus one (BAR_MAX_SLOTS at most)
//   2048    the DMA ring: the owner's frames the device wrote, the layout of the
//           HVM segment's modified-memory ring (shared/abi/hvm/xenemu_hvm.ts:
//           prod, cons, overflow, then u32 first_pfn, u32 nr_pages entries),
//           the device the one producer; an HVM owner's vCPU drains it and
//           forgets code it translated from those frames, as it does for
//           qemu-dm's DMA (a PV owner's kernel has no translations to forget)
//
// A request, as a vCPU's ioreq to its device model (processes/domu/hvm/ioreq.ts):
//   addr      offset inside the BAR (low 32 bits), BAR index (high 32 bits)
//   type      IOREQ_TYPE_COPY for a memory BAR, IOREQ_TYPE_PIO for an I/O BAR
//   vp_eport  the owner's key, from the hypervisor with the segment name: a
//             request with another key (a former owner's) is answered all-ones
//             and not done
//   size 1, 2 or 4; dir IOREQ_READ / IOREQ_WRITE; data the value
//
//   client                                   device process
//   body, state=READY, doorbell++ ─futex─>   (if dev_sleeping) INPROCESS, access,
//   spin, then futex-wait on the state word  data, state=IORESP_READY ─futex─> client
//   read data, state=NONE
import { futexWait, futexWake, shmOpen } from '../shm.js';
import {
  IOREQ_READ, IOREQ_SIZE, IOREQ_STATE_WORD, IOREQ_TYPE_COPY, IOREQ_TYPE_PIO, IOREQ_WRITE, STATE_IOREQ_NONE,
  STATE_IOREQ_READY, STATE_IORESP_READY, ioreq, ioreqBits,
} from '../abi/hvm/ioreq.js';
import { PAGE_SIZE, XEN_LEGACY_MAX_VCPUS } from '../abi/xen.js';
import { drainModified, modified_ring } from '../abi/hvm/xenemu_hvm.js';

export const BAR_MAGIC = 0x52414258; // 'XBAR'
export const bar_channel = { magic: 0, doorbell: 4, dev_sleeping: 8, gone: 12, intx: 16, slots: 64, dma_ring: 2048 } as const;
export const BAR_DMA_RING_SLOTS = (PAGE_SIZE - bar_channel.dma_ring - modified_ring.entries) / 8;
export const BAR_MAX_SLOTS = XEN_LEGACY_MAX_VCPUS + 1;
export const BAR_SEGMENT_SIZE = PAGE_SIZE;
export const barSlotOffset = (slot: number): number => bar_channel.slots + slot * IOREQ_SIZE;

/** What the owner learns with the segment's name (XENEMU_PHYSDEVOP_pci_bar_channel). */
export interface BarChannelGrant {
  segment: string;
  key: number;
  slots: number;
  bars: { index: number; kind: 'mem' | 'io'; size: number }[];
  /** The device's posted-interrupt wake-up line, which a PV owner connects to with `key` (docs/passthrough.md). */
  irqSocket?: string;
}

/** Spin this long for an answer (a device process that is awake answers in microseconds), then sleep. */
const SPIN_NS = 30_000n;

/**
 * The owner's side: one slot (one vCPU, or the extra slot), synchronous
 * accesses. A channel whose device died answers all-ones, as a PCI read of
 * a function that is gone (master abort), and says so once through `log`.
 */
export class BarChannel {
  private readonly seg: SharedArrayBuffer;
  private readonly i32: Int32Array;
  private readonly dv: DataView;
  private readonly at: number;
  private told = false;
  /** Another way to wake the device's event loop (a byte on its irq line): false when it could not. */
  private doorbell: (() => boolean) | null = null;
  readonly stats = { requests: 0, posted: 0, spun: 0, slept: 0, gone: 0 };

  constructor(grant: BarChannelGrant, private readonly slot: number, private readonly log: (m: string) => void = () => {}) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= Math.min(grant.slots, BAR_MAX_SLOTS)) throw new RangeError(`BAR channel slot ${slot}`);
    this.seg = shmOpen(grant.segment, BAR_SEGMENT_SIZE);
    this.i32 = new Int32Array(this.seg);
    this.dv = new DataView(this.seg);
    this.at = barSlotOffset(slot);
    this.key = grant.key >>> 0;
    this.kinds = new Map(grant.bars.map((b) => [b.index, b.kind]));
  }

  private readonly key: number;
  private readonly kinds: Map<number, 'mem' | 'io'>;

  get gone(): boolean { return Atomics.load(this.i32, bar_channel.gone >> 2) !== 0; }

  /**
   * Wakes a sleeping device with `ring` instead of the futex: a PV owner's
   * byte on the device's irq line (docs/passthrough.md "BAR channel"),
   * which the device's event loop reads itself, where the futex wakes its
   * doorbell thread, which then wakes the loop. null: the futex again.
   */
  setDoorbell(ring: (() => boolean) | null): void { this.doorbell = ring; }

  /** The owner's frames the device wrote since the last call (fn per range; everything() after an overflow). */
  drainDma(fn: (pfn: number, n: number) => void, everything: () => void): void {
    drainModified(this.i32, this.dv, fn, everything, bar_channel.dma_ring, BAR_DMA_RING_SLOTS);
  }

  /** The device's INTA# as it drives it now (a device that is gone drives nothing). */
  get intx(): 0 | 1 { return Atomics.load(this.i32, bar_channel.intx >> 2) !== 0 && !this.gone ? 1 : 0; }

  read(bar: number, offset: number, size: 1 | 2 | 4): number {
    return this.access(bar, offset, size, IOREQ_READ, 0);
  }

  write(bar: number, offset: number, size: 1 | 2 | 4, value: number): void {
    this.access(bar, offset, size, IOREQ_WRITE, value);
  }

  /** The state word of a posted write not yet answered, or -1. */
  private posted = -1;

  /**
   * Waits for the answer to the posted write, if any: the slot is the
   * owner's again. Every access does this first, so accesses stay in order.
   */
  settle(): void {
    const word = this.posted;
    if (word < 0) return;
    this.posted = -1;
    const type = Atomics.load(this.i32, word) >>> 24;
    if (!this.wait(word << 2, word)) this.lost();
    Atomics.store(this.i32, word, (type << 24) | (ioreqBits(STATE_IOREQ_NONE, false, 0, false) << 16));
  }

  private lost(): void {
    this.stats.gone++;
    if (!this.told) { this.told = true; this.log(`pci: the device of this BAR channel is gone: accesses read all-ones`); }
  }

  private access(bar: number, offset: number, size: 1 | 2 | 4, dir: number, value: number): number {
    const ones = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    this.settle();
    if (this.gone) {
      this.lost();
      return dir === IOREQ_READ ? ones : 0;
    }
    const type = this.kinds.get(bar) === 'io' ? IOREQ_TYPE_PIO : IOREQ_TYPE_COPY;
    const at = this.at;
    const dv = this.dv;
    dv.setUint32(at + ioreq.addr, offset >>> 0, true);
    dv.setUint32(at + ioreq.addr + 4, bar >>> 0, true);
    dv.setUint32(at + ioreq.data, value >>> 0, true);
    dv.setUint32(at + ioreq.data + 4, 0, true);
    dv.setUint32(at + ioreq.count, 1, true);
    dv.setUint32(at + ioreq.size, size, true);
    dv.setUint32(at + ioreq.vp_eport, this.key, true);
    const word = (at + IOREQ_STATE_WORD) >> 2;
    Atomics.store(this.i32, word, (ioreqBits(STATE_IOREQ_READY, false, dir, false) << 16) | (type << 24));
    Atomics.add(this.i32, bar_channel.doorbell >> 2, 1);
    if (Atomics.load(this.i32, bar_channel.dev_sleeping >> 2) && !this.doorbell?.()) futexWake(this.seg, bar_channel.doorbell, 1);
    this.stats.requests++;
    // A write to a memory BAR is posted, as on PCIe: it returns at once and
    // the next access waits for its answer (settle). I/O writes are not.
    if (dir === IOREQ_WRITE && type === IOREQ_TYPE_COPY) {
      this.posted = word;
      this.stats.posted++;
      return 0;
    }
    if (!this.wait(at + IOREQ_STATE_WORD, word)) {
      this.lost();
      Atomics.store(this.i32, word, type << 24);
      return dir === IOREQ_READ ? ones : 0;
    }
    const out = dir === IOREQ_READ ? dv.getUint32(at + ioreq.data, true) & ones : 0;
    Atomics.store(this.i32, word, (type << 24) | (ioreqBits(STATE_IOREQ_NONE, false, 0, false) << 16));
    return out >>> 0;
  }

  /** Until the answer (true), or the device is gone (false). */
  private wait(byteOffset: number, word: number): boolean {
    const until = process.hrtime.bigint() + SPIN_NS;
    for (;;) {
      if (((Atomics.load(this.i32, word) >>> 16) & 0xf) === STATE_IORESP_READY) { this.stats.spun++; return true; }
      if (process.hrtime.bigint() > until) break;
    }
    for (;;) {
      const w = Atomics.load(this.i32, word);
      if (((w >>> 16) & 0xf) === STATE_IORESP_READY) { this.stats.slept++; return true; }
      if (this.gone) return false;
      // The hypervisor wakes every slot when it marks the device gone; the
      // bound is only against a wake-up lost to a device killed mid-answer.
      futexWait(this.seg, byteOffset, w, 100);
    }
  }
}
