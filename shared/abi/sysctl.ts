// Constants from xen/include/public/sysctl.h (Xen 4.17).
import type { xen_domctl_getdomaininfo } from './domctl.js';

export const XEN_SYSCTL_INTERFACE_VERSION = 0x00000015;

export const XEN_SYSCTL_readconsole = 1;
export const XEN_SYSCTL_physinfo = 3;
export const XEN_SYSCTL_sched_id = 4;
export const XEN_SYSCTL_getdomaininfolist = 6;

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
