// The hypercall dispatch table: op -> cmd -> {name, handler, flags}.
//
// Privilege is decided here and only here (docs/style.md rule 5):
//   PRIV    only the control domain (Dom0) may call it        -> -EPERM
//   TARGET  the call names a domain (arg field `target`); it is resolved
//           (DOMID_SELF -> caller), must exist (-ESRCH), and may differ from
//           the caller only for Dom0 or the target's device model, a domain
//           given it by XEN_DOMCTL_set_target (XSM_TARGET; else -EPERM)
//   DM      with TARGET: the target may not be the caller itself; only Dom0
//           or the target's device model (XSM_DM_PRIV: dm_op, ioreq pages)
// Handlers receive (hv, caller, target, arg) and return a Xen errno as data:
// a number (ret) or {ret, data}. A handler that throws is a hypervisor bug;
// the dispatcher logs it and answers -EFAULT rather than dying.
import {
  __HYPERVISOR_console_io, __HYPERVISOR_domctl, __HYPERVISOR_event_channel_op, __HYPERVISOR_grant_table_op,
  __HYPERVISOR_memory_op, __HYPERVISOR_sched_op, __HYPERVISOR_sysctl, __HYPERVISOR_vcpu_op, __HYPERVISOR_hvm_op,
  __HYPERVISOR_dm_op, __HYPERVISOR_xen_version, __HYPERVISOR_physdev_op, CONSOLEIO_read,
  CONSOLEIO_write, DOMID_SELF,
} from '../../shared/abi/xen.js';
import * as XV from '../../shared/abi/version.js';
import * as V from '../../shared/abi/vcpu.js';
import * as E from '../../shared/abi/event_channel.js';
import * as G from '../../shared/abi/grant_table.js';
import * as DC from '../../shared/abi/domctl.js';
import * as SC from '../../shared/abi/sysctl.js';
import * as M from '../../shared/abi/memory.js';
import * as S from '../../shared/abi/sched.js';
import { XEN_EFAULT, XEN_EINVAL, XEN_ENOSYS, XEN_EPERM, XEN_ESRCH, errnoName } from '../../shared/abi/errno.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';
import * as evtchn from './event_channel.js';
import * as gnttab from './grant_table.js';
import * as domctl from './domctl.js';
import * as logDirty from './log_dirty.js';
import * as sysctl from './sysctl.js';
import * as memory from './memory.js';
import * as sched from './sched.js';
import * as vcpuop from './sched_vcpu.js';
import * as schedctl from './sched_ctl.js';
import * as consoleio from './console_io.js';
import * as hvm from './hvm.js';
import * as xenver from './xen_version.js';
import * as HP from '../../shared/abi/hvm/params.js';
import * as PD from '../../shared/abi/physdev.js';
import * as pci from './pci_domctl.js';
import * as pirq from './pci_irq.js';

export const PRIV = 1 << 0;
export const TARGET = 1 << 1;
export const DM = 1 << 2;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (hv: Hypervisor, caller: Domain, target: Domain, arg: any) => HcResult;

export interface HypercallEntry {
  name: string;
  handler: Handler;
  flags: number;
  /** With TARGET: the arg field naming the domain. */
  target?: string;
}

type Table = Record<number, Record<number, HypercallEntry>>;

export const hypercallTable: Table = {
  [__HYPERVISOR_domctl]: {
    [DC.XEN_DOMCTL_createdomain]: { name: 'createdomain', handler: domctl.domctlCreatedomain, flags: PRIV },
    [DC.XEN_DOMCTL_destroydomain]: { name: 'destroydomain', handler: domctl.domctlDestroydomain, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_pausedomain]: { name: 'pausedomain', handler: domctl.domctlPausedomain, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_resumedomain]: { name: 'resumedomain', handler: domctl.domctlResumedomain, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_unpausedomain]: { name: 'unpausedomain', handler: domctl.domctlUnpausedomain, flags: PRIV | TARGET, target: 'domain' },
    // Not TARGET: it answers the first domain whose id is at least the one asked (Xen's domctl.c).
    [DC.XEN_DOMCTL_getdomaininfo]: { name: 'getdomaininfo', handler: domctl.domctlGetdomaininfo, flags: PRIV },
    [DC.XEN_DOMCTL_max_mem]: { name: 'max_mem', handler: domctl.domctlMaxMem, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_max_vcpus]: { name: 'max_vcpus', handler: domctl.domctlMaxVcpus, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_setvcpucontext]: { name: 'setvcpucontext', handler: domctl.domctlSetvcpucontext, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_getvcpuinfo]: { name: 'getvcpuinfo', handler: vcpuop.domctlGetvcpuinfo, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_scheduler_op]: { name: 'scheduler_op', handler: schedctl.domctlSchedulerOp, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_setvcpuaffinity]: { name: 'setvcpuaffinity', handler: schedctl.domctlSetvcpuaffinity, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_getvcpuaffinity]: { name: 'getvcpuaffinity', handler: schedctl.domctlGetvcpuaffinity, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_sendtrigger]: { name: 'sendtrigger', handler: hvm.domctlSendtrigger, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_gethvmcontext]: { name: 'gethvmcontext', handler: hvm.domctlGethvmcontext, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_sethvmcontext]: { name: 'sethvmcontext', handler: hvm.domctlSethvmcontext, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_set_target]: { name: 'set_target', handler: domctl.domctlSetTarget, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_shadow_op]: { name: 'shadow_op', handler: logDirty.domctlShadowOp, flags: PRIV | TARGET, target: 'domain' },
    // PCI passthrough (pci_domctl.ts). test_assign_device takes DOMID_INVALID: its handler resolves the domain.
    [DC.XEN_DOMCTL_assign_device]: { name: 'assign_device', handler: pci.domctlAssignDevice, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_test_assign_device]: { name: 'test_assign_device', handler: pci.domctlTestAssignDevice, flags: PRIV },
    [DC.XEN_DOMCTL_deassign_device]: { name: 'deassign_device', handler: pci.domctlDeassignDevice, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_irq_permission]: { name: 'irq_permission', handler: pci.domctlIrqPermission, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_iomem_permission]: { name: 'iomem_permission', handler: pci.domctlIomemPermission, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_ioport_permission]: { name: 'ioport_permission', handler: pci.domctlIoportPermission, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_memory_mapping]: { name: 'memory_mapping', handler: pci.domctlMemoryMapping, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_ioport_mapping]: { name: 'ioport_mapping', handler: pci.domctlIoportMapping, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_bind_pt_irq]: { name: 'bind_pt_irq', handler: pci.domctlBindPtIrq, flags: PRIV | TARGET, target: 'domain' },
    [DC.XEN_DOMCTL_unbind_pt_irq]: { name: 'unbind_pt_irq', handler: pci.domctlUnbindPtIrq, flags: PRIV | TARGET, target: 'domain' },
    [DC.XENEMU_DOMCTL_pci_assignable_add]: { name: 'xenemu_pci_assignable_add', handler: pci.pciAssignableAdd, flags: PRIV },
    [DC.XENEMU_DOMCTL_pci_assignable_remove]: { name: 'xenemu_pci_assignable_remove', handler: pci.pciAssignableRemove, flags: PRIV },
    [DC.XENEMU_DOMCTL_pci_assignable_list]: { name: 'xenemu_pci_assignable_list', handler: pci.pciAssignableList, flags: PRIV },
    // XSM_TARGET (a foreign mapping): Domain-0, the domain itself, or its device model.
    [DC.XENEMU_DOMCTL_getsegments]: { name: 'xenemu_getsegments', handler: domctl.domctlGetsegments, flags: TARGET, target: 'domain' },
  },
  [__HYPERVISOR_sysctl]: {
    [SC.XEN_SYSCTL_physinfo]: { name: 'physinfo', handler: sysctl.sysctlPhysinfo, flags: PRIV },
    [SC.XEN_SYSCTL_getdomaininfolist]: { name: 'getdomaininfolist', handler: sysctl.sysctlGetdomaininfolist, flags: PRIV },
    [SC.XEN_SYSCTL_readconsole]: { name: 'readconsole', handler: sysctl.sysctlReadconsole, flags: PRIV },
    [SC.XEN_SYSCTL_scheduler_op]: { name: 'scheduler_op', handler: schedctl.sysctlSchedulerOp, flags: PRIV },
    [SC.XEN_SYSCTL_sched_id]: { name: 'sched_id', handler: schedctl.sysctlSchedId, flags: PRIV },
    [SC.XEN_SYSCTL_cpupool_op]: { name: 'cpupool_op', handler: schedctl.sysctlCpupoolOp, flags: PRIV },
  },
  [__HYPERVISOR_xen_version]: {
    [XV.XENVER_version]: { name: 'xenver_version', handler: xenver.xenverVersion, flags: 0 },
    [XV.XENVER_extraversion]: { name: 'xenver_extraversion', handler: xenver.xenverExtraversion, flags: 0 },
    [XV.XENVER_compile_info]: { name: 'xenver_compile_info', handler: xenver.xenverCompileInfo, flags: 0 },
    [XV.XENVER_capabilities]: { name: 'xenver_capabilities', handler: xenver.xenverCapabilities, flags: 0 },
    [XV.XENVER_changeset]: { name: 'xenver_changeset', handler: xenver.xenverChangeset, flags: 0 },
    [XV.XENVER_platform_parameters]: { name: 'xenver_platform_parameters', handler: xenver.xenverPlatformParameters, flags: 0 },
    [XV.XENVER_get_features]: { name: 'xenver_get_features', handler: xenver.xenverGetFeatures, flags: 0 },
    [XV.XENVER_pagesize]: { name: 'xenver_pagesize', handler: xenver.xenverPagesize, flags: 0 },
    [XV.XENVER_guest_handle]: { name: 'xenver_guest_handle', handler: xenver.xenverGuestHandle, flags: 0 },
    [XV.XENVER_commandline]: { name: 'xenver_commandline', handler: xenver.xenverCommandline, flags: PRIV },
    [XV.XENVER_build_id]: { name: 'xenver_build_id', handler: xenver.xenverBuildId, flags: PRIV },
  },
  [__HYPERVISOR_memory_op]: {
    [M.XENMEM_increase_reservation]: { name: 'increase_reservation', handler: memory.memoryIncrease, flags: TARGET, target: 'domid' },
    [M.XENMEM_populate_physmap]: { name: 'populate_physmap', handler: memory.memoryIncrease, flags: TARGET, target: 'domid' },
    [M.XENMEM_decrease_reservation]: { name: 'decrease_reservation', handler: memory.memoryDecrease, flags: TARGET, target: 'domid' },
    [M.XENMEM_current_reservation]: { name: 'current_reservation', handler: memory.memoryCurrent, flags: TARGET, target: 'domid' },
    [M.XENMEM_maximum_reservation]: { name: 'maximum_reservation', handler: memory.memoryMaximum, flags: TARGET, target: 'domid' },
    [M.XENMEM_acquire_resource]: { name: 'acquire_resource', handler: memory.memoryAcquireResource, flags: TARGET | DM, target: 'domid' },
    [M.XENMEM_get_sharing_freed_pages]: { name: 'get_sharing_freed_pages', handler: memory.memorySharingPages, flags: 0 },
    [M.XENMEM_get_sharing_shared_pages]: { name: 'get_sharing_shared_pages', handler: memory.memorySharingPages, flags: 0 },
  },
  [__HYPERVISOR_hvm_op]: {
    [HP.HVMOP_set_param]: { name: 'hvm_set_param', handler: hvm.hvmopSetParam, flags: TARGET, target: 'domid' },
    [HP.HVMOP_get_param]: { name: 'hvm_get_param', handler: hvm.hvmopGetParam, flags: TARGET, target: 'domid' },
  },
  // One entry: the dm_op's own `op` field picks the operation (hvm.ts dmOp), as Xen's dm.c does.
  [__HYPERVISOR_dm_op]: {
    0: { name: 'dm_op', handler: hvm.dmOp, flags: TARGET | DM, target: 'domid' },
  },
  [__HYPERVISOR_event_channel_op]: {
    [E.EVTCHNOP_alloc_unbound]: { name: 'alloc_unbound', handler: evtchn.evtchnAllocUnbound, flags: TARGET, target: 'dom' },
    [E.EVTCHNOP_bind_interdomain]: { name: 'bind_interdomain', handler: evtchn.evtchnBindInterdomain, flags: 0 },
    [E.EVTCHNOP_bind_virq]: { name: 'bind_virq', handler: evtchn.evtchnBindVirq, flags: 0 },
    [E.EVTCHNOP_send]: { name: 'send', handler: evtchn.evtchnSendOp, flags: 0 },
    [E.EVTCHNOP_close]: { name: 'close', handler: evtchn.evtchnClose, flags: 0 },
    [E.EVTCHNOP_status]: { name: 'status', handler: evtchn.evtchnStatus, flags: TARGET, target: 'dom' },
    [E.EVTCHNOP_unmask]: { name: 'unmask', handler: evtchn.evtchnUnmask, flags: 0 },
    [E.EVTCHNOP_bind_pirq]: { name: 'bind_pirq', handler: evtchn.evtchnBindPirq, flags: 0 },
    [E.XENEMU_EVTCHNOP_bind_virq_listener]: { name: 'xenemu_bind_virq_listener', handler: evtchn.evtchnBindVirqListener, flags: PRIV },
  },
  [__HYPERVISOR_grant_table_op]: {
    [G.GNTTABOP_setup_table]: { name: 'setup_table', handler: gnttab.gnttabSetupTable, flags: TARGET, target: 'dom' },
    [G.GNTTABOP_query_size]: { name: 'query_size', handler: gnttab.gnttabQuerySize, flags: TARGET, target: 'dom' },
    [G.GNTTABOP_map_grant_ref]: { name: 'map_grant_ref', handler: gnttab.gnttabMapGrantRef, flags: 0 },
    [G.GNTTABOP_unmap_grant_ref]: { name: 'unmap_grant_ref', handler: gnttab.gnttabUnmapGrantRef, flags: 0 },
    [G.GNTTABOP_copy]: { name: 'copy', handler: gnttab.gnttabCopy, flags: 0 },
  },
  [__HYPERVISOR_sched_op]: {
    [S.SCHEDOP_yield]: { name: 'yield', handler: sched.schedYield, flags: 0 },
    [S.SCHEDOP_block]: { name: 'block', handler: sched.schedBlock, flags: 0 },
    [S.SCHEDOP_shutdown]: { name: 'shutdown', handler: sched.schedShutdown, flags: 0 },
    [S.SCHEDOP_remote_shutdown]: { name: 'remote_shutdown', handler: sched.schedRemoteShutdown, flags: PRIV | TARGET, target: 'domain_id' },
  },
  [__HYPERVISOR_vcpu_op]: {
    [V.VCPUOP_up]: { name: 'vcpu_up', handler: vcpuop.vcpuopUp, flags: 0 },
    [V.VCPUOP_down]: { name: 'vcpu_down', handler: vcpuop.vcpuopDown, flags: 0 },
    [V.VCPUOP_is_up]: { name: 'vcpu_is_up', handler: vcpuop.vcpuopIsUp, flags: 0 },
    [V.VCPUOP_get_runstate_info]: { name: 'get_runstate_info', handler: vcpuop.vcpuopGetRunstateInfo, flags: 0 },
    [V.XENEMU_VCPUOP_register_slice_area]: { name: 'xenemu_register_slice_area', handler: vcpuop.vcpuopRegisterSliceArea, flags: 0 },
  },
  [__HYPERVISOR_physdev_op]: {
    [PD.XENEMU_PHYSDEVOP_pci_bar_channel]: { name: 'xenemu_pci_bar_channel', handler: pci.physdevPciBarChannel, flags: 0 },
    [PD.PHYSDEVOP_map_pirq]: { name: 'map_pirq', handler: pirq.physdevMapPirq, flags: TARGET, target: 'domid' },
    [PD.PHYSDEVOP_unmap_pirq]: { name: 'unmap_pirq', handler: pirq.physdevUnmapPirq, flags: TARGET, target: 'domid' },
    [PD.PHYSDEVOP_eoi]: { name: 'eoi', handler: pirq.physdevEoi, flags: 0 },
  },
  [__HYPERVISOR_console_io]: {
    [CONSOLEIO_write]: { name: 'console_io_write', handler: consoleio.consoleWrite, flags: 0 },
    [CONSOLEIO_read]: { name: 'console_io_read', handler: consoleio.consoleRead, flags: PRIV },
  },
};

export interface DispatchResult { ret: number; data?: unknown; defer?: boolean }

export function dispatch(hv: Hypervisor, caller: Domain, op: number, cmd: number, rawArg: unknown): DispatchResult {
  const entry = hypercallTable[op]?.[cmd];
  if (!entry) return { ret: -XEN_ENOSYS };
  const arg = (typeof rawArg === 'object' && rawArg !== null ? rawArg : {}) as Record<string, unknown>;
  const privileged = hv.isPrivileged(caller);
  if ((entry.flags & PRIV) && !privileged) return deny(hv, caller, entry, 'privileged operation');
  let target: Domain | null = null;
  if (entry.flags & TARGET) {
    const raw = arg[entry.target!];
    // A guest-written field: anything but a domid number is EINVAL (Number()
    // of a crafted object could even throw out of here).
    if (raw !== undefined && !Number.isInteger(raw)) return { ret: -XEN_EINVAL };
    const domid = raw === undefined || raw === DOMID_SELF ? caller.domid : (raw as number);
    const dmOf = caller.target === domid;
    if (domid !== caller.domid && !privileged && !dmOf) return deny(hv, caller, entry, `acting on d${domid}`);
    if ((entry.flags & DM) && domid === caller.domid && !privileged) return deny(hv, caller, entry, 'a device model operation on itself');
    target = hv.domains.get(domid) ?? null;
    if (!target) return { ret: -XEN_ESRCH };
  }
  try {
    // target is null exactly when the entry has no TARGET flag, and then unused.
    const r = entry.handler(hv, caller, target as Domain, arg);
    return typeof r === 'number' ? { ret: r } : r;
  } catch (err) {
    hv.console.log(`BUG: ${entry.name} from d${caller.domid} threw: ${(err as Error).stack ?? err}`);
    return { ret: -XEN_EFAULT };
  }
}

function deny(hv: Hypervisor, caller: Domain, entry: HypercallEntry, why: string): DispatchResult {
  hv.console.log(`d${caller.domid}: ${entry.name} denied (${why}): ${errnoName(XEN_EPERM)}`);
  return { ret: -XEN_EPERM };
}
