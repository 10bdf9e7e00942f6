// The Xen calls behind a PCI device's ownership, as libxc makes them
// (xc_test_assign_device, xc_assign_device, xc_deassign_device), and the
// list of devices pciback holds (libxl_device_pci_assignable_list).
//
//   XEN_DOMCTL_test_assign_device (45)  EBUSY when another guest owns it
//   XEN_DOMCTL_assign_device (37)       quarantine -> the guest
//   XEN_DOMCTL_deassign_device (47)     the guest -> quarantine
//
// each with struct xen_domctl_assign_device (xen/domctl.h: dev
// XEN_DOMCTL_DEV_PCI, flags XEN_DOMCTL_DEV_RDM_RELAXED, u.pci.machine_sbdf),
// carried as xenemu's domctl message carries it: Xen's field names, the
// union's one PCI member flat (the binary decoder in
// processes/hypervisor/xen_hypercall.ts gives the same object). A hypervisor that does
// not know a domctl answers ENOSYS; for a PV guest libxl goes on then (its
// `r < 0 && (hvm || errno != ENOSYS)`), and so does this.
//
// The assignable devices are those pciback holds and no guest has: in the
// hypervisor's PCI registry (XENEMU_DOMCTL_pci_assignable_list), owned by
// quarantine (dom_io, after `xl pci-assignable-add`) and not gone. libxl's
// libxl_device_pci_assignable_list is the same set: pciback's devices less
// those with an owner record.
import { XENEMU_DOMCTL_pci_assignable_list, XEN_DOMCTL_irq_permission } from '../../../shared/abi/domctl.js';
import { hostGsiOfBus, type PciBarInfo } from '../../../shared/wire/pcidev.js';
import { XEN_ENOSYS } from '../../../shared/abi/errno.js';
import type { XenDomain } from '../../../shared/xen/index.js';
import type { BuilderContext } from './builder.js';

export const XEN_DOMCTL_assign_device = 37;
export const XEN_DOMCTL_test_assign_device = 45;
export const XEN_DOMCTL_deassign_device = 47;
export const XEN_DOMCTL_DEV_PCI = 0;
export const XEN_DOMCTL_DEV_RDM_RELAXED = 1;
/** DOMID_INVALID for test_assign: "owned by anyone but quarantine?" */
export const DOMID_INVALID = 0x7ff4;

/** struct xen_domctl_assign_device (xen/domctl.h), as the hypercall message carries it (u.pci.machine_sbdf flat). */
export interface XenDomctlAssignDevice {
  domain: number;
  dev: number;
  flags: number;
  machine_sbdf: number;
}

export interface PciAddress { domain: number; bus: number; dev: number; func: number }

/** pci_encode_bdf (libxl_pci.c): segment << 16 | bus << 8 | dev << 3 | func. */
export function pciEncodeBdf(p: PciAddress): number {
  return ((p.domain << 16) | ((p.bus & 0xff) << 8) | ((p.dev & 0x1f) << 3) | (p.func & 7)) >>> 0;
}

/** PCI_BDF of libxl: 0000:03:00.0. */
export function pciBdfText(p: PciAddress): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${h(p.domain, 4)}:${h(p.bus, 2)}:${h(p.dev, 2)}.${p.func.toString(16)}`;
}

function assignArg(domid: number, p: PciAddress, flags = 0): XenDomctlAssignDevice {
  return { domain: domid, dev: XEN_DOMCTL_DEV_PCI, flags, machine_sbdf: pciEncodeBdf(p) };
}

/** The domctl's return: 0, or a negative Xen errno (-ENOSYS while the hypervisor lacks it). */
export async function testAssignDevice(ctx: BuilderContext, domid: number, p: PciAddress): Promise<number> {
  return (await ctx.dom0.hv.domctl(XEN_DOMCTL_test_assign_device, assignArg(domid, p))).ret;
}

export async function assignDevice(ctx: BuilderContext, domid: number, p: PciAddress, relaxed: boolean): Promise<number> {
  return (await ctx.dom0.hv.domctl(XEN_DOMCTL_assign_device, assignArg(domid, p, relaxed ? XEN_DOMCTL_DEV_RDM_RELAXED : 0))).ret;
}

/**
 * xc_domain_irq_permission for the device's GSI (the host's routing,
 * shared/wire/pcidev.ts hostGsiOfBus), as libxl's pci_add_dm_done grants a
 * PV guest its device's irq and do_pci_remove revokes it: the guest maps it
 * itself (PHYSDEVOP_map_pirq) for INTx.
 */
export async function irqPermission(ctx: BuilderContext, domid: number, p: PciAddress, allow: boolean): Promise<number> {
  return (await ctx.dom0.hv.domctl(XEN_DOMCTL_irq_permission, { domain: domid, pirq: hostGsiOfBus(p.bus), allow_access: allow ? 1 : 0 })).ret;
}

export async function deassignDevice(ctx: BuilderContext, domid: number, p: PciAddress): Promise<number> {
  return (await ctx.dom0.hv.domctl(XEN_DOMCTL_deassign_device, assignArg(domid, p))).ret;
}

/** libxl's tolerance: ENOSYS from the hypervisor is not a failure for a PV guest. */
export const assignFailed = (ret: number, hvm: boolean): boolean => ret < 0 && (hvm || ret !== -XEN_ENOSYS);

/** One device of the hypervisor's registry, as XENEMU_DOMCTL_pci_assignable_list lists it. */
export interface PciRegistryEntry { bdf: string; owner: string; state: string; bars?: PciBarInfo[] }

/** The hypervisor's PCI registry: its answer (0 or -errno) and every device, whoever owns it. */
export async function pciRegistry(dom0: XenDomain): Promise<{ ret: number; devices: PciRegistryEntry[] }> {
  const r = await dom0.hv.domctl<{ devices?: PciRegistryEntry[] }>(XENEMU_DOMCTL_pci_assignable_list, {});
  return { ret: r.ret, devices: r.ret < 0 ? [] : r.data?.devices ?? [] };
}

/** The assignable BDFs of a registry listing, sorted: in quarantine and not gone. */
export function assignableFrom(devices: PciRegistryEntry[]): string[] {
  return devices.filter((d) => d.owner === 'quarantine' && d.state !== 'gone').map((d) => d.bdf).sort();
}

/** The BDFs a guest may be given now (none from a hypervisor without a registry). */
export async function assignableList(dom0: XenDomain): Promise<string[]> {
  return assignableFrom((await pciRegistry(dom0)).devices);
}
