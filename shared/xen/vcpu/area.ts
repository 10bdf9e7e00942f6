// The vCPU area as a domain maps it (shared/abi/vcpu.ts has the layout), and
// the pool's private control block shared with its worker threads.
import { PAGE_SIZE } from '../../abi/xen.js';
import { shmOpen } from '../../shm.js';
import { readRunstateConsistent, runstateOffset, vcpuWord, xenemu_vcpu_slot, XENEMU_VCPU_SLOT_SIZE,
         type VcpuRunstateInfo } from '../../abi/vcpu.js';

export class VcpuArea {
  readonly i32: Int32Array;
  readonly dv: DataView;
  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.dv = new DataView(sab);
  }

  static open(name: string): VcpuArea { return new VcpuArea(shmOpen(name, PAGE_SIZE)); }

  grant(v: number): number { return Atomics.load(this.i32, vcpuWord(v, 'grant')); }
  released(v: number): number { return Atomics.load(this.i32, vcpuWord(v, 'released')); }
  setReleased(v: number, gen: number): void { Atomics.store(this.i32, vcpuWord(v, 'released'), gen); }
  /** Publishes the generation the thread runs guest work under (0: none). */
  setHeld(v: number, gen: number): void { Atomics.store(this.i32, vcpuWord(v, 'held'), gen); }
  /** Wakes the thread waiting for vCPU v's grant (the hypervisor cannot: another process). */
  notifyGrant(v: number): void { Atomics.notify(this.i32, vcpuWord(v, 'grant')); }
  pcpu(v: number): number { return Atomics.load(this.i32, vcpuWord(v, 'pcpu')); }
  online(v: number): boolean { return Atomics.load(this.i32, vcpuWord(v, 'online')) === 1; }
  slices(v: number): number { return Atomics.load(this.i32, vcpuWord(v, 'slices')) >>> 0; }
  preempts(v: number): number { return Atomics.load(this.i32, vcpuWord(v, 'preempts')) >>> 0; }
  deadline(v: number): bigint { return this.dv.getBigUint64(v * XENEMU_VCPU_SLOT_SIZE + xenemu_vcpu_slot.deadline, true); }
  stolenNs(v: number): bigint { return this.dv.getBigUint64(v * XENEMU_VCPU_SLOT_SIZE + xenemu_vcpu_slot.stolen, true); }
  runstate(v: number): VcpuRunstateInfo { return readRunstateConsistent(this.dv, runstateOffset(v)); }
}

// Control block private to one domain process (main thread + vCPU workers),
// Int32 words. Not shared with the hypervisor.
export const CTL_DOORBELL = 0; // bumped by a worker that released a slice
export const CTL_CLOSED = 1; // the pool is closing: waiting workers give up
const CTL_VCPU_BASE = 8;
const CTL_VCPU_WORDS = 4;
/** Generation the vCPU's thread holds now (0 none). */
export const ctlHeld = (v: number) => CTL_VCPU_BASE + v * CTL_VCPU_WORDS;
/** 1 while the vCPU's thread blocks inside its work (VcpuContext.block): the main thread says SCHEDOP_block. */
export const ctlBlocked = (v: number) => CTL_VCPU_BASE + v * CTL_VCPU_WORDS + 1;
export const CTL_WORDS = CTL_VCPU_BASE + 32 * CTL_VCPU_WORDS;
