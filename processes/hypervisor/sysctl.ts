// sysctl (xen/common/sysctl.c): host-wide queries, Dom0 only.
import { XEN_SYSCTL_PHYSCAP_gnttab_v1, XEN_SYSCTL_PHYSCAP_hvm, XEN_SYSCTL_PHYSCAP_pv } from '../../shared/abi/sysctl.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';
import { domainInfo } from './domctl.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

export function sysctlPhysinfo(hv: Hypervisor): HcResult {
  return { ret: 0, data: {
    threads_per_core: 1, cores_per_socket: hv.pcpus, nr_cpus: hv.pcpus, max_cpu_id: hv.pcpus - 1,
    nr_nodes: 1, max_node_id: 0, cpu_khz: hv.cpuKhz,
    capabilities: XEN_SYSCTL_PHYSCAP_pv | XEN_SYSCTL_PHYSCAP_hvm | XEN_SYSCTL_PHYSCAP_gnttab_v1,
    total_pages: hv.memory.totalPages, free_pages: hv.memory.freePages, scrub_pages: 0,
    outstanding_pages: 0, max_mfn: hv.memory.totalPages - 1,
  } };
}

export function sysctlGetdomaininfolist(hv: Hypervisor, _caller: Domain, _t: Domain | null,
                                        arg: { first_domain?: number; max_domains?: number }): HcResult {
  const first = Number(arg.first_domain ?? 0);
  const max = Number(arg.max_domains ?? 1024);
  if (!Number.isInteger(first) || !Number.isInteger(max) || max < 0) return -XEN_EINVAL;
  const buffer = [...hv.domains.values()].filter((d) => d.domid >= first)
    .sort((a, b) => a.domid - b.domid).slice(0, max).map(domainInfo);
  return { ret: buffer.length, data: { num_domains: buffer.length, buffer } };
}

/** XEN_SYSCTL_readconsole {clear, incremental, index, count}: text, count and the next index (console_io.ts readRing). */
export function sysctlReadconsole(hv: Hypervisor, _caller: Domain, _t: Domain | null,
                                  arg: { clear?: number; incremental?: number; index?: number; count?: number }): HcResult {
  const r = hv.console.readRing(Number(arg.index ?? 0) || 0, Number(arg.count ?? 16384) || 0, !!arg.incremental);
  if (arg.clear) hv.console.clear();
  return { ret: 0, data: { text: r.text, count: r.text.length, index: r.index } };
}
