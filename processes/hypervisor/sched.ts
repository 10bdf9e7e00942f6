// sched_op (xen/common/sched/core.c) and the scheduler seam.
//
// The hypervisor tells its Scheduler of every domain and vCPU state change;
// the scheduler decides who holds a slice of a pCPU. sched_core.ts is the
// mechanism (grant words and runstate in the vCPU area, slice timers,
// SIGSTOP of a domain that ignores preemption); the choice of who runs next
// is a SchedPolicy (sched_credit.ts, Xen's credit scheduler, by default;
// sched_rr.ts). The toolstack's controls are in sched_ctl.ts.
// docs/scheduler.md has the protocol.
import { SHUTDOWN_MAX, SHUTDOWN_NAMES, SHUTDOWN_suspend } from '../../shared/abi/sched.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';
import type { VcpuRunstateInfo } from '../../shared/abi/vcpu.js';
import type { xen_domctl_getvcpuinfo } from '../../shared/abi/domctl.js';
import type { SchedRequest } from '../../shared/wire/hypercall.js';
import type { SchedDomainParams, SchedGlobalParams } from './sched_core.js';
import type { Domain } from './domain.js';
import { requestHvmSuspend } from './hvm.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

export interface Scheduler {
  readonly name: string;
  domainCreated(d: Domain): void;
  domainDestroyed(d: Domain): void;
  /** The domain may run: first start or unpausedomain (its process was continued if mayContinue). */
  domainUnpaused(d: Domain): void;
  /** pausedomain: its process is stopped; its vCPUs lose their pCPUs. */
  domainPaused(d: Domain): void;
  /** False while the scheduler holds the domain's process stopped for ignoring a revocation. */
  mayContinue(d: Domain): boolean;
  /** An event is pending for the vCPU (upcall). */
  wake(d: Domain, vcpu: number): void;
  /** SCHEDOP_block: the vCPU waits for an event (gen: the slice it gives back, 0 = whatever it holds). */
  block(d: Domain, vcpu: number, gen?: number): void;
  /** SCHEDOP_yield: the vCPU gives its slice back and stays runnable. */
  yield(d: Domain, vcpu: number, gen?: number): void;
  /** A `sched` message from the domain (shared/wire/hypercall.ts). */
  sched(d: Domain, m: SchedRequest): void;
  /** XENEMU_VCPUOP_register_slice_area: the domain's vCPUs run only inside slices from now on. */
  registerSliceArea(d: Domain): number;
  /** VCPUOP_up / VCPUOP_down: 0 or -XEN_E*. */
  vcpuUp(d: Domain, vcpu: number): number;
  vcpuDown(d: Domain, vcpu: number): number;
  vcpuIsUp(d: Domain, vcpu: number): boolean;
  runstate(d: Domain, vcpu: number): VcpuRunstateInfo;
  vcpuInfo(d: Domain, vcpu: number): xen_domctl_getvcpuinfo;
  onlineVcpus(d: Domain): number;
  /** Sum of the running time of the domain's vCPUs, ns. */
  cpuTimeNs(d: Domain): number;
  /** XEN_SCHEDULER_* of the policy (0: not one of Xen's). */
  readonly schedId: number;
  /** XEN_DOMCTL_scheduler_op getinfo / putinfo; null / -EINVAL when the policy has no parameters. */
  getDomainParams(d: Domain): SchedDomainParams | null;
  putDomainParams(d: Domain, p: Partial<SchedDomainParams>): number;
  /** XEN_SYSCTL_scheduler_op getinfo / putinfo. */
  getGlobals(): SchedGlobalParams | null;
  putGlobals(p: Partial<SchedGlobalParams>): number;
  /** XEN_DOMCTL_{get,set}vcpuaffinity, hard affinity as a CPU mask. */
  getAffinity(d: Domain, vcpu: number): bigint;
  setAffinity(d: Domain, vcpu: number, mask: bigint): number;
  /** Drops every timer (host going down). */
  close(): void;
}

/** The caller's vCPU of a sched_op: arg.vcpu (xenemu's calls carry it), vCPU 0 otherwise. */
function callerVcpu(d: Domain, arg: { vcpu?: number }): number {
  const v = Number(arg?.vcpu ?? 0);
  return Number.isInteger(v) && v >= 0 && v < d.maxVcpus ? v : -1;
}

export function schedYield(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { vcpu?: number; gen?: number }): HcResult {
  const v = callerVcpu(caller, arg);
  if (v < 0) return -XEN_EINVAL;
  hv.scheduler.yield(caller, v, Number(arg?.gen ?? 0) | 0);
  return 0;
}

export function schedBlock(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { vcpu?: number; gen?: number }): HcResult {
  const v = callerVcpu(caller, arg);
  if (v < 0) return -XEN_EINVAL;
  hv.scheduler.block(caller, v, Number(arg?.gen ?? 0) | 0);
  return 0;
}

export function schedShutdown(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { reason?: number }): HcResult {
  const reason = Number(arg.reason);
  if (!Number.isInteger(reason) || reason < 0 || reason > SHUTDOWN_MAX) return -XEN_EINVAL;
  hv.shutdownDomain(caller, reason);
  // A guest's suspend returns only when the toolstack resumes it in place
  // (XEN_DOMCTL_resumedomain: 1, "cancelled"); a saved domain is destroyed first.
  if (reason === SHUTDOWN_suspend && caller.domid !== 0) return { ret: 0, defer: true };
  return 0;
}

export function schedRemoteShutdown(hv: Hypervisor, _caller: Domain, d: Domain, arg: { reason?: number }): HcResult {
  const reason = Number(arg.reason);
  if (!Number.isInteger(reason) || reason < 0 || reason > SHUTDOWN_MAX) return -XEN_EINVAL;
  // An HVM guest's vCPU saves its context first, then its process shuts the domain down (hvm.ts).
  if (reason === SHUTDOWN_suspend && d.hvm && requestHvmSuspend(d)) return 0;
  hv.shutdownDomain(d, reason);
  return 0;
}

export function shutdownName(reason: number): string {
  return SHUTDOWN_NAMES[reason] ?? `reason ${reason}`;
}
