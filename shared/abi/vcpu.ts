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
