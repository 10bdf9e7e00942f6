// domctl (xen/common/domctl.c): Dom0's control of domains. Privilege is
// checked by the dispatcher (hypercall.ts); these handlers trust their caller.
import {
  XEN_DOMCTL_CDF_hvm, XEN_DOMINF_blocked, XEN_DOMINF_dying, XEN_DOMINF_hvm_guest, XEN_DOMINF_paused,
  XEN_DOMINF_running, XEN_DOMINF_shutdown, XEN_DOMINF_shutdownshift,
  type xen_domctl_createdomain, type xen_domctl_getdomaininfo,
} from '../../shared/abi/domctl.js';
import { DOMID_FIRST_RESERVED, XEN_LEGACY_MAX_VCPUS, PAGE_SIZE } from '../../shared/abi/xen.js';
import { XEN_EEXIST, XEN_EINVAL, XEN_ENOMEM, XEN_ESRCH } from '../../shared/abi/errno.js';
import { DEFAULT_MAX_EVTCHN_PORT, DEFAULT_MAX_GRANT_FRAMES, type Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

export function domainInfo(d: Domain): xen_domctl_getdomaininfo {
  let flags = 0;
  if (d.dying) flags |= XEN_DOMINF_dying;
  if (d.hvm) flags |= XEN_DOMINF_hvm_guest;
  if (d.shutdown) flags |= XEN_DOMINF_shutdown | (d.shutdownReason << XEN_DOMINF_shutdownshift);
  if (d.paused) flags |= XEN_DOMINF_paused;
  if (d.running && d.blocked) flags |= XEN_DOMINF_blocked;
  if (d.running && !d.blocked) flags |= XEN_DOMINF_running;
  return {
    domain: d.domid, flags, tot_pages: d.totPages, max_pages: d.maxPages, outstanding_pages: 0,
    shr_pages: 0, paged_pages: 0, shared_info_frame: 0, cpu_time: d.sched ? d.sched.cpuTimeNs(d) : d.cpuTimeNs(),
    nr_online_vcpus: d.started ? (d.sched ? d.sched.onlineVcpus(d) : d.maxVcpus) : 0, max_vcpu_id: d.maxVcpus - 1, ssidref: 0,
    handle: d.handle, cpupool: 0, pid: d.proc?.pid ?? 0,
  };
}

export function domctlCreatedomain(hv: Hypervisor, _caller: Domain, _t: Domain | null,
                                   arg: { domain?: number } & Partial<xen_domctl_createdomain>): HcResult {
  const vcpus = Number(arg.max_vcpus ?? 1);
  const memKb = Number(arg.memory_kb);
  const maxKb = Number(arg.max_memkb ?? memKb);
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > XEN_LEGACY_MAX_VCPUS) return -XEN_EINVAL;
  if (!Number.isFinite(memKb) || memKb <= 0 || !Number.isFinite(maxKb) || maxKb < memKb) return -XEN_EINVAL;
  const totPages = Math.ceil((memKb * 1024) / PAGE_SIZE);
  const maxPages = Math.ceil((maxKb * 1024) / PAGE_SIZE);
  let domid = Number(arg.domain ?? 0);
  if (Number.isInteger(domid) && domid > 0 && domid < DOMID_FIRST_RESERVED) {
    if (hv.domains.has(domid)) return -XEN_EEXIST;
  } else {
    domid = hv.allocDomid();
    if (domid < 0) return domid;
  }
  const program = arg.xenemu?.program;
  if (program !== undefined && typeof program !== 'string') return -XEN_EINVAL;
  const args = Array.isArray(arg.xenemu?.args) ? arg.xenemu!.args!.map(String) : [];
  const grantFrames = Math.min(Number(arg.max_grant_frames ?? DEFAULT_MAX_GRANT_FRAMES) || DEFAULT_MAX_GRANT_FRAMES, 64);
  const evtchnPorts = Math.min(Number(arg.max_evtchn_port ?? DEFAULT_MAX_EVTCHN_PORT) || DEFAULT_MAX_EVTCHN_PORT, 4095);
  const d = hv.createDomain({
    domid, maxVcpus: vcpus, totPages, maxPages, hvm: (Number(arg.flags ?? 0) & XEN_DOMCTL_CDF_hvm) !== 0,
    handle: Array.isArray(arg.handle) ? arg.handle.map(Number).slice(0, 16) : new Array(16).fill(0),
    program: program ?? hv.defaultDomUProgram, args, maxGrantFrames: grantFrames, maxEvtchnPort: evtchnPorts,
  });
  if (!d) return -XEN_ENOMEM;
  return { ret: 0, data: { domain: d.domid } };
}

export function domctlDestroydomain(hv: Hypervisor, _caller: Domain, d: Domain): HcResult {
  if (d.domid === 0) return -XEN_EINVAL;
  hv.destroyDomain(d, 'destroydomain');
  return 0;
}

export function domctlResumedomain(hv: Hypervisor, _caller: Domain, d: Domain): HcResult {
  if (d.domid === 0) return -XEN_EINVAL;
  return hv.resumeDomain(d);
}

export function domctlPausedomain(hv: Hypervisor, _caller: Domain, d: Domain): HcResult {
  if (d.domid === 0 || d.dying) return -XEN_EINVAL;
  hv.pauseDomain(d);
  return 0;
}

export function domctlUnpausedomain(hv: Hypervisor, _caller: Domain, d: Domain): HcResult {
  if (d.dying) return -XEN_EINVAL;
  return hv.unpauseDomain(d);
}

/**
 * XEN_DOMCTL_getdomaininfo {domain}: the first domain whose id is at least
 * `domain` (xenconsoled and libxc walk the domains this way; a caller that
 * wants one domain compares the answer's id), -ESRCH past the last, -EINVAL
 * for a reserved id.
 */
export function domctlGetdomaininfo(hv: Hypervisor, _caller: Domain, _t: Domain | null, arg: { domain?: number }): HcResult {
  const want = Number(arg.domain ?? 0);
  if (!Number.isInteger(want) || want < 0 || want >= DOMID_FIRST_RESERVED) return -XEN_EINVAL;
  let found: Domain | null = null;
  for (const d of hv.domains.values()) if (d.domid >= want && (!found || d.domid < found.domid)) found = d;
  return found ? { ret: 0, data: domainInfo(found) } : -XEN_ESRCH;
}

/** XEN_DOMCTL_max_mem: a new ceiling; ballooning above the segment size is impossible. */
export function domctlMaxMem(hv: Hypervisor, _caller: Domain, d: Domain, arg: { max_memkb?: number }): HcResult {
  const kb = Number(arg.max_memkb);
  if (!Number.isFinite(kb) || kb <= 0) return -XEN_EINVAL;
  const pages = Math.ceil((kb * 1024) / PAGE_SIZE);
  if (pages > d.frames.maxPfns) {
    hv.console.log(`domctl: d${d.domid} max_mem ${kb} KiB exceeds its memory segment (${d.frames.maxPfns} pages)`);
    return -XEN_EINVAL;
  }
  d.maxPages = pages;
  return 0;
}

export function domctlMaxVcpus(_hv: Hypervisor, _caller: Domain, d: Domain, arg: { max?: number }): HcResult {
  const n = Number(arg.max);
  if (!Number.isInteger(n) || n < 1 || n > XEN_LEGACY_MAX_VCPUS || d.started) return -XEN_EINVAL;
  d.maxVcpus = n;
  return 0;
}

export function domctlSetvcpucontext(_hv: Hypervisor, _caller: Domain, d: Domain,
                                     arg: { vcpu?: number; user_regs?: { rsi?: number } }): HcResult {
  const vcpu = Number(arg.vcpu ?? 0);
  if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= d.maxVcpus) return -XEN_EINVAL;
  const rsi = Number(arg.user_regs?.rsi ?? 0);
  if (!Number.isInteger(rsi) || rsi < 0 || rsi >= d.frames.maxPfns * PAGE_SIZE) return -XEN_EINVAL;
  if (vcpu === 0) d.startInfo = rsi;
  return 0;
}

/**
 * xenemu's map of a domain's segments. Domain-0 gets all of them (it builds
 * domains and runs their back ends); a device model only the RAM and HVM
 * segments of its target, a foreign mapping of guest memory as Xen's
 * xsm_map_gmfn_foreign allows it (XSM_TARGET, checked by the dispatcher).
 */
export function domctlGetsegments(hv: Hypervisor, caller: Domain, d: Domain): HcResult {
  if (!hv.isPrivileged(caller)) {
    return { ret: 0, data: {
      domid: d.domid, mem: d.segments.mem, mem_bytes: d.frames.maxPfns * PAGE_SIZE, ...(d.hvm ? { hvm: d.segments.hvm } : {}),
    } };
  }
  return { ret: 0, data: {
    domid: d.domid, mem: d.segments.mem, mem_bytes: d.frames.maxPfns * PAGE_SIZE,
    shared_info: d.segments.shared_info, gnttab: d.segments.gnttab, gnttab_frames: d.maxGrantFrames,
    vcpu: d.segments.vcpu, ...(d.hvm ? { hvm: d.segments.hvm } : {}),
  } };
}



/**
 * XEN_DOMCTL_set_target: `d` becomes the device model of `target`, with
 * XSM_TARGET and XSM_DM_PRIV rights over it and no other domain. Xen refuses
 * a target that is itself, Dom0, or one with a target of its own.
 */
export function domctlSetTarget(hv: Hypervisor, _caller: Domain, d: Domain, arg: { target?: number }): HcResult {
  const t = hv.domains.get(Number(arg.target));
  if (!t) return -XEN_ESRCH;
  if (t === d || d.domid === 0 || t.domid === 0 || t.target !== null) return -XEN_EINVAL;
  d.target = t.domid;
  hv.console.log(`d${d.domid}: device model of d${t.domid}`);
  return 0;
}
