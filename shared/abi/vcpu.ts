// Layouts and constants from xen/include/public/vcpu.h (Xen 4.17).

export const VCPUOP_initialise = 0;
export const VCPUOP_up = 1;
export const VCPUOP_down = 2;
export const VCPUOP_is_up = 3;
export const VCPUOP_get_runstate_info = 4;
export const VCPUOP_register_runstate_memory_area = 5;

export const RUNSTATE_running = 0;
export const RUNSTATE_runnable = 1;
export const RUNSTATE_blocked = 2;
export const RUNSTATE_offline = 3;

/** Set in state_entry_time while the hypervisor updates the record. */
export const XEN_RUNSTATE_UPDATE = 1n << 63n;

// struct vcpu_runstate_info (48 bytes): int state; (pad) uint64 state_entry_time; uint64 time[4]
export const vcpu_runstate_info = { state: 0, state_entry_time: 8, time: 16, SIZE: 48 } as const;

export interface VcpuRunstateInfo {
  state: number;
  state_entry_time: bigint;
  time: [bigint, bigint, bigint, bigint];
}

export function encodeRunstate(dv: DataView, off: number, r: VcpuRunstateInfo): void {
  dv.setInt32(off + vcpu_runstate_info.state, r.state, true);
  dv.setBigUint64(off + vcpu_runstate_info.state_entry_time, r.state_entry_time, true);
  for (let i = 0; i < 4; i++) dv.setBigUint64(off + vcpu_runstate_info.time + 8 * i, r.time[i], true);
}

export function decodeRunstate(dv: DataView, off: number): VcpuRunstateInfo {
  const t = (i: number) => dv.getBigUint64(off + vcpu_runstate_info.time + 8 * i, true);
  return {
    state: dv.getInt32(off + vcpu_runstate_info.state, true),
    state_entry_time: dv.getBigUint64(off + vcpu_runstate_info.state_entry_time, true),
    time: [t(0), t(1), t(2), t(3)],
  };
}

/** runstate names, index = RUNSTATE_* (xl vcpu-list letters: r, -, b, p). */
export const RUNSTATE_NAMES = ['running', 'runnable', 'blocked', 'offline'] as const;

// ---------------------------------------------------------------------------
// xenemu's vCPU area: not a Xen layout. One segment per domain,
// /xenemu.<host>.dom<id>.vcpu, XEN_LEGACY_MAX_VCPUS slots of 128 bytes (one
// page). A slot starts with Xen's vcpu_runstate_info so that code reading
// runstate the Xen way works on it unchanged; after it come the words of
// xenemu's slice grant (docs/scheduler.md). All little-endian, 8-aligned.
//
//   off  size  field       writer      meaning
//     0    48  runstate    hypervisor  struct vcpu_runstate_info (above)
//    48     4  grant       hypervisor  generation of the slice held now; 0 = no slice
//    52     4  pcpu        hypervisor  pCPU of the current or last slice; -1 = never ran
//    56     8  deadline    hypervisor  CLOCK_MONOTONIC ns at which the current slice ends
//    64     4  online      hypervisor  1 while the vCPU is up (VCPUOP_up/down)
//    68     4  released    guest       last generation the vCPU gave back
//    72     4  slices      hypervisor  slices granted so far
//    76     4  preempts    hypervisor  times the domain was SIGSTOPped for keeping this vCPU's pCPU
//    80     8  stolen      hypervisor  ns charged as running after a revocation was ignored
//    88     4  held        guest       generation its thread is running guest work under; 0 = none
//
// At the end of a revocation's grace period the hypervisor reads `held` once:
// non-zero means the vCPU kept its pCPU (an honest thread clears it within a
// work unit of seeing its grant change). A grant the thread never took up
// (revoked before its work started) is not held.
export const XENEMU_VCPU_SLOT_SIZE = 128;
export const xenemu_vcpu_slot = {
  runstate: 0, grant: 48, pcpu: 52, deadline: 56, online: 64, released: 68, slices: 72, preempts: 76,
  stolen: 80, held: 88, SIZE: XENEMU_VCPU_SLOT_SIZE,
} as const;

/** Int32 index of a slot word, for Atomics on an Int32Array over the whole area. */
export function vcpuWord(vcpu: number, field: keyof typeof xenemu_vcpu_slot): number {
  return (vcpu * XENEMU_VCPU_SLOT_SIZE + xenemu_vcpu_slot[field]) >> 2;
}

/** Byte offset of a vCPU's runstate_info in the area. */
export function runstateOffset(vcpu: number): number {
  return vcpu * XENEMU_VCPU_SLOT_SIZE + xenemu_vcpu_slot.runstate;
}

/**
 * Reads a vcpu_runstate_info that the hypervisor may be updating, Xen's way
 * (xen/include/public/vcpu.h, XEN_RUNSTATE_UPDATE): retry while the update
 * flag is set or state_entry_time moved under the copy.
 */
export function readRunstateConsistent(dv: DataView, off: number): VcpuRunstateInfo {
  for (let i = 0; ; i++) {
    const before = dv.getBigUint64(off + vcpu_runstate_info.state_entry_time, true);
    const r = decodeRunstate(dv, off);
    const after = dv.getBigUint64(off + vcpu_runstate_info.state_entry_time, true);
    if ((before & XEN_RUNSTATE_UPDATE) === 0n && before === after) return r;
    if (i > 1000) { r.state_entry_time &= ~XEN_RUNSTATE_UPDATE; return r; }
  }
}

/**
 * xenemu sub-op of __HYPERVISOR_vcpu_op (numbers above Xen's range are free):
 * the domain's vCPUs wait for slice grants in the vCPU area from now on.
 * Before it, a domain's process simply runs (Dom0 services, guests without a
 * VcpuPool) and is never preempted.
 */
export const XENEMU_VCPUOP_register_slice_area = 0x1000;

/** VCPUOP_get_runstate_info reply data (runstate as plain numbers, ns). */
export interface vcpu_runstate_reply { state: number; state_entry_time: number; time: [number, number, number, number] }
