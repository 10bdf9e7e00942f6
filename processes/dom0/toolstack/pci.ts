// PCI passthrough to a PV guest, the toolstack's part (libxl_pci.c): the
// checks and the Xen calls of libxl__device_pci_add and do_pci_remove, and
// the one PCI back end per guest that pciback (processes/dom0/pciback)
// serves and pcifront connects to.
//
//   /local/domain/0/backend/pci/<domid>/0     n0,r<domid>
//     frontend, frontend-id, online=1, state, domain (the guest's name),
//     num_devs, and per device N: key-N, dev-N (DDDD:BB:DD.F), vdevfn-N
//     (hex, when a vslot was given), opts-N
//     (msitranslate=..,power_mgmt=..,permissive=..,rdm_policy=..), state-N
//   /local/domain/<domid>/device/pci/0         n<domid>,r0
//     backend, backend-id, state
//   /libxl/pci/<DDDD-BB-DD-F>/domid           who has the device
//   /libxl/<domid>/device/pci/0                libxl's record: frontend, backend
//
// At create (`starting`) devices are added before the guest runs, each one
// more dev-N. A hot-plug waits for the back end to be Connected, adds dev-N
// with state-N Initialising and sets the back end Reconfiguring; a hot-unplug
// sets state-N Closing and the back end Reconfiguring, waits for Connected,
// then takes the keys out, moving the later devices down (the last device
// takes the whole back end with it). pciback and pcifront do their part of
// the Reconfiguring -> Reconfigured -> Connected dance in between.
import type { PciSpec } from '../../../shared/toolstack/xlcfg.js';
import { XEN_EBUSY, errnoName } from '../../../shared/abi/errno.js';
import { XenbusState, backendPath, frontendPath, xenbusWaitState } from '../../../shared/xen/xenbus.js';
import { pciCfgSocket } from '../../../shared/wire/pci_cfg.js';
import { BuildError, type BuilderContext } from './builder.js';
import { deviceLibxlPath } from './device.js';
import {
  assignDevice, assignFailed, assignableList, deassignDevice, irqPermission, pciBdfText, pciRegistry, testAssignDevice, type PciAddress,
} from './pci_assign.js';
import { XEN_DOMCTL_iomem_permission, XEN_DOMCTL_ioport_permission } from '../../../shared/abi/domctl.js';
import { PciCfgClient } from '../pciback/cfg_client.js';

/** One row of xl pci-list (libxl_device_pci_list). */
export interface PciListEntry extends PciAddress { vdevfn: number }

/** How long a hot-plug waits for the back end (libxl__wait_for_backend). */
const BACKEND_TIMEOUT_MS = 10_000;

export const pciBackendDir = (domid: number): string => backendPath(0, 'pci', domid, 0);
export const pciFrontendDir = (domid: number): string => frontendPath(domid, 'pci', 0);
/** PCI_INFO_PATH/PCI_BDF_XSPATH of libxl_pci.c. */
export function pciInfoPath(p: PciAddress): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `/libxl/pci/${h(p.domain, 4)}-${h(p.bus, 2)}-${h(p.dev, 2)}-${p.func.toString(16)}`;
}
/** libxl prints a device in its errors as %x:%x:%x.%x. */
const shortBdf = (p: PciAddress) => `${p.domain.toString(16)}:${p.bus.toString(16)}:${p.dev.toString(16)}.${p.func.toString(16)}`;

/** The functions a spec names: one, or with F `*` every assignable function of the slot. */
async function functionsOf(ctx: BuilderContext, domid: number, spec: PciSpec): Promise<PciAddress[]> {
  if (spec.name !== undefined) throw new BuildError('EINVAL', `Domain ${domid}:No BDF known for PCI device name '${spec.name}'`);
  const base = { domain: spec.domain, bus: spec.bus, dev: spec.dev };
  if (spec.func !== '*') return [{ ...base, func: spec.func }];
  if (!spec.vslot) throw new BuildError('EINVAL', `Domain ${domid}:Must specify a v-slot for multi-function devices`);
  const prefix = pciBdfText({ ...base, func: 0 }).slice(0, -1);
  const fns = (await assignableList(ctx.dom0)).filter((b) => b.startsWith(prefix)).map((b) => parseInt(b.slice(-1), 16));
  if (!fns.length) throw new BuildError('EINVAL', `Domain ${domid}:PCI device ${shortBdf({ ...base, func: 0 })} is not assignable`);
  return fns.sort((a, b) => b - a).map((func) => ({ ...base, func }));
}

/** libxl__device_pci_reset: the device's function-level reset through its socket (failures are logged, as libxl's). */
export async function resetPciDevice(ctx: BuilderContext, p: PciAddress): Promise<void> {
  const c = new PciCfgClient(pciCfgSocket(ctx.dom0.rundir, pciBdfText(p)));
  try { await c.reset(); } catch (e) {
    ctx.log(`pci: ${pciBdfText(p)}: reset failed: ${(e as Error).message}`);
  } finally { c.close(); }
}

/** Whose the device is, by libxl's record: a domid, or -1. */
async function recordedOwner(ctx: BuilderContext, p: PciAddress): Promise<number> {
  const v = await ctx.xs.tryRead(`${pciInfoPath(p)}/domid`).catch(() => null);
  if (v === null || !/^\d+$/.test(v)) return -1;
  // A record of a domain that is gone does not hold the device.
  return (await ctx.xs.tryRead(`/local/domain/${v}/domid`).catch(() => null)) === null ? -1 : Number(v);
}

/**
 * libxl__device_pci_add for a PV guest: one device (or every function of a
 * slot) checked, assigned, reset and written under the guest's back end.
 * `starting`: the guest is being built and has not run.
 */
export async function addPciDevice(ctx: BuilderContext, domid: number, spec: PciSpec, starting: boolean,
                                   hvm = false): Promise<PciAddress[]> {
  const added: PciAddress[] = [];
  for (const p of await functionsOf(ctx, domid, spec)) {
    const bdf = pciBdfText(p);
    if (!(await assignableList(ctx.dom0)).includes(bdf)) {
      throw new BuildError('EINVAL', `Domain ${domid}:PCI device ${shortBdf(p)} is not assignable`);
    }
    const t = await testAssignDevice(ctx, domid, p);
    if (t === -XEN_EBUSY) throw new BuildError('EINVAL', `Domain ${domid}:PCI device ${bdf} already assigned to a different guest?`);
    const owner = await recordedOwner(ctx, p);
    if (owner === domid) throw new BuildError('EINVAL', `Domain ${domid}:PCI device ${bdf} already assigned to domain ${owner}`);
    if (owner >= 0) throw new BuildError('EINVAL', `Domain ${domid}:PCI device ${bdf} already assigned to domain ${owner}`);
    await ctx.xs.write(`${pciInfoPath(p)}/domid`, String(domid));
    try {
      await resetPciDevice(ctx, p);
      const r = await assignDevice(ctx, domid, p, spec.rdm_policy === 'relaxed');
      if (assignFailed(r, false)) throw new BuildError('EIO', `Domain ${domid}:xc_assign_device failed: ${errnoName(r)}`);
      const ip = await irqPermission(ctx, domid, p, true);
      if (ip < 0) ctx.log(`pci: d${domid} ${bdf}: xc_domain_irq_permission failed: ${errnoName(ip)}`);
      // An HVM guest's device is qemu-dm's xen_pt, which maps its BARs:
      // the guest may be given the host's frames and ports of them.
      if (hvm) await barPermissions(ctx, domid, p, true);
      else await addPciXenstore(ctx, domid, p, spec, starting);
    } catch (e) {
      await ctx.xs.rm(`${pciInfoPath(p)}/domid`).catch(() => undefined);
      throw e;
    }
    added.push(p);
    ctx.log(`pci: d${domid} ${bdf} attached${starting ? '' : ' (hot-plug)'}`);
  }
  return added;
}

/**
 * pci_add_dm_done's xc_domain_iomem_permission / xc_domain_ioport_permission
 * of each BAR (libxl reads them from sysfs `resource`; here the hypervisor's
 * registry says where the host placed them).
 */
async function barPermissions(ctx: BuilderContext, domid: number, p: PciAddress, allow: boolean): Promise<void> {
  const bdf = pciBdfText(p);
  const entry = (await pciRegistry(ctx.dom0)).devices.find((d) => d.bdf === bdf);
  for (const b of entry?.bars ?? []) {
    const r = b.kind === 'mem'
      ? await ctx.dom0.hv.domctl(XEN_DOMCTL_iomem_permission, { domain: domid, first_mfn: Math.floor(b.addr / 4096), nr_mfns: Math.ceil(b.size / 4096), allow_access: allow ? 1 : 0 })
      : await ctx.dom0.hv.domctl(XEN_DOMCTL_ioport_permission, { domain: domid, first_port: b.addr, nr_ports: b.size, allow_access: allow ? 1 : 0 });
    if (r.ret < 0) throw new BuildError('EIO', `Domain ${domid}:xc_domain_${b.kind === 'mem' ? 'iomem' : 'ioport'}_permission ${bdf} BAR${b.index} failed: ${errnoName(r.ret)}`);
  }
}

/** libxl__device_pci_add_xenstore. */
async function addPciXenstore(ctx: BuilderContext, domid: number, p: PciAddress, spec: PciSpec, starting: boolean): Promise<void> {
  const xs = ctx.xs;
  const be = pciBackendDir(domid);
  const fe = pciFrontendDir(domid);
  const numDevs = await xs.tryRead(`${be}/num_devs`).catch(() => null);
  if (numDevs !== null && !starting) {
    try { await xenbusWaitState(xs, be, [XenbusState.Connected], { timeoutMs: BACKEND_TIMEOUT_MS }); } catch {
      throw new BuildError('EIO', `Domain ${domid}:Backend ${be} not ready`);
    }
  }
  const name = (await xs.tryRead(`/local/domain/${domid}/name`).catch(() => null)) ?? '';
  const bdf = pciBdfText(p);
  await xs.transaction(async (tx) => {
    const cur = await xs.tryRead(`${be}/num_devs`, tx);
    const num = cur === null ? 0 : Number(cur);
    if (cur === null) {
      // libxl__create_pci_backend: both directories and libxl's record.
      await xs.rm(be, tx).catch(() => undefined);
      await xs.mkdir(be, tx);
      await xs.setPerms(be, ['n0', `r${domid}`], tx);
      for (const [k, v] of Object.entries({
        frontend: fe, 'frontend-id': String(domid), online: '1', state: String(XenbusState.Initialising), domain: name,
      })) await xs.write(`${be}/${k}`, v, tx);
      await xs.rm(fe, tx).catch(() => undefined);
      await xs.mkdir(fe, tx);
      await xs.setPerms(fe, [`n${domid}`, 'r0'], tx);
      for (const [k, v] of Object.entries({ backend: be, 'backend-id': '0', state: String(XenbusState.Initialising) })) {
        await xs.write(`${fe}/${k}`, v, tx);
      }
      const lx = deviceLibxlPath(domid, 'pci', 0);
      await xs.write(`${lx}/frontend`, fe, tx);
      await xs.write(`${lx}/backend`, be, tx);
    }
    const vdevfn = (spec.vslot ?? 0) << 3;
    await xs.write(`${be}/key-${num}`, bdf, tx);
    await xs.write(`${be}/dev-${num}`, bdf, tx);
    if (vdevfn) await xs.write(`${be}/vdevfn-${num}`, vdevfn.toString(16), tx);
    await xs.write(`${be}/opts-${num}`, `msitranslate=${spec.msitranslate ? 1 : 0},power_mgmt=${spec.power_mgmt ? 1 : 0},` +
      `permissive=${spec.permissive ? 1 : 0},rdm_policy=${spec.rdm_policy ?? 'strict'}`, tx);
    await xs.write(`${be}/state-${num}`, String(XenbusState.Initialising), tx);
    await xs.write(`${be}/num_devs`, String(num + 1), tx);
    if (num && !starting) await xs.write(`${be}/state`, String(XenbusState.Reconfiguring), tx);
  });
}

/** The index N of `p` among the back end's dev-N, or -1. */
async function findDev(ctx: BuilderContext, domid: number, p: PciAddress): Promise<{ i: number; num: number }> {
  const be = pciBackendDir(domid);
  const num = Number((await ctx.xs.tryRead(`${be}/num_devs`).catch(() => null)) ?? 0);
  const want = pciBdfText(p);
  for (let i = 0; i < num; i++) if ((await ctx.xs.tryRead(`${be}/dev-${i}`).catch(() => null)) === want) return { i, num };
  return { i: -1, num };
}

/**
 * xl pci-detach: libxl__device_pci_remove_xenstore, then the device
 * deassigned, reset and its record removed. `force` (-f) does not wait for
 * the guest to let go (libxl_device_pci_destroy).
 */
export async function removePciDevice(ctx: BuilderContext, domid: number, spec: PciSpec, force: boolean): Promise<void> {
  const fns = await functionsOf(ctx, domid, spec);
  for (const p of fns) {
    if ((await findDev(ctx, domid, p)).i < 0) throw new BuildError('EINVAL', `Domain ${domid}:PCI device not attached to this domain`);
  }
  for (const p of fns) {
    await removePciXenstore(ctx, domid, p, force);
    await releasePciDevice(ctx, domid, p);
  }
}

async function removePciXenstore(ctx: BuilderContext, domid: number, p: PciAddress, force: boolean): Promise<void> {
  const xs = ctx.xs;
  const be = pciBackendDir(domid);
  const wait = async () => {
    if (force) return;
    try { await xenbusWaitState(xs, be, [XenbusState.Connected], { timeoutMs: BACKEND_TIMEOUT_MS }); } catch {
      throw new BuildError('EIO', `Domain ${domid}:pci backend at ${be} is not ready`);
    }
  };
  await wait();
  const { i, num } = await findDev(ctx, domid, p);
  if (i < 0) throw new BuildError('EINVAL', `Domain ${domid}:Couldn't find the device on xenstore`);
  if (!force) {
    await xs.transaction(async (tx) => {
      await xs.write(`${be}/state-${i}`, String(XenbusState.Closing), tx);
      await xs.write(`${be}/state`, String(XenbusState.Reconfiguring), tx);
    });
    await wait();
  }
  if (num === 1) {
    // The last device takes the back end with it (libxl__device_destroy).
    await xs.rm(pciFrontendDir(domid)).catch(() => undefined);
    await xs.rm(be).catch(() => undefined);
    await xs.rm(deviceLibxlPath(domid, 'pci', 0)).catch(() => undefined);
    return;
  }
  await xs.transaction(async (tx) => {
    for (const k of ['state', 'key', 'dev', 'vdev', 'opts', 'vdevfn', 'name']) await xs.rm(`${be}/${k}-${i}`, tx).catch(() => undefined);
    await xs.write(`${be}/num_devs`, String(num - 1), tx);
    for (let j = i + 1; j < num; j++) {
      for (const k of ['state', 'dev', 'key', 'vdev', 'opts', 'vdevfn', 'name']) {
        const v = await xs.tryRead(`${be}/${k}-${j}`, tx);
        if (v === null) continue;
        await xs.write(`${be}/${k}-${j - 1}`, v, tx);
        await xs.rm(`${be}/${k}-${j}`, tx);
      }
    }
  });
}

/** The device back to quarantine: deassigned, reset, libxl's record gone. */
export async function releasePciDevice(ctx: BuilderContext, domid: number, p: PciAddress): Promise<void> {
  await irqPermission(ctx, domid, p, false).catch(() => undefined);
  const r = await deassignDevice(ctx, domid, p);
  if (assignFailed(r, false)) ctx.log(`pci: d${domid} ${pciBdfText(p)}: xc_deassign_device failed: ${errnoName(r)}`);
  await resetPciDevice(ctx, p);
  await ctx.xs.rm(`${pciInfoPath(p)}/domid`).catch(() => undefined);
  ctx.log(`pci: d${domid} ${pciBdfText(p)} detached`);
}

/** libxl_device_pci_list: dev-N and vdevfn-N of the guest's back end. */
export async function listPciDevices(ctx: BuilderContext, domid: number): Promise<PciListEntry[]> {
  const be = pciBackendDir(domid);
  const num = Number((await ctx.xs.tryRead(`${be}/num_devs`).catch(() => null)) ?? 0);
  const out: PciListEntry[] = [];
  for (let i = 0; i < num; i++) {
    const dev = await ctx.xs.tryRead(`${be}/dev-${i}`).catch(() => null);
    const m = dev === null ? null : /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(dev);
    if (!m) continue;
    const vdevfn = parseInt((await ctx.xs.tryRead(`${be}/vdevfn-${i}`).catch(() => null)) ?? '0', 16) || 0;
    out.push({ vdevfn, domain: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), dev: parseInt(m[3]!, 16), func: parseInt(m[4]!, 16) });
  }
  return out;
}

/** libxl__destroy_pcidevs: every device of a dying guest back to quarantine (the back end directory goes with the domain's). */
export async function releaseDomainPciDevices(ctx: BuilderContext, domid: number): Promise<void> {
  for (const p of await listPciDevices(ctx, domid)) await releasePciDevice(ctx, domid, p).catch(() => undefined);
}

