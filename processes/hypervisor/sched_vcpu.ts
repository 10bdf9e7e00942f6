// VCPUOP (xen/common/domain.c do_vcpu_op) and XEN_DOMCTL_getvcpuinfo: a
// guest's view of its own vCPUs and the toolstack's view of anyone's.
// The numbers come from the scheduler (sched_core.ts), which keeps the
// runstate in the vCPU area as well.
import { XEN_EINVAL, XEN_ENOENT } from '../../shared/abi/errno.js';
import { RUNSTATE_offline } from '../../shared/abi/vcpu.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

function vcpuArg(d: Domain, arg: { vcpu?: number; vcpuid?: number }): number {
  const v = Number(arg?.vcpuid ?? arg?.vcpu ?? 0);
  if (!Number.isInteger(v) || v < 0) return -XEN_EINVAL;
  return v < d.maxVcpus ? v : -XEN_ENOENT;
}

/** VCPUOP_up {vcpuid}: hot-plug one of the caller's vCPUs. */
export function vcpuopUp(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { vcpuid?: number }): HcResult {
  const v = vcpuArg(caller, arg);
  return v < 0 ? v : hv.scheduler.vcpuUp(caller, v);
}

/** VCPUOP_down {vcpuid}: unplug; the vCPU loses its pCPU and its runstate becomes offline. */
export function vcpuopDown(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { vcpuid?: number }): HcResult {
  const v = vcpuArg(caller, arg);
  return v < 0 ? v : hv.scheduler.vcpuDown(caller, v);
}

/** VCPUOP_is_up {vcpuid}: 1 or 0. */
export function vcpuopIsUp(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { vcpuid?: number }): HcResult {
  const v = vcpuArg(caller, arg);
  return v < 0 ? v : hv.scheduler.vcpuIsUp(caller, v) ? 1 : 0;
}

/** VCPUOP_get_runstate_info {vcpuid}: vcpu_runstate_info with times in ns (numbers). */
export function vcpuopGetRunstateInfo(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { vcpuid?: number }): HcResult {
  const v = vcpuArg(caller, arg);
  if (v < 0) return v;
  const r = hv.scheduler.runstate(caller, v);
  return { ret: 0, data: { state: r.state, state_entry_time: Number(r.state_entry_time), time: r.time.map(Number) } };
}

/** XENEMU_VCPUOP_register_slice_area: from now on the caller's vCPUs run only in slices. */
export function vcpuopRegisterSliceArea(hv: Hypervisor, caller: Domain): HcResult {
  return hv.scheduler.registerSliceArea(caller);
}

/**
 * XEN_DOMCTL_getvcpuinfo {domain, vcpu}: online, blocked, running, cpu_time
 * (ns), cpu; xenemu adds `runstate` (state and time[4] in ns) for vcpu-list.
 */
export function domctlGetvcpuinfo(hv: Hypervisor, _caller: Domain, d: Domain, arg: { vcpu?: number }): HcResult {
  const v = vcpuArg(d, arg);
  if (v < 0) return -XEN_ENOENT;
  const info = hv.scheduler.vcpuInfo(d, v);
  const r = hv.scheduler.runstate(d, v);
  return { ret: 0, data: { ...info, runstate: { state: r.state, time: r.time.map(Number) }, max_vcpus: d.maxVcpus,
                           offline: r.state === RUNSTATE_offline ? 1 : 0 } };
}
