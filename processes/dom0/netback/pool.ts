// Domain-0's packet frames. A packet a guest transmits is grant-copied
// (GNTTABOP_copy, done by the hypervisor) into one of Dom0's own frames;
// the bridge hands views of it to the ports it goes out on, and each
// receiving vif grant-copies it from there into a guest's rx buffer. A frame
// is reference counted: the ingress holds one reference while the bridge
// decides, each queued egress one more; the last unref frees it.
//
// The frames are the top `count` pfns of Dom0's memory, which nothing else
// in Domain-0 uses (its services live in the process heap).
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { GuestMemory } from '../../../shared/xen/index.js';

export class FramePool {
  private readonly free: number[] = [];
  private readonly refs: Uint16Array;
  readonly base: number;

  constructor(private readonly mem: GuestMemory, readonly count: number) {
    this.base = mem.nrFrames - count;
    if (this.base < 64) throw new RangeError(`Dom0 has ${mem.nrFrames} frames, too few for ${count} packet frames`);
    this.refs = new Uint16Array(count);
    for (let i = count - 1; i >= 0; i--) this.free.push(this.base + i);
  }

  get available(): number { return this.free.length; }

  /**
   * Frames kept for packets on their way (a quarter of the pool): a vif
   * whose guest is behind on rx buffers gets no new frame once fewer than
   * this are free, so that receivers that do not keep up cannot hold every
   * frame and stop everyone's transmit path.
   */
  get reserve(): number { return this.count >> 2; }

  /** A frame with one reference, or -1 when all are in flight. */
  alloc(): number {
    const pfn = this.free.pop();
    if (pfn === undefined) return -1;
    this.refs[pfn - this.base] = 1;
    return pfn;
  }

  /** A view of the first `len` bytes of `pfn`. */
  view(pfn: number, len: number): Uint8Array {
    return new Uint8Array(this.mem.sab, pfn * PAGE_SIZE, len);
  }

  /** The pool frame a view returned by view() lies in, or -1. */
  pfnOf(v: Uint8Array): number {
    if (v.buffer !== this.mem.sab) return -1;
    const pfn = Math.floor(v.byteOffset / PAGE_SIZE);
    return pfn >= this.base && pfn < this.base + this.count && this.refs[pfn - this.base]! > 0 ? pfn : -1;
  }

  ref(pfn: number): void { this.refs[pfn - this.base]!++; }

  unref(pfn: number): void {
    const i = pfn - this.base;
    if (this.refs[i] === 0) return;
    if (--this.refs[i]! === 0) this.free.push(pfn);
  }
}
