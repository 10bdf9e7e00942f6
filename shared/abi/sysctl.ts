// Constants from xen/include/public/sysctl.h (Xen 4.17).
import type { xen_domctl_getdomaininfo } from './domctl.js';

export const XEN_SYSCTL_INTERFACE_VERSION = 0x00000015;

export const XEN_SYSCTL_readconsole = 1;
export const XEN_SYSCTL_physinfo = 3;
export const XEN_SYSCTL_sched_id = 4;
export const XEN_SYSCTL_getdomaininfolist = 6;
export const XEN_SYSCTL_scheduler_op = 19;

export const XEN_SYSCTL_PHYSCAP_hvm = 1 << 0;
export const XEN_SYSCTL_PHYSCAP_pv = 1 << 1;
export const XEN_SYSCTL_PHYSCAP_gnttab_v1 = 1 << 8;

export interface xen_sysctl_physinfo {
  threads_per_core: number;
  cores_per_socket: number;
  nr_cpus: number;
  max_cpu_id: number;
  nr_nodes: number;
  max_node_id: number;
  cpu_khz: number;
  capabilities: number;
  total_pages: number;
  free_pages: number;
  scrub_pages: number;
  outstanding_pages: number;
  max_mfn: number;
}

export interface xen_sysctl_getdomaininfolist {
  first_domain: number;
  max_domains: number;
  buffer?: xen_domctl_getdomaininfo[];
  num_domains?: number;
}

export interface xen_sysctl_readconsole {
  clear?: number;
  incremental?: number;
  index?: number;
  count: number;
}

// XEN_SYSCTL_scheduler_op
export const XEN_SYSCTL_SCHEDOP_putinfo = 0;
export const XEN_SYSCTL_SCHEDOP_getinfo = 1;
export const XEN_SYSCTL_SCHED_RATELIMIT_MAX = 500000;
export const XEN_SYSCTL_SCHED_RATELIMIT_MIN = 100;
export const XEN_SYSCTL_CSCHED_TSLICE_MAX = 1000;
export const XEN_SYSCTL_CSCHED_TSLICE_MIN = 1;
export const XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US = 100 * 1000;

/** struct xen_sysctl_credit_schedule. */
export interface xen_sysctl_credit_schedule {
  tslice_ms: number;
  ratelimit_us: number;
  vcpu_migr_delay_us: number;
}

/** struct xen_sysctl_scheduler_op (the credit member of its union as `u.sched_credit`). */
export interface xen_sysctl_scheduler_op {
  cpupool_id: number;
  sched_id: number;
  cmd: number;
  u: { sched_credit: xen_sysctl_credit_schedule };
}

/** XEN_SYSCTL_sched_id: OUT sched_id. */
export interface xen_sysctl_sched_id {
  sched_id: number;
}
