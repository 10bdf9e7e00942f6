// `xl info`: the host as physinfo (XEN_SYSCTL_physinfo) describes it, with
// the keys and order of xl's output (tools/xl/xl_info.c output_xeninfo,
// output_physinfo). Version strings are xenemu's, shaped as Xen's.
import * as os from 'node:os';
import { XEN_SYSCTL_PHYSCAP_hvm, XEN_SYSCTL_PHYSCAP_pv, type xen_sysctl_physinfo } from '../../../shared/abi/sysctl.js';
import type { NodeInfo } from '../../../shared/toolstack/xend_api.js';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';

/** The Xen interface xenemu mirrors (headers of libxen-dev 4.17). */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;
export const XEN_EXTRA = '.0-xenemu';

const pagesToMiB = (pages: number) => Math.floor(pages / 256);

/** The scheduler, as the hypervisor announced it on its console at boot. */
function schedulerFrom(dmesg: string): string {
  const m = /scheduler (\S+)/.exec(dmesg);
  return m ? m[1]!.replace(/[,.]$/, '') : 'credit';
}

export function nodeInfo(p: xen_sysctl_physinfo, dmesg: string): NodeInfo {
  const caps: string[] = [];
  if (p.capabilities & XEN_SYSCTL_PHYSCAP_pv) caps.push('xen-3.0-x86_64');
  if (p.capabilities & XEN_SYSCTL_PHYSCAP_hvm) caps.push('hvm-3.0-x86_64');
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
    cpu_mhz: (p.cpu_khz / 1000).toFixed(3),
    virt_caps: p.capabilities & XEN_SYSCTL_PHYSCAP_hvm ? 'pv hvm' : 'pv',
    total_memory: pagesToMiB(p.total_pages),
    free_memory: pagesToMiB(p.free_pages),
    sharing_freed_memory: 0,
    sharing_used_memory: 0,
    outstanding_claims: pagesToMiB(p.outstanding_pages),
    free_cpus: 0,
    xen_major: XEN_MAJOR,
    xen_minor: XEN_MINOR,
    xen_extra: XEN_EXTRA,
    xen_version: `${XEN_MAJOR}.${XEN_MINOR}${XEN_EXTRA}`,
    xen_caps: caps.join(' '),
    xen_scheduler: schedulerFrom(dmesg),
    xen_pagesize: PAGE_SIZE,
    platform_params: 'virt_start=0xffff800000000000',
    xen_changeset: 'xenemu',
    xen_commandline: '',
    cc_compiler: `node ${process.versions.node}`,
    cc_compile_by: 'xenemu',
    cc_compile_domain: '',
    cc_compile_date: '',
    build_id: '',
    xend_config_format: 4,
  };
}
