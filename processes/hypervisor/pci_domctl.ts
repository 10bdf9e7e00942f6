// The PCI passthrough domctls (xen/drivers/passthrough/pci.c
// iommu_do_pci_domctl, xen/common/domctl.c) over the registry of pci.ts, and
// xenemu's calls behind `xl pci-assignable-*`. Privilege and the target
// domain are the dispatcher's (hypercall.ts); these check what Xen checks:
//
//   assign_device 37        dev not PCI -ENODEV; target Domain-0 (self-assignment), dying,
//                           or flags beyond RDM_RELAXED -EINVAL; no such device -ENODEV;
//                           owned by a guest -EBUSY; still Domain-0's (not assignable) -ENODEV
//   test_assign_device 45   dev not PCI -ENODEV; flags -EINVAL; no such device -ENODEV;
//                           owned by a guest -EBUSY (DOMID_INVALID: by anyone but quarantine)
//   deassign_device 47      no such device -ENODEV; not owned by the target -EINVAL
//   irq/iomem/ioport_permission 19/20/21    recorded, granted or revoked
//   memory_mapping 39 / ioport_mapping 40  -EPERM without the permission; for an HVM target
//                           recorded and published in its HVM segment's passthrough page
//                           (publishPtMappings), which its vCPU routes by; 0 for PV
//   bind_pt_irq 38 / unbind_pt_irq 48      PCI: -EPERM without irq permission; recorded.
//                           MSI: -EPERM unless an MSI pirq of the target's device;
//                           -EINVAL for bad gvec/gflags (domctlBindPtIrq)
import {
  XEN_DOMCTL_DEV_PCI, XEN_DOMCTL_DEV_RDM_RELAXED,
} from '../../shared/abi/domctl.js';
import { DOMID_INVALID } from '../../shared/abi/xen.js';
import { XEN_EBUSY, XEN_EEXIST, XEN_EINVAL, XEN_ENODEV, XEN_ENOENT, XEN_EPERM } from '../../shared/abi/errno.js';
import {
  PT_IRQ_TYPE_MSI, PT_IRQ_TYPE_PCI, XEN_DOMCTL_VMSI_X86_DELIV_MASK, XEN_DOMCTL_VMSI_X86_DEST_ID_MASK, XEN_DOMCTL_VMSI_X86_DM_MASK,
  XEN_DOMCTL_VMSI_X86_RH_MASK, XEN_DOMCTL_VMSI_X86_TRIG_MASK, XEN_DOMCTL_VMSI_X86_UNMASKED,
} from '../../shared/abi/domctl.js';
import { gsiOf, programMsix, syncPtIntx } from './pci_irq.js';
import { formatSbdf, parseBdf, pciIrqSocket } from '../../shared/wire/pcidev.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { PT_KIND_INTX, PT_KIND_MEM, PT_KIND_PORT, writePtMappings, type PtMapping } from '../../shared/abi/hvm/xenemu_hvm.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';
import { ownerName, type HostPciDevice, type PciGrants } from './pci.js';

interface AssignArg { dev?: number; flags?: number; machine_sbdf?: number; domain?: number }

const u32 = (v: unknown): number | null => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff ? (v as number) : null);

function device(hv: Hypervisor, sbdf: unknown): HostPciDevice | null {
  const n = u32(sbdf);
  if (n === null) return null;
  const d = hv.pci.devices.get(n);
  return d && !d.gone ? d : null;
}

const ownedByGuest = (d: HostPciDevice): boolean => d.owner !== null && d.owner !== 0;

export function domctlAssignDevice(hv: Hypervisor, caller: Domain, t: Domain, arg: AssignArg): HcResult {
  if (arg.dev !== XEN_DOMCTL_DEV_PCI) return -XEN_ENODEV;
  if (t === caller || t.domid === 0 || t.dying || t.shutdown) return -XEN_EINVAL;
  if (((u32(arg.flags) ?? -1) & ~XEN_DOMCTL_DEV_RDM_RELAXED) !== 0) return -XEN_EINVAL;
  const d = device(hv, arg.machine_sbdf);
  if (!d) return refuse(hv, `assign ${sbdfText(arg.machine_sbdf)} to d${t.domid}`, -XEN_ENODEV, 'no such device');
  if (ownedByGuest(d)) return refuse(hv, `assign ${d.bdf} to d${t.domid}`, -XEN_EBUSY, `owned by ${ownerName(d.owner)}`);
  if (d.owner === 0) return refuse(hv, `assign ${d.bdf} to d${t.domid}`, -XEN_ENODEV, 'not assignable (Domain-0\'s)');
  hv.pci.setOwner(d, t.domid, 'assign_device');
  publishPtMappings(hv, t);
  return 0;
}

/** Not TARGET: `domain` may be DOMID_INVALID ("could anyone take it?"). */
export function domctlTestAssignDevice(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: AssignArg): HcResult {
  if (arg.dev !== XEN_DOMCTL_DEV_PCI) return -XEN_ENODEV;
  if (arg.flags !== 0) return -XEN_EINVAL;
  const domid = Number(arg.domain ?? DOMID_INVALID);
  if (domid !== DOMID_INVALID) {
    const t = hv.domains.get(domid);
    if (!t) return -XEN_EINVAL;
    if (t === caller || t.domid === 0) return -XEN_EINVAL;
  }
  const d = device(hv, arg.machine_sbdf);
  if (!d) return -XEN_ENODEV;
  if (ownedByGuest(d)) return -XEN_EBUSY;
  if (domid === DOMID_INVALID && d.owner !== null) return -XEN_EBUSY;
  return 0;
}

export function domctlDeassignDevice(hv: Hypervisor, _caller: Domain, t: Domain, arg: AssignArg): HcResult {
  if (arg.dev !== XEN_DOMCTL_DEV_PCI) return -XEN_ENODEV;
  if (arg.flags !== 0) return -XEN_EINVAL;
  const n = u32(arg.machine_sbdf);
  const d = n === null ? undefined : hv.pci.devices.get(n);
  if (!d) return -XEN_ENODEV;
  if (d.owner !== t.domid || t.domid === 0) return refuse(hv, `deassign ${d.bdf} from d${t.domid}`, -XEN_EINVAL, `owned by ${ownerName(d.owner)}`);
  hv.pci.setOwner(d, null, 'deassign_device');
  publishPtMappings(hv, t);
  syncPtIntx(hv, t, gsiOf(d));
  return 0;
}

// ---- xl pci-assignable-add / -remove / -list ----------------------------------

function assignableDevice(hv: Hypervisor, arg: { bdf?: unknown; machine_sbdf?: unknown }): HostPciDevice | null {
  const sbdf = typeof arg.bdf === 'string' ? parseBdf(arg.bdf) : u32(arg.machine_sbdf);
  return sbdf === null ? null : device(hv, sbdf);
}

/** Domain-0 lets go of a device: quarantine, ready for a guest. */
export function pciAssignableAdd(hv: Hypervisor, _caller: Domain, _t: Domain | null, arg: { bdf?: unknown }): HcResult {
  const d = assignableDevice(hv, arg);
  if (!d) return -XEN_ENODEV;
  if (ownedByGuest(d)) return -XEN_EBUSY;
  if (d.owner === 0) hv.pci.setOwner(d, null, 'pci-assignable-add');
  return 0;
}

/** A quarantined device back to Domain-0. */
export function pciAssignableRemove(hv: Hypervisor, _caller: Domain, _t: Domain | null, arg: { bdf?: unknown }): HcResult {
  const d = assignableDevice(hv, arg);
  if (!d) return -XEN_ENODEV;
  if (ownedByGuest(d)) return -XEN_EBUSY;
  if (d.owner === null) hv.pci.setOwner(d, 0, 'pci-assignable-remove');
  return 0;
}

/** Every device with its owner (`quarantine` ones are what xl pci-assignable-list shows). */
export function pciAssignableList(hv: Hypervisor): HcResult {
  // With each device's BARs where the host placed them (what libxl and xen_pt read from sysfs `resource`).
  const bars = (bdf: string) => [...hv.pci.devices.values()].find((d) => d.bdf === bdf)?.hello?.bars ?? [];
  return { ret: 0, data: { devices: hv.pci.records().map((r) => ({ bdf: r.bdf, model: r.model, owner: r.owner, state: r.state, bars: bars(r.bdf) })) } };
}

// ---- permissions and mappings -------------------------------------------------

function setRange(list: { first: number; nr: number }[], first: number, nr: number, allow: boolean): void {
  // Revoking removes what it covers; granting adds the range (overlaps are harmless: a lookup is "any covers").
  for (let i = list.length - 1; i >= 0; i--) {
    const r = list[i]!;
    if (!allow && r.first < first + nr && first < r.first + r.nr) {
      list.splice(i, 1);
      if (r.first < first) list.push({ first: r.first, nr: first - r.first });
      if (r.first + r.nr > first + nr) list.push({ first: first + nr, nr: r.first + r.nr - first - nr });
    }
  }
  if (allow) list.push({ first, nr });
}

/** Every unit of [first, first+nr) is in some granted range. */
function covered(list: { first: number; nr: number }[], first: number, nr: number): boolean {
  let at = first;
  const end = first + nr;
  for (let guard = 0; at < end && guard <= list.length; guard++) {
    const r = list.find((x) => x.first <= at && at < x.first + x.nr);
    if (!r) return false;
    at = r.first + r.nr;
  }
  return at >= end;
}

const grants = (hv: Hypervisor, d: Domain): PciGrants => hv.pci.grantsOf(d.domid);

export function domctlIrqPermission(hv: Hypervisor, _c: Domain, t: Domain, arg: { pirq?: number; allow_access?: number }): HcResult {
  const pirq = u32(arg.pirq);
  if (pirq === null) return -XEN_EINVAL;
  const g = grants(hv, t);
  if (arg.allow_access) g.irqs.add(pirq); else g.irqs.delete(pirq);
  return 0;
}

export function domctlIomemPermission(hv: Hypervisor, _c: Domain, t: Domain,
                                      arg: { first_mfn?: number; nr_mfns?: number; allow_access?: number }): HcResult {
  const first = Number(arg.first_mfn);
  const nr = Number(arg.nr_mfns);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(nr) || first < 0 || nr < 1) return -XEN_EINVAL;
  setRange(grants(hv, t).iomem, first, nr, !!arg.allow_access);
  return 0;
}

export function domctlIoportPermission(hv: Hypervisor, _c: Domain, t: Domain,
                                       arg: { first_port?: number; nr_ports?: number; allow_access?: number }): HcResult {
  const first = u32(arg.first_port);
  const nr = u32(arg.nr_ports);
  if (first === null || nr === null || nr < 1 || first + nr > 0x10000) return -XEN_EINVAL;
  setRange(grants(hv, t).ioports, first, nr, !!arg.allow_access);
  return 0;
}

export function domctlMemoryMapping(hv: Hypervisor, _c: Domain, t: Domain,
                                    arg: { first_gfn?: number; first_mfn?: number; nr_mfns?: number; add_mapping?: number }): HcResult {
  const gfn = Number(arg.first_gfn);
  const mfn = Number(arg.first_mfn);
  const nr = Number(arg.nr_mfns);
  if (![gfn, mfn, nr].every(Number.isSafeInteger) || gfn < 0 || mfn < 0 || nr < 1) return -XEN_EINVAL;
  const g = grants(hv, t);
  if (!covered(g.iomem, mfn, nr)) return refuse(hv, `d${t.domid} memory_mapping mfn 0x${mfn.toString(16)}+${nr}`, -XEN_EPERM, 'no iomem permission');
  // A PV domain maps MMIO through its own page tables: nothing to do (Xen's !paging_mode_translate).
  if (!t.hvm) return 0;
  const list = g.memoryMappings;
  if (arg.add_mapping) list.push({ gfn, mfn, nr });
  else {
    const i = list.findIndex((m) => m.gfn === gfn && m.mfn === mfn && m.nr === nr);
    if (i < 0) return -XEN_ENOENT;
    list.splice(i, 1);
  }
  publishPtMappings(hv, t);
  return 0;
}

/**
 * An HVM domain's p2m entries for host BARs, as its vCPU routes them: each
 * recorded mapping cut into the pieces that fall in a BAR of a device the
 * domain owns (host frames/ports to device, BAR and offset by where the
 * host's firmware placed each BAR), with the device's current key. A piece
 * naming no BAR of the domain's is left out (an access there is unclaimed,
 * as an access to a host frame with no device decoding it).
 */
export function publishPtMappings(hv: Hypervisor, t: Domain): void {
  const h = t.hvmState;
  if (!t.hvm || !h) return;
  const g = hv.pci.grantsOf(t.domid);
  const owned = [...hv.pci.devices.values()].filter((d) => d.owner === t.domid && !d.gone && d.hello);
  const out: PtMapping[] = [];
  const cut = (kind: number, first: number, nr: number, hostFirst: number, unit: number) => {
    for (const d of owned) {
      for (const b of d.hello!.bars) {
        if ((b.kind === 'mem') !== (kind === PT_KIND_MEM)) continue;
        const lo = Math.floor(b.addr / unit);
        const hi = lo + Math.ceil(b.size / unit);
        const from = Math.max(lo, hostFirst);
        const to = Math.min(hi, hostFirst + nr);
        if (from >= to) continue;
        out.push({ kind, first: first + (from - hostFirst), nr: to - from, sbdf: d.sbdf, bar: b.index,
                   barOffset: (from - lo) * unit, key: d.key });
      }
    }
  };
  for (const m of g.memoryMappings) cut(PT_KIND_MEM, m.gfn, m.nr, m.mfn, PAGE_SIZE);
  for (const m of g.ioportMappings) cut(PT_KIND_PORT, m.gport, m.nr, m.mport, 1);
  // bind_pt_irq's pins, each with the devices that drive its machine GSI.
  for (const b of g.ptIrqs) {
    if (b.irq_type !== PT_IRQ_TYPE_PCI) continue;
    for (const d of owned) {
      if (gsiOf(d) === b.machine_irq) out.push({ kind: PT_KIND_INTX, first: b.device * 4 + b.intx, nr: 1, sbdf: d.sbdf, bar: b.machine_irq, barOffset: 0, key: d.key });
    }
  }
  writePtMappings(h.i32, h.dv, out);
  h.kickVcpu();
}

export function domctlIoportMapping(hv: Hypervisor, _c: Domain, t: Domain,
                                    arg: { first_gport?: number; first_mport?: number; nr_ports?: number; add_mapping?: number }): HcResult {
  const gport = u32(arg.first_gport);
  const mport = u32(arg.first_mport);
  const nr = u32(arg.nr_ports);
  if (gport === null || mport === null || nr === null || nr < 1 || gport + nr > 0x10000 || mport + nr > 0x10000) return -XEN_EINVAL;
  const g = grants(hv, t);
  if (!covered(g.ioports, mport, nr)) return refuse(hv, `d${t.domid} ioport_mapping port 0x${mport.toString(16)}+${nr}`, -XEN_EPERM, 'no ioport permission');
  if (!t.hvm) return 0; // PV: its I/O bitmap, not a mapping
  const list = g.ioportMappings;
  if (arg.add_mapping) list.push({ gport, mport, nr });
  else {
    const i = list.findIndex((m) => m.gport === gport && m.mport === mport && m.nr === nr);
    if (i < 0) return -XEN_ENOENT;
    list.splice(i, 1);
  }
  publishPtMappings(hv, t);
  return 0;
}

/** Every gflags bit of xen_domctl_bind_pt_irq's u.msi (domctl.h XEN_DOMCTL_VMSI_X86_*). */
const VMSI_FLAGS = XEN_DOMCTL_VMSI_X86_DEST_ID_MASK | XEN_DOMCTL_VMSI_X86_RH_MASK | XEN_DOMCTL_VMSI_X86_DM_MASK |
  XEN_DOMCTL_VMSI_X86_DELIV_MASK | XEN_DOMCTL_VMSI_X86_TRIG_MASK | XEN_DOMCTL_VMSI_X86_UNMASKED;

/**
 * XEN_DOMCTL_bind_pt_irq (xen/arch/x86/domctl.c, drivers/passthrough/x86/hvm.c
 * pt_irq_create_bind):
 * - PT_IRQ_TYPE_PCI binds a machine GSI to the guest's INTx pin of bus-0
 *   device `device`; the device's line then drives that pin (pci_irq.ts),
 *   and its current level reaches the guest at once. -EPERM without the
 *   GSI's irq permission.
 * - PT_IRQ_TYPE_MSI binds pirq `machine_irq` (PHYSDEVOP_map_pirq of an MSI
 *   of a device the guest owns; -EPERM for any other, as Xen's
 *   domain_pirq_to_irq <= 0) to the guest's vector `gvec` and `gflags`;
 *   bound again, the binding is updated (a new vector, a mask). gflags
 *   with bits outside domctl.h's fields, a delivery mode other than fixed
 *   or lowest priority (the only ones the vCPU's APIC takes from a
 *   message) or a vector below 16 are -EINVAL; a pirq bound as another
 *   type -EBUSY. XEN_DOMCTL_VMSI_X86_UNMASKED unmasks the device's entry,
 *   its absence masks it (xenemu's qemu-dm traps the table, so the
 *   guest's mask bit arrives this way rather than through Xen's msixtbl).
 * A PV target is -EINVAL (!is_hvm_domain) for MSI; other types are recorded.
 */
export function domctlBindPtIrq(hv: Hypervisor, _c: Domain, t: Domain,
                                arg: { machine_irq?: number; irq_type?: number; bus?: number; device?: number; intx?: number;
                                       gvec?: number; gflags?: number }): HcResult {
  const irq = u32(arg.machine_irq);
  const type = u32(arg.irq_type);
  if (irq === null || type === null) return -XEN_EINVAL;
  const g = grants(hv, t);
  if (type === PT_IRQ_TYPE_MSI) return bindMsi(hv, t, g, irq, arg);
  if (!g.irqs.has(irq)) return refuse(hv, `d${t.domid} bind_pt_irq ${irq}`, -XEN_EPERM, 'no irq permission');
  const device = Number(arg.device ?? 0);
  const intx = Number(arg.intx ?? 0);
  if (type === PT_IRQ_TYPE_PCI) {
    if (Number(arg.bus ?? 0) !== 0 || !Number.isInteger(device) || device < 0 || device > 31 || !Number.isInteger(intx) || intx < 0 || intx > 3) {
      return -XEN_EINVAL;
    }
    if (g.ptIrqs.some((b) => b.machine_irq === irq && b.irq_type === type && b.device === device && b.intx === intx)) return -XEN_EEXIST;
  }
  g.ptIrqs.push({ machine_irq: irq, irq_type: type, device, intx });
  if (type === PT_IRQ_TYPE_PCI) { publishPtMappings(hv, t); syncPtIntx(hv, t, irq); }
  return 0;
}

function bindMsi(hv: Hypervisor, t: Domain, g: PciGrants, pirq: number, arg: { gvec?: number; gflags?: number }): HcResult {
  if (!t.hvm) return -XEN_EINVAL;
  const e = t.pirqs.get(pirq);
  const dev = e?.msiSbdf != null ? hv.pci.devices.get(e.msiSbdf) : undefined;
  if (!e || !dev || dev.gone || dev.owner !== t.domid) return refuse(hv, `d${t.domid} bind_pt_irq msi pirq ${pirq}`, -XEN_EPERM, 'not an MSI pirq of its devices');
  const gvec = u32(arg.gvec);
  const gflags = u32(arg.gflags);
  if (gvec === null || gflags === null || gvec < 16 || gvec > 255 || (gflags & ~VMSI_FLAGS) !== 0) return -XEN_EINVAL;
  const deliv = (gflags & XEN_DOMCTL_VMSI_X86_DELIV_MASK) >>> 12;
  if (deliv !== 0 && deliv !== 1) return -XEN_EINVAL;
  if (g.ptIrqs.some((b) => b.machine_irq === pirq && b.irq_type !== PT_IRQ_TYPE_MSI && b.irq_type !== PT_IRQ_TYPE_PCI)) return -XEN_EBUSY;
  const b = g.ptIrqs.find((x) => x.irq_type === PT_IRQ_TYPE_MSI && x.machine_irq === pirq);
  if (b) { b.gvec = gvec; b.gflags = gflags; }
  else g.ptIrqs.push({ machine_irq: pirq, irq_type: PT_IRQ_TYPE_MSI, device: 0, intx: 0, gvec, gflags });
  programMsix(hv, e, (gflags & XEN_DOMCTL_VMSI_X86_UNMASKED) === 0);
  return 0;
}

/**
 * XEN_DOMCTL_unbind_pt_irq: PT_IRQ_TYPE_PCI's pin drops; PT_IRQ_TYPE_MSI's
 * pirq stays mapped, its entry masked (pt_irq_destroy_bind). -EINVAL when
 * nothing is bound so.
 */
export function domctlUnbindPtIrq(hv: Hypervisor, _c: Domain, t: Domain,
                                  arg: { machine_irq?: number; irq_type?: number; device?: number; intx?: number }): HcResult {
  const irq = u32(arg.machine_irq);
  if (irq === null) return -XEN_EINVAL;
  const g = grants(hv, t);
  if (arg.irq_type === PT_IRQ_TYPE_MSI) {
    const e = t.pirqs.get(irq);
    if (!e || e.msiSbdf === null) return -XEN_EPERM;
    const i = g.ptIrqs.findIndex((b) => b.irq_type === PT_IRQ_TYPE_MSI && b.machine_irq === irq);
    if (i < 0) return -XEN_EINVAL;
    g.ptIrqs.splice(i, 1);
    programMsix(hv, e, true);
    return 0;
  }
  if (!g.irqs.has(irq)) return -XEN_EPERM;
  const i = g.ptIrqs.findIndex((b) => b.machine_irq === irq && b.irq_type === arg.irq_type &&
    (arg.irq_type !== PT_IRQ_TYPE_PCI || arg.device === undefined || (b.device === arg.device && b.intx === (arg.intx ?? 0))));
  if (i < 0) return -XEN_EINVAL;
  const [b] = g.ptIrqs.splice(i, 1);
  if (b!.irq_type === PT_IRQ_TYPE_PCI) { publishPtMappings(hv, t); t.hvmState?.irq.setPciIntx(b!.device, b!.intx, 0); }
  return 0;
}

function sbdfText(v: unknown): string {
  const n = u32(v);
  return n === null ? String(v) : formatSbdf(n);
}

function refuse(hv: Hypervisor, what: string, rc: number, why: string): number {
  hv.console.log(`pci: ${what} refused (${why}): ${rc}`);
  return rc;
}

/**
 * XENEMU_PHYSDEVOP_pci_bar_channel: the device's owner, and only it, learns
 * its BAR channel: the segment, its key, its slots and the BARs, and the
 * device's posted-interrupt line (processes/pcidev/irq_socket.ts).
 */
export function physdevPciBarChannel(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { machine_sbdf?: number }): HcResult {
  const n = u32(arg.machine_sbdf);
  const d = n === null ? undefined : hv.pci.devices.get(n);
  if (!d) return -XEN_ENODEV;
  if (d.owner !== caller.domid || caller.domid === 0) return -XEN_EPERM;
  return { ret: 0, data: {
    segment: d.segment, key: d.key, slots: caller.maxVcpus + 1, irqSocket: pciIrqSocket(hv.rundir, d.bdf),
    bars: (d.hello?.bars ?? []).map((b) => ({ index: b.index, kind: b.kind, size: b.size })),
  } };
}
