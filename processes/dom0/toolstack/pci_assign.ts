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
// carried as a plain object with Xen's field names. A hypervisor that does
// not know a domctl answers ENOSYS; for a PV guest libxl goes on then (its
// `r < 0 && (hvm || errno != ENOSYS)`), and so does this.
//
// The assignable devices are those whose configuration-space socket
// (<rundir>/pci/<bdf>.cfg, shared/wire/pci_cfg.ts) exists: the device
// processes the hypervisor started, each held by Domain-0's pciback.
import { readdirSync } from 'node:fs';
import { XEN_ENOSYS } from '../../../shared/abi/errno.js';
import { pciCfgDir } from '../../../shared/wire/pci_cfg.js';
import type { BuilderContext } from './builder.js';

export const XEN_DOMCTL_assign_device = 37;
export const XEN_DOMCTL_test_assign_device = 45;
export const XEN_DOMCTL_deassign_device = 47;
export const XEN_DOMCTL_DEV_PCI = 0;
export const XEN_DOMCTL_DEV_RDM_RELAXED = 1;
/** DOMID_INVALID for test_assign: "owned by anyone but quarantine?" */
export const DOMID_INVALID = 0x7ff4;

/** struct xen_domctl_assign_device (xen/domctl.h), as the hypercall message carries it. */
export interface XenDomctlAssignDevice {
  domain: number;
  dev: number;
  flags: number;
  u: { pci: { machine_sbdf: number } };
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
  return { domain: domid, dev: XEN_DOMCTL_DEV_PCI, flags, u: { pci: { machine_sbdf: pciEncodeBdf(p) } } };
}

/** The domctl's return: 0, or a negative Xen errno (-ENOSYS while the hypervisor lacks it). */
export async function testAssignDevice(ctx: BuilderContext, domid: number, p: PciAddress): Promise<number> {
  return (await ctx.dom0.hv.domctl(XEN_DOMCTL_test_assign_device, assignArg(domid, p))).ret;
}

export async function assignDevice(ctx: BuilderContext, domid: number, p: PciAddress, relaxed: boolean): Promise<number> {
  return (await ctx.dom0.hv.domctl(XEN_DOMCTL_assign_device, assignArg(domid, p, relaxed ? XEN_DOMCTL_DEV_RDM_RELAXED : 0))).ret;
}

export async function deassignDevice(ctx: BuilderContext, domid: number, p: PciAddress): Promise<number> {
  return (await ctx.dom0.hv.domctl(XEN_DOMCTL_deassign_device, assignArg(domid, p))).ret;
}

/** libxl's tolerance: ENOSYS from the hypervisor is not a failure for a PV guest. */
export const assignFailed = (ret: number, hvm: boolean): boolean => ret < 0 && (hvm || ret !== -XEN_ENOSYS);

/** The BDFs pciback holds, sorted: the device sockets in <rundir>/pci. */
export function assignableList(rundir: string): string[] {
  let names: string[];
  try { names = readdirSync(pciCfgDir(rundir)); } catch { return []; }
  return names.map((n) => /^([0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7])\.cfg$/.exec(n)?.[1]).filter((b): b is string => !!b).sort();
}
