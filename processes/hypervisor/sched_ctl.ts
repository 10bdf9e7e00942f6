// The toolstack's scheduler controls (xen/common/sched/core.c sched_adjust,
// sched_adjust_global, vcpu_set_hard_affinity; xen/common/domctl.c):
//
//   XEN_DOMCTL_scheduler_op {domain, sched_id, cmd, u.credit {weight, cap}}
//       getinfo -> u.credit; putinfo sets weight (0 = unchanged) and cap
//   XEN_SYSCTL_scheduler_op {cpupool_id, sched_id, cmd, u.sched_credit {tslice_ms, ratelimit_us}}
//   XEN_SYSCTL_sched_id -> {sched_id}
//   XEN_SYSCTL_cpupool_op {op, cpupool_id} -> Pool-0 (INFO), no free CPUs (FREEINFO)
//   XEN_DOMCTL_setvcpuaffinity / getvcpuaffinity {domain, vcpu, flags, cpumap_hard, cpumap_soft}
//
// As in Xen, a sched_id that is not the running scheduler's is -EINVAL, and
// only cpupool 0 exists. Soft affinity is accepted and echoed as all CPUs
// (the credit scheduler here does not use it). Privilege: the dispatcher.
import {
  XEN_DOMCTL_SCHEDOP_getinfo, XEN_DOMCTL_SCHEDOP_putinfo, XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT,
  bitmapToCpumask, cpumaskToBitmap, type xen_domctl_scheduler_op, type xen_domctl_vcpuaffinity,
} from '../../shared/abi/domctl.js';
import {
  XEN_SYSCTL_CPUPOOL_OP_ADDCPU, XEN_SYSCTL_CPUPOOL_OP_CREATE, XEN_SYSCTL_CPUPOOL_OP_DESTROY, XEN_SYSCTL_CPUPOOL_OP_FREEINFO,
  XEN_SYSCTL_CPUPOOL_OP_INFO, XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN, XEN_SYSCTL_CPUPOOL_OP_RMCPU,
  XEN_SYSCTL_SCHEDOP_getinfo, XEN_SYSCTL_SCHEDOP_putinfo, type xen_sysctl_cpupool_op, type xen_sysctl_scheduler_op,
} from '../../shared/abi/sysctl.js';
import { XEN_EINVAL, XEN_ENOENT, XEN_EOPNOTSUPP } from '../../shared/abi/errno.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

type Partial2<T> = { [K in keyof T]?: T[K] extends object ? Partial2<T[K]> : T[K] };

const u16 = (x: unknown): number | undefined => {
  if (x === undefined) return undefined;
  const n = Number(x);
  return Number.isInteger(n) && n >= 0 && n <= 0xffff ? n : -1;
};

export function domctlSchedulerOp(hv: Hypervisor, _caller: Domain, d: Domain, arg: Partial2<xen_domctl_scheduler_op>): HcResult {
  const s = hv.scheduler;
  if (Number(arg.sched_id) !== s.schedId || s.schedId === 0) return -XEN_EINVAL;
  switch (Number(arg.cmd)) {
    case XEN_DOMCTL_SCHEDOP_getinfo: {
      const p = s.getDomainParams(d);
      if (!p) return -XEN_EINVAL;
      return { ret: 0, data: { sched_id: s.schedId, cmd: XEN_DOMCTL_SCHEDOP_getinfo, u: { credit: { weight: p.weight, cap: p.cap } } } };
    }
    case XEN_DOMCTL_SCHEDOP_putinfo: {
      const weight = u16(arg.u?.credit?.weight);
      const cap = u16(arg.u?.credit?.cap);
      if (weight === -1 || cap === -1) return -XEN_EINVAL;
      const rc = s.putDomainParams(d, { weight, cap });
      if (rc === 0) {
        const p = s.getDomainParams(d)!;
        hv.console.log(`d${d.domid}: credit weight ${p.weight} cap ${p.cap}`);
      }
      return rc;
    }
    default:
      return -XEN_EINVAL;
  }
}

export function sysctlSchedulerOp(hv: Hypervisor, _caller: Domain, _t: Domain | null, arg: Partial2<xen_sysctl_scheduler_op>): HcResult {
  const s = hv.scheduler;
  if (Number(arg.cpupool_id ?? 0) !== 0) return -XEN_ENOENT;
  if (Number(arg.sched_id) !== s.schedId || s.schedId === 0) return -XEN_EINVAL;
  switch (Number(arg.cmd)) {
    case XEN_SYSCTL_SCHEDOP_getinfo: {
      const g = s.getGlobals();
      if (!g) return -XEN_EINVAL;
      return { ret: 0, data: { cpupool_id: 0, sched_id: s.schedId, cmd: XEN_SYSCTL_SCHEDOP_getinfo,
                               u: { sched_credit: { tslice_ms: g.tslice_ms, ratelimit_us: g.ratelimit_us, vcpu_migr_delay_us: 0 } } } };
    }
    case XEN_SYSCTL_SCHEDOP_putinfo: {
      const c = arg.u?.sched_credit ?? {};
      const tslice = c.tslice_ms === undefined ? undefined : Number(c.tslice_ms);
      const rl = c.ratelimit_us === undefined ? undefined : Number(c.ratelimit_us);
      const rc = s.putGlobals({ tslice_ms: tslice, ratelimit_us: rl });
      if (rc === 0) {
        const g = s.getGlobals()!;
        hv.console.log(`credit: tslice ${g.tslice_ms} ms, ratelimit ${g.ratelimit_us} us`);
      }
      return rc;
    }
    default:
      return -XEN_EINVAL;
  }
}

export function sysctlSchedId(hv: Hypervisor): HcResult {
  return { ret: 0, data: { sched_id: hv.scheduler.schedId } };
}

function vcpuOf(d: Domain, arg: { vcpu?: unknown }): number {
  const v = Number(arg.vcpu ?? 0);
  if (!Number.isInteger(v) || v < 0) return -XEN_EINVAL;
  return v < d.maxVcpus ? v : -XEN_ENOENT;
}

/** XEN_DOMCTL_setvcpuaffinity: sets the hard affinity (flags & HARD); echoes the effective maps. */
export function domctlSetvcpuaffinity(hv: Hypervisor, _caller: Domain, d: Domain, arg: Partial2<xen_domctl_vcpuaffinity>): HcResult {
  const v = vcpuOf(d, arg);
  if (v < 0) return v;
  const flags = Number(arg.flags ?? 0);
  if (!(flags & (XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT))) return -XEN_EINVAL;
  if (flags & XEN_VCPUAFFINITY_HARD) {
    const mask = bitmapToCpumask(arg.cpumap_hard as never);
    const rc = hv.scheduler.setAffinity(d, v, mask);
    if (rc < 0) return rc;
    hv.console.log(`d${d.domid}: vCPU ${v} hard affinity ${cpuList(hv.scheduler.getAffinity(d, v), hv.pcpus)}`);
  }
  return affinityReply(hv, d, v, flags);
}

export function domctlGetvcpuaffinity(hv: Hypervisor, _caller: Domain, d: Domain, arg: Partial2<xen_domctl_vcpuaffinity>): HcResult {
  const v = vcpuOf(d, arg);
  if (v < 0) return v;
  return affinityReply(hv, d, v, Number(arg.flags ?? XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT));
}

function affinityReply(hv: Hypervisor, d: Domain, v: number, flags: number): HcResult {
  const host = (1n << BigInt(hv.pcpus)) - 1n;
  return { ret: 0, data: {
    vcpu: v, flags,
    cpumap_hard: cpumaskToBitmap(hv.scheduler.getAffinity(d, v) & host, hv.pcpus),
    cpumap_soft: cpumaskToBitmap(host, hv.pcpus),
  } };
}

/** "0-1,3" (for the log). */
export function cpuList(mask: bigint, n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    if (!((mask >> BigInt(i)) & 1n)) continue;
    let j = i;
    while (j + 1 < n && (mask >> BigInt(j + 1)) & 1n) j++;
    parts.push(i === j ? `${i}` : `${i}-${j}`);
    i = j;
  }
  return parts.join(',') || 'none';
}

/**
 * XEN_SYSCTL_cpupool_op (xen/common/sched/cpupool.c): one pool, Pool-0,
 * with every pCPU and every domain. INFO answers the first pool whose id is
 * at least the one asked (-ENOENT past it), FREEINFO an empty map (no CPU is
 * outside a pool). Making and changing pools is not supported (-EOPNOTSUPP).
 */
export function sysctlCpupoolOp(hv: Hypervisor, _caller: Domain, _t: Domain | null, arg: Partial2<xen_sysctl_cpupool_op>): HcResult {
  const all = (1n << BigInt(hv.pcpus)) - 1n;
  switch (Number(arg.op)) {
    case XEN_SYSCTL_CPUPOOL_OP_INFO: {
      if (Number(arg.cpupool_id ?? 0) !== 0) return -XEN_ENOENT;
      return { ret: 0, data: { op: XEN_SYSCTL_CPUPOOL_OP_INFO, cpupool_id: 0, sched_id: hv.scheduler.schedId,
                               n_dom: hv.domains.size, cpumap: cpumaskToBitmap(all, hv.pcpus) } };
    }
    case XEN_SYSCTL_CPUPOOL_OP_FREEINFO:
      return { ret: 0, data: { op: XEN_SYSCTL_CPUPOOL_OP_FREEINFO, cpupool_id: Number(arg.cpupool_id ?? 0),
                               cpumap: cpumaskToBitmap(0n, hv.pcpus) } };
    case XEN_SYSCTL_CPUPOOL_OP_CREATE: case XEN_SYSCTL_CPUPOOL_OP_DESTROY: case XEN_SYSCTL_CPUPOOL_OP_ADDCPU:
    case XEN_SYSCTL_CPUPOOL_OP_RMCPU: case XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN:
      return -XEN_EOPNOTSUPP;
    default:
      return -XEN_EINVAL;
  }
}
