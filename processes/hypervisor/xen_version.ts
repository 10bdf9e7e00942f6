// HYPERVISOR_xen_version (xen/common/kernel.c do_xen_version): who this
// hypervisor says it is. xenemu mirrors Xen 4.17's interface, so it answers
// as a 4.17 with its own extra version; `xl info` (Xen's, through privcmd)
// and `xm info` (xend, through these same handlers) print the same.
//
// The command line is the one of Xen's boot options that describes this
// host: dom0_mem (Domain-0 has a fixed size, which is also what tells libxl
// not to balloon Domain-0: libxl's autoballoon default is off when the Xen
// command line has dom0_mem=), sched= and maxcpus=.
//
// Xen's XSM gives unprivileged domains "<denied>" for the command line and
// -EPERM for the build id; here both are PRIV entries of the table (-EPERM).
import { XEN_ENODATA, XEN_EINVAL } from '../../shared/abi/errno.js';
import { XENFEAT_direct_mapped, XENFEAT_dom0, XENFEAT_gnttab_map_avail_bits, XENFEAT_highmem_assist,
  XENFEAT_hvm_callback_vector, XENFEAT_hvm_safe_pvclock, XENFEAT_memory_op_vnode_supported,
  XENFEAT_mmu_pt_update_preserve_ad, XENFEAT_not_direct_mapped } from '../../shared/abi/features.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;
export const XEN_EXTRA = '.0-xenemu';
/** HYPERVISOR_VIRT_START of x86_64 PV guests (arch-x86/xen-x86_64.h). */
export const HYPERVISOR_VIRT_START = 0xffff800000000000n;

export function xenverVersion(): HcResult {
  return (XEN_MAJOR << 16) | XEN_MINOR;
}

export function xenverExtraversion(): HcResult {
  return { ret: 0, data: { extraversion: XEN_EXTRA } };
}

export function xenverCompileInfo(): HcResult {
  return { ret: 0, data: { compiler: `node ${process.versions.node}`, compile_by: 'xenemu', compile_domain: '', compile_date: '' } };
}

/** arch_get_xen_caps: the kinds of guest this host runs. */
export function xenverCapabilities(): HcResult {
  return { ret: 0, data: { capabilities: 'xen-3.0-x86_64 hvm-3.0-x86_64' } };
}

export function xenverChangeset(): HcResult {
  return { ret: 0, data: { changeset: 'xenemu' } };
}

export function xenverPlatformParameters(): HcResult {
  return { ret: 0, data: { virt_start: HYPERVISOR_VIRT_START } };
}

/** XENVER_get_features {submap_idx}: submap 0 as Xen builds it for a PV or an HVM domain. */
export function xenverGetFeatures(_hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { submap_idx?: number }): HcResult {
  if (Number(arg.submap_idx ?? 0) !== 0) return -XEN_EINVAL;
  let submap = 1 << XENFEAT_memory_op_vnode_supported;
  if (caller.domid === 0) submap |= 1 << XENFEAT_dom0;
  if (caller.hvm) {
    submap |= (1 << XENFEAT_hvm_safe_pvclock) | (1 << XENFEAT_hvm_callback_vector) | (1 << XENFEAT_not_direct_mapped);
  } else {
    submap |= (1 << XENFEAT_mmu_pt_update_preserve_ad) | (1 << XENFEAT_highmem_assist) |
      (1 << XENFEAT_gnttab_map_avail_bits) | (1 << XENFEAT_direct_mapped);
  }
  return { ret: 0, data: { submap_idx: 0, submap: submap >>> 0 } };
}

export function xenverPagesize(): HcResult {
  return PAGE_SIZE;
}

export function xenverGuestHandle(_hv: Hypervisor, caller: Domain): HcResult {
  return { ret: 0, data: { handle: caller.handle } };
}

export function xenverCommandline(hv: Hypervisor): HcResult {
  return { ret: 0, data: { commandline: hv.commandline } };
}

/** No build id: Xen answers -ENODATA when it was built without one. */
export function xenverBuildId(): HcResult {
  return -XEN_ENODATA;
}
