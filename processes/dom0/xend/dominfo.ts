// From the hypervisor's view of a domain (xen_domctl_getdomaininfo, as
// XEN_SYSCTL_getdomaininfolist returns it) to the toolstack's DomainInfo,
// the way libxl_domain_info() and xl's list_domains() read it:
//
//   flags  XEN_DOMINF_running/blocked/paused/shutdown/dying -> r b p s d
//          bits 16..23 (shutdown reason) -> the 5th letter (- r s c w S)
//   tot_pages -> Mem (MiB), max_pages -> maxmem, handle -> uuid
//
// Names are not the hypervisor's business: they come from xenstore
// (/local/domain/<id>/name), and domid 0 is always "Domain-0".
import {
  XEN_DOMINF_blocked, XEN_DOMINF_dying, XEN_DOMINF_hvm_guest, XEN_DOMINF_paused, XEN_DOMINF_running,
  XEN_DOMINF_shutdown, dominfShutdownReason, type xen_domctl_getdomaininfo,
} from '../../../shared/abi/domctl.js';
import { SHUTDOWN_NAMES } from '../../../shared/abi/sched.js';
import type { DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import type { ShutdownReason } from '../../../shared/toolstack/xend_api.js';
import type { DomainInfo } from './toolstack.js';

const PAGES_PER_MIB = 256;

/** What the toolstack knows of a domain beyond the hypervisor's record. */
export interface DomainMeta {
  name: string;
  /** Seconds since the epoch. */
  startTime: number;
  config?: DomainConfig;
}

export function uuidFromHandle(handle: readonly number[] | undefined): string {
  const hex = Array.from({ length: 16 }, (_, i) => ((handle?.[i] ?? 0) & 0xff).toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function shutdownReasonName(flags: number): ShutdownReason | undefined {
  if (!(flags & XEN_DOMINF_shutdown)) return undefined;
  return SHUTDOWN_NAMES[dominfShutdownReason(flags)] as ShutdownReason | undefined;
}

export function toDomainInfo(raw: xen_domctl_getdomaininfo, meta: DomainMeta): DomainInfo {
  const f = raw.flags;
  const reason = shutdownReasonName(f);
  const info: DomainInfo = {
    domid: raw.domain,
    name: meta.name,
    uuid: uuidFromHandle(raw.handle),
    type: f & XEN_DOMINF_hvm_guest ? 'hvm' : meta.config?.type ?? 'pv',
    memory_mib: raw.tot_pages / PAGES_PER_MIB,
    maxmem_mib: raw.max_pages / PAGES_PER_MIB,
    vcpus_online: raw.nr_online_vcpus,
    maxvcpus: raw.max_vcpu_id + 1,
    cpu_time_ns: raw.cpu_time,
    start_time: meta.startTime,
    running: (f & XEN_DOMINF_running) !== 0,
    blocked: (f & XEN_DOMINF_blocked) !== 0,
    paused: (f & XEN_DOMINF_paused) !== 0,
    shutdown: (f & XEN_DOMINF_shutdown) !== 0,
    dying: (f & XEN_DOMINF_dying) !== 0,
  };
  if (reason) info.shutdown_reason = reason;
  if (meta.config) info.config = meta.config;
  return info;
}
