// sched_op (xen/common/sched/core.c) and the scheduler seam.
//
// Today every runnable domain runs whenever its process is scheduled by the
// host kernel. The credit scheduler (DESIGN.md §4: 30 ms slices, weights,
// caps, runstate accounting in shared memory, SIGSTOP of a domain that
// ignores preemption) plugs in behind `Scheduler`: the hypervisor tells it of
// every domain and vCPU state change and it decides who holds a slice.
import { SHUTDOWN_MAX, SHUTDOWN_NAMES } from '../../shared/abi/sched.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

export interface Scheduler {
  readonly name: string;
  domainCreated(d: Domain): void;
  domainDestroyed(d: Domain): void;
  /** The domain may run (unpaused, started). */
  wake(d: Domain, vcpu: number): void;
  /** SCHEDOP_block: the vCPU waits for an event. */
  block(d: Domain, vcpu: number): void;
  yield(d: Domain, vcpu: number): void;
}

/** Grants everything: every runnable vCPU runs. Replace with sched_credit.ts. */
export class NullScheduler implements Scheduler {
  readonly name = 'null';
  domainCreated(): void {}
  domainDestroyed(): void {}
  wake(d: Domain): void { d.blocked = false; }
  block(d: Domain): void { d.blocked = true; }
  yield(): void {}
}

export function schedYield(hv: Hypervisor, caller: Domain): HcResult {
  hv.scheduler.yield(caller, 0);
  return 0;
}

export function schedBlock(hv: Hypervisor, caller: Domain): HcResult {
  hv.scheduler.block(caller, 0);
  return 0;
}

export function schedShutdown(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { reason?: number }): HcResult {
  const reason = Number(arg.reason);
  if (!Number.isInteger(reason) || reason < 0 || reason > SHUTDOWN_MAX) return -XEN_EINVAL;
  hv.shutdownDomain(caller, reason);
  return 0;
}

export function schedRemoteShutdown(hv: Hypervisor, _caller: Domain, d: Domain, arg: { reason?: number }): HcResult {
  const reason = Number(arg.reason);
  if (!Number.isInteger(reason) || reason < 0 || reason > SHUTDOWN_MAX) return -XEN_EINVAL;
  hv.shutdownDomain(d, reason);
  return 0;
}

export function shutdownName(reason: number): string {
  return SHUTDOWN_NAMES[reason] ?? `reason ${reason}`;
}
