// A domain's view of its own shared_info page (xen.h struct shared_info),
// with the atomic bit operations of the 2-level event ABI.
import { shmOpen } from '../shm.js';
import { bitWord, shared_info, vcpu_info, vcpuInfoOffset, PAGE_SIZE } from '../abi/xen.js';

export class SharedInfo {
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly view: DataView;

  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.u8 = new Uint8Array(sab);
    this.view = new DataView(sab);
  }

  static open(segment: string): SharedInfo { return new SharedInfo(shmOpen(segment, PAGE_SIZE)); }

  testPending(port: number): boolean { const [i, b] = bitWord(shared_info.evtchn_pending, port); return (Atomics.load(this.i32, i) & b) !== 0; }
  clearPending(port: number): void { const [i, b] = bitWord(shared_info.evtchn_pending, port); Atomics.and(this.i32, i, ~b); }
  testMask(port: number): boolean { const [i, b] = bitWord(shared_info.evtchn_mask, port); return (Atomics.load(this.i32, i) & b) !== 0; }
  setMask(port: number): void { const [i, b] = bitWord(shared_info.evtchn_mask, port); Atomics.or(this.i32, i, b); }
  clearMask(port: number): void { const [i, b] = bitWord(shared_info.evtchn_mask, port); Atomics.and(this.i32, i, ~b); }

  upcallPending(vcpu: number): number { return Atomics.load(this.u8, vcpuInfoOffset(vcpu) + vcpu_info.evtchn_upcall_pending); }
  setUpcallPending(vcpu: number, v: number): number {
    return Atomics.exchange(this.u8, vcpuInfoOffset(vcpu) + vcpu_info.evtchn_upcall_pending, v);
  }
  upcallMask(vcpu: number): number { return Atomics.load(this.u8, vcpuInfoOffset(vcpu) + vcpu_info.evtchn_upcall_mask); }

  /** Sets selector bit `word` of vcpu's evtchn_pending_sel; returns whether it was set before. */
  testAndSetSel(vcpu: number, word: number): boolean {
    const [i, b] = bitWord(vcpuInfoOffset(vcpu) + vcpu_info.evtchn_pending_sel, word);
    return (Atomics.or(this.i32, i, b) & b) !== 0;
  }

  /** One 32-bit half of xchg(&vcpu->evtchn_pending_sel, 0), allocation-free. */
  takeSelHalf(vcpu: number, half: 0 | 1): number {
    return Atomics.exchange(this.i32, ((vcpuInfoOffset(vcpu) + vcpu_info.evtchn_pending_sel) >> 2) + half, 0) >>> 0;
  }

  /** pending[word] & ~mask[word] as 32-bit halves. */
  activeWord(word: number, half: 0 | 1): number {
    const p = (shared_info.evtchn_pending >> 2) + word * 2 + half;
    const m = (shared_info.evtchn_mask >> 2) + word * 2 + half;
    return (Atomics.load(this.i32, p) & ~Atomics.load(this.i32, m)) >>> 0;
  }

  wallclock(): { sec: number; nsec: number } {
    return { sec: this.view.getUint32(shared_info.wc_sec, true), nsec: this.view.getUint32(shared_info.wc_nsec, true) };
  }
}
