// `xl info`: the host as the hypervisor describes it (XEN_SYSCTL_physinfo,
// HYPERVISOR_xen_version), with the keys, order and formats of xl's own
// output (tools/xl/xl_info.c output_nodeinfo, output_physinfo,
// output_xeninfo), so that xenemu's `xl info` and Xen's, run against the
// same host through xenemu's privcmd library, print the same.
import * as os from 'node:os';
import {
  XEN_SYSCTL_PHYSCAP_gnttab_v1, XEN_SYSCTL_PHYSCAP_hap, XEN_SYSCTL_PHYSCAP_hvm, XEN_SYSCTL_PHYSCAP_pv,
  type xen_sysctl_physinfo,
} from '../../../shared/abi/sysctl.js';
import type { NodeInfo } from '../../../shared/toolstack/xend_api.js';

/** What HYPERVISOR_xen_version answers (libxl_version_info). */
export interface XenVersionInfo {
  major: number;
  minor: number;
  extra: string;
  capabilities: string;
  changeset: string;
  virtStart: bigint;
  pagesize: number;
  commandline: string;
  compiler: string;
  compileBy: string;
  compileDomain: string;
  compileDate: string;
  buildId: string;
}

/** The scheduler, as the hypervisor announced it on its console at boot. */
function schedulerFrom(dmesg: string): string {
  const m = /scheduler (\S+)/.exec(dmesg);
  return m ? m[1]!.replace(/[,.]$/, '') : 'credit';
}

/** xl's virt_caps: the capability bits by name, in xl's order. */
function virtCaps(caps: number): string {
  const names: string[] = [];
  if (caps & XEN_SYSCTL_PHYSCAP_pv) names.push('pv');
  if (caps & XEN_SYSCTL_PHYSCAP_hvm) names.push('hvm');
  if (caps & XEN_SYSCTL_PHYSCAP_hap) names.push('hap');
  if (caps & XEN_SYSCTL_PHYSCAP_gnttab_v1) names.push('gnttab-v1');
  return names.join(' ');
}

export function nodeInfo(p: xen_sysctl_physinfo, v: XenVersionInfo, dmesg: string): NodeInfo {
  const perMiB = (1 << 20) / v.pagesize;
  const mib = (pages: number) => Math.floor(pages / perMiB);
  return {
    host: os.hostname(),
    release: os.release(),
    version: os.version(),
    machine: os.machine(),
    nr_cpus: p.nr_cpus,
    max_cpu_id: p.max_cpu_id,
    nr_nodes: p.nr_nodes,
    cores_per_socket: p.cores_per_socket,
    threads_per_core: p.threads_per_core,
    cpu_mhz: `${Math.floor(p.cpu_khz / 1000)}.${String(p.cpu_khz % 1000).padStart(3, '0')}`,
    hw_caps: Array.from({ length: 8 }, () => '00000000').join(':'),
    virt_caps: virtCaps(p.capabilities),
    total_memory: mib(p.total_pages),
    free_memory: mib(p.free_pages - p.outstanding_pages),
    sharing_freed_memory: 0,
    sharing_used_memory: 0,
    outstanding_claims: mib(p.outstanding_pages),
    free_cpus: 0,
    xen_major: v.major,
    xen_minor: v.minor,
    xen_extra: v.extra,
    xen_version: `${v.major}.${v.minor}${v.extra}`,
    xen_caps: v.capabilities,
    xen_scheduler: schedulerFrom(dmesg),
    xen_pagesize: v.pagesize,
    platform_params: `virt_start=0x${v.virtStart.toString(16)}`,
    xen_changeset: v.changeset,
    xen_commandline: v.commandline,
    cc_compiler: v.compiler,
    cc_compile_by: v.compileBy,
    cc_compile_domain: v.compileDomain,
    cc_compile_date: v.compileDate,
    build_id: v.buildId,
    xend_config_format: 4,
  };
}
