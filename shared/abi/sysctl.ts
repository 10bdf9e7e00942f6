// Constants from xen/include/public/sysctl.h (Xen 4.17).
import type { xen_domctl_getdomaininfo } from './domctl.js';

export const XEN_SYSCTL_INTERFACE_VERSION = 0x00000015;

export const XEN_SYSCTL_readconsole = 1;
export const XEN_SYSCTL_physinfo = 3;
export const XEN_SYSCTL_sched_id = 4;
export const XEN_SYSCTL_getdomaininfolist = 6;
export const XEN_SYSCTL_cpupool_op = 18;
export const XEN_SYSCTL_scheduler_op = 19;

// XEN_SYSCTL_cpupool_op sub-ops
export const XEN_SYSCTL_CPUPOOL_OP_CREATE = 1;
export const XEN_SYSCTL_CPUPOOL_OP_DESTROY = 2;
export const XEN_SYSCTL_CPUPOOL_OP_INFO = 3;
export const XEN_SYSCTL_CPUPOOL_OP_ADDCPU = 4;
export const XEN_SYSCTL_CPUPOOL_OP_RMCPU = 5;
export const XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN = 6;
export const XEN_SYSCTL_CPUPOOL_OP_FREEINFO = 7;
export const XEN_SYSCTL_CPUPOOL_PAR_ANY = 0xffffffff;

export const XEN_SYSCTL_PHYSCAP_hvm = 1 << 0;
export const XEN_SYSCTL_PHYSCAP_pv = 1 << 1;
export const XEN_SYSCTL_PHYSCAP_gnttab_v1 = 1 << 8;

export const XEN_SYSCTL_PHYSCAP_hap = 1 << 3;

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

/** struct xen_sysctl_cpupool_op: op, cpupool_id, sched_id, domid, cpu, n_dom, cpumap (xenctl_bitmap). */
export interface xen_sysctl_cpupool_op {
  op: number;
  cpupool_id: number;
  sched_id?: number;
  domid?: number;
  cpu?: number;
  n_dom?: number;
  /** OUT for INFO and FREEINFO: the pool's CPUs (bit i = CPU i). */
  cpumap?: { bitmap: number[]; nr_bits: number };
}

// ---------------------------------------------------------------------------
// Byte layouts (x86_64) of what Xen's C tools pass through privcmd
// (processes/hypervisor/xen_hypercall.ts); test/hypervisor/xen_layouts.test.ts
// checks each against libxen-dev's sysctl.h.

/** struct xen_sysctl: the header; `u` holds the sub-op's struct (a 128-byte union). */
export const xen_sysctl = { cmd: 0, interface_version: 4, u: 8, SIZE: 136 } as const;

export const xen_sysctl_physinfo = {
  threads_per_core: 0, cores_per_socket: 4, nr_cpus: 8, max_cpu_id: 12, nr_nodes: 16, max_node_id: 20,
  cpu_khz: 24, capabilities: 28, arch_capabilities: 32, total_pages: 40, free_pages: 48, scrub_pages: 56,
  outstanding_pages: 64, max_mfn: 72, hw_cap: 80, SIZE: 112,
} as const;

/** IN first_domain, max_domains, buffer (a handle to xen_domctl_getdomaininfo[]); OUT num_domains. */
export const xen_sysctl_getdomaininfolist = { first_domain: 0, max_domains: 4, buffer: 8, num_domains: 16, SIZE: 24 } as const;

export const xen_sysctl_sched_id = { sched_id: 0, SIZE: 4 } as const;

/** IN clear, incremental, index, buffer (handle), count; OUT index, count. */
export const xen_sysctl_readconsole = { clear: 0, incremental: 1, index: 4, buffer: 8, count: 16, SIZE: 24 } as const;

export const xen_sysctl_cpupool_op = { op: 0, cpupool_id: 4, sched_id: 8, domid: 12, cpu: 16, n_dom: 20, cpumap: 24, SIZE: 40 } as const;

export const xen_sysctl_scheduler_op = { cpupool_id: 0, sched_id: 4, cmd: 8, u: 16, SIZE: 32 } as const;

export const xen_sysctl_credit_schedule = { tslice_ms: 0, ratelimit_us: 4, vcpu_migr_delay_us: 8, SIZE: 12 } as const;
