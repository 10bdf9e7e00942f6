// What the credit scheduler tests share: the toolstack's scheduler controls
// as Dom0 calls them, and running-time windows of fixture domains.
import { readFileSync } from 'node:fs';
import { __HYPERVISOR_sysctl } from '../../shared/abi/xen.js';
import {
  XEN_DOMCTL_SCHEDOP_getinfo, XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_getvcpuaffinity, XEN_DOMCTL_scheduler_op,
  XEN_DOMCTL_setvcpuaffinity, XEN_SCHEDULER_CREDIT, XEN_VCPUAFFINITY_HARD, bitmapToCpumask, cpumaskToBitmap,
} from '../../shared/abi/domctl.js';
import { XEN_SYSCTL_SCHEDOP_getinfo, XEN_SYSCTL_SCHEDOP_putinfo, XEN_SYSCTL_scheduler_op } from '../../shared/abi/sysctl.js';
import type { SchedHost } from './vcpu_host.js';
import type { Probe } from '../helpers/probe.js';

export async function schedCredit(s: SchedHost, domid: number, put?: { weight?: number; cap?: number }): Promise<{ ret: number; weight?: number; cap?: number }> {
  if (put) {
    const r = await s.domctl(XEN_DOMCTL_scheduler_op, { domain: domid, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_DOMCTL_SCHEDOP_putinfo, u: { credit: put } });
    return { ret: r.ret };
  }
  const r = await s.domctl(XEN_DOMCTL_scheduler_op, { domain: domid, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_DOMCTL_SCHEDOP_getinfo });
  return { ret: r.ret, ...(r.data?.u?.credit ?? {}) };
}

export async function schedGlobals(s: SchedHost, put?: { tslice_ms?: number; ratelimit_us?: number }): Promise<{ ret: number; tslice_ms?: number; ratelimit_us?: number }> {
  const arg = { cpupool_id: 0, sched_id: XEN_SCHEDULER_CREDIT, cmd: put ? XEN_SYSCTL_SCHEDOP_putinfo : XEN_SYSCTL_SCHEDOP_getinfo,
                u: { sched_credit: put ?? {} } };
  const r = await s.d0.call('hypercall', { hop: __HYPERVISOR_sysctl, cmd: XEN_SYSCTL_scheduler_op, arg });
  return { ret: r.ret, ...(r.data?.u?.sched_credit ?? {}) };
}

export async function pin(s: SchedHost, domid: number, vcpu: number, cpus: number[], pcpus: number): Promise<number> {
  const mask = cpus.reduce((m, c) => m | (1n << BigInt(c)), 0n);
  const r = await s.domctl(XEN_DOMCTL_setvcpuaffinity, { domain: domid, vcpu, flags: XEN_VCPUAFFINITY_HARD,
                                                          cpumap_hard: cpumaskToBitmap(mask, pcpus) });
  return r.ret;
}

export async function affinity(s: SchedHost, domid: number, vcpu: number): Promise<number[]> {
  const r = await s.domctl(XEN_DOMCTL_getvcpuaffinity, { domain: domid, vcpu, flags: XEN_VCPUAFFINITY_HARD });
  const m = bitmapToCpumask(r.data.cpumap_hard);
  return [...Array(64).keys()].filter((i) => (m >> BigInt(i)) & 1n);
}

/** Running ns of vCPU 0 of each probe over a window of `ms` (a measurement window, not an event wait). */
export async function runningOver(ps: Probe[], ms: number): Promise<number[]> {
  const r0 = await Promise.all(ps.map((p) => p.call('stats')));
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, ms));
  const r1 = await Promise.all(ps.map((p) => p.call('stats')));
  const wall = Number(process.hrtime.bigint() - t0);
  void wall;
  return ps.map((_, i) => r1[i].vcpus.reduce((s: number, v: { running_ns: number }) => s + v.running_ns, 0)
                         - r0[i].vcpus.reduce((s: number, v: { running_ns: number }) => s + v.running_ns, 0));
}

export function hvLog(rundir: string, re: RegExp): string {
  try {
    return readFileSync(`${rundir}/logs/hypervisor.log`, 'utf8').split('\n').filter((l) => re.test(l)).slice(-20).join('\n');
  } catch { return ''; }
}
