// A host PCI device's interrupts, to a PV owner (docs/passthrough.md
// "Interrupts"; xen/arch/x86/physdev.c, irq.c, common/event_channel.c).
//
//   device `irq {intx: 1}` ─> owner's pirq of the device's GSI, bound to a port?
//                              not in flight: set the port pending, in flight (masked)
//   PHYSDEVOP_eoi(pirq)    ─> not in flight; the line still high: deliver again
//   device `irq {msi}`     ─> owner's pirq mapped for the device's MSI whose number is the
//                              message's data (else each of them): set pending (edge)
//   posted MSI             ─> the device sets the port pending itself, for the pirqs the
//                              hypervisor wrote into its posted-interrupt table (publishPosted:
//                              an MSI pirq of the device bound to a port of its PV owner), and
//                              kicks the owner on its own line; `irq {upcall}` when it could not
//
// PHYSDEVOP_map_pirq maps for a domain (DOMID_SELF or, for Domain-0, a
// guest): MAP_PIRQ_TYPE_GSI with `index` the GSI, which the domain must be
// allowed (XEN_DOMCTL_irq_permission; Domain-0 holds every line);
// MAP_PIRQ_TYPE_MSI(_SEG) with bus (segment in the high 16 bits for _SEG)
// and devfn naming a device the domain owns. `pirq` < 0 asks for a free one.
// A device owned by Domain-0 or quarantined interrupts no one.
//
// An HVM owner's qemu-dm binds the device's GSI to the guest's INTx pin with
// XEN_DOMCTL_bind_pt_irq (PT_IRQ_TYPE_PCI): the device's line then drives
// that pin in the guest's HVM segment (set_pci_intx_level's path), level for
// level. Xen masks the machine line and re-arms it at the guest's EOI; here
// the line itself is mirrored. The message that lowers it arrives late, so
// the binding is also in the passthrough page (pci_domctl.ts
// publishPtMappings) and the guest's vCPU takes the pin only while the
// device still drives its line in its BAR channel: a handler that quietened
// the device sees the pin drop with that access (no storm of unhandled
// interrupts), one that did not sees it still high after its EOI (the
// 8259's level mode, ELCR): no lost interrupt.
//
// An HVM owner's MSI-X (xen/drivers/passthrough/x86/hvm.c, arch/x86/hvm/vmsi.c):
//   qemu-dm  PHYSDEVOP_map_pirq(guest, MAP_PIRQ_TYPE_MSI, entry_nr) ─> a pirq; the
//            hypervisor programs the device's table entry: the pirq as data, masked
//   qemu-dm  XEN_DOMCTL_bind_pt_irq(PT_IRQ_TYPE_MSI, pirq, gvec, gflags) ─> the
//            binding; the entry unmasked with XEN_DOMCTL_VMSI_X86_UNMASKED, else masked
//   device   `irq {msi}` naming the pirq ─> gvec into the guest's local APIC
//            (the HVM segment's msi_pending latch, the vCPU's IRR)
import { MAP_PIRQ_TYPE_GSI, MAP_PIRQ_TYPE_MSI, MAP_PIRQ_TYPE_MSI_SEG } from '../../shared/abi/physdev.js';
import { XEN_EBUSY, XEN_EINVAL, XEN_ENODEV, XEN_ENOSPC, XEN_EPERM } from '../../shared/abi/errno.js';
import { hostGsiOfBus } from '../../shared/wire/pcidev.js';
import { MSI_ADDR_BASE } from '../../shared/hw/pci.js';
import { setPending } from './event_channel.js';
import { PT_IRQ_TYPE_MSI, PT_IRQ_TYPE_PCI } from '../../shared/abi/domctl.js';
import type { Domain, PirqEntry } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';
import type { HostPciDevice, PciGrants } from './pci.js';
import type { PostedBinding } from '../../shared/hw/posted_irq.js';

/** Xen's nr_pirqs for a PV domain of this size is larger; 256 covers every GSI and MSI of the host's devices. */
export const NR_PIRQS = 256;
/** The IOAPIC's GSIs a host has: 16 ISA lines and the PCI ones above. */
const NR_GSIS = 48;

export const gsiOf = (d: HostPciDevice): number => hostGsiOfBus((d.sbdf >> 8) & 0xff);

/** Delivers pirq `e` of `d` unless it waits for its EOI. */
function fire(hv: Hypervisor, d: Domain, e: PirqEntry, level: boolean): void {
  if (!e.port || (level && e.inFlight)) return;
  if (level) e.inFlight = true;
  setPending(hv, d, e.port, d.ports[e.port]?.notifyVcpu ?? 0);
}

/** The guest pins bound to machine `gsi` of HVM domain `t` follow the lines of t's devices on it. */
export function syncPtIntx(hv: Hypervisor, t: Domain, gsi: number): void {
  const h = t.hvmState;
  if (!t.hvm || !h) return;
  let level: 0 | 1 = 0;
  for (const dev of hv.pci.devices.values()) if (dev.owner === t.domid && !dev.gone && gsiOf(dev) === gsi && dev.intx) level = 1;
  for (const b of hv.pci.grantsOf(t.domid).ptIrqs) {
    if (b.irq_type === PT_IRQ_TYPE_PCI && b.machine_irq === gsi) h.irq.setPciIntx(b.device, b.intx, level);
  }
}

/**
 * Rewrites `dev`'s posted-interrupt table (shared/hw/posted_irq.ts) from its
 * owner's bindings: each MSI pirq of the device bound to a port of a PV
 * owner that the owner's shared_info takes (not a Domain-0 program's
 * /dev/xen/evtchn port). Called at every change of those bindings and of
 * owner, before the hypercall or domctl returns, so a port closed or a
 * device taken away is never posted to after.
 */
export function publishPosted(hv: { domains: Map<number, Domain> }, dev: HostPciDevice): void {
  const o = dev.owner !== null && dev.owner !== 0 ? hv.domains.get(dev.owner) : undefined;
  const out: PostedBinding[] = [];
  if (o && !o.hvm && !o.dying) {
    for (const e of o.pirqs.values()) {
      const c = e.port ? o.ports[e.port] : undefined;
      if (e.msiSbdf === dev.sbdf && c && c.state === 'pirq' && !c.user) out.push({ pirq: e.pirq, port: e.port, vcpu: c.notifyVcpu });
    }
  }
  dev.posted.publish(out);
}

export function pciIrq(hv: Hypervisor, dev: HostPciDevice, m: { intx?: 0 | 1; msi?: { addr: number; data: number }; upcall?: number }): void {
  const o = dev.owner !== null && dev.owner !== 0 ? hv.domains.get(dev.owner) : undefined;
  if (m.upcall !== undefined) {
    // A posted MSI set upcall_pending and the device's line to the owner broke: the upcall it could not send.
    if (o && !o.hvm && !o.dying && Number.isInteger(m.upcall) && m.upcall >= 0 && m.upcall < o.maxVcpus) hv.kick(o, m.upcall);
    return;
  }
  if (m.intx !== undefined) {
    dev.intx = m.intx;
    if (o?.hvm) { syncPtIntx(hv, o, gsiOf(dev)); return; }
    if (!o || m.intx === 0) return;
    const gsi = gsiOf(dev);
    for (const e of o.pirqs.values()) if (e.gsi === gsi) fire(hv, o, e, true);
  }
  if (m.msi && o?.hvm) {
    // The machine message names the pirq the hypervisor programmed; its
    // binding (bind_pt_irq) names the guest's vector. Unbound: dropped, as
    // Xen's pirq with no guest binding is masked.
    const e = o.pirqs.get(m.msi.data);
    if (!e || e.msiSbdf !== dev.sbdf) return;
    const b = msiBinding(hv, o, e.pirq);
    if (b && b.gvec !== undefined) o.hvmState?.irq.injectMsi(b.gvec);
    return;
  }
  if (m.msi && o) {
    // The message's data names its pirq (pcifront programs each MSI-X entry
    // so, as Xen's own programming names the vector behind one): only that
    // pirq fires. Data naming none of the device's fires each of them.
    const named = o.pirqs.get(m.msi.data);
    if (named && named.msiSbdf === dev.sbdf) { fire(hv, o, named, false); return; }
    for (const e of o.pirqs.values()) if (e.msiSbdf === dev.sbdf) fire(hv, o, e, false);
  }
}

/** The MSI binding (bind_pt_irq PT_IRQ_TYPE_MSI) of pirq `pirq` of HVM domain `t`, if any. */
export function msiBinding(hv: Hypervisor, t: Domain, pirq: number): PciGrants['ptIrqs'][number] | undefined {
  return hv.pci.grantsOf(t.domid).ptIrqs.find((b) => b.irq_type === PT_IRQ_TYPE_MSI && b.machine_irq === pirq);
}


/**
 * Programs the device's MSI-X table entry behind pirq `e` of HVM domain
 * `t`: the pirq as data, masked or not (Xen's write_msi_msg and
 * guest_mask_msi_irq; here a message to the device process).
 */
export function programMsix(hv: Hypervisor, e: PirqEntry, masked: boolean): void {
  const dev = e.msiSbdf === null ? undefined : hv.pci.devices.get(e.msiSbdf);
  if (!dev || dev.gone) return;
  dev.send({ type: 'msix', entry: e.msiEntry ?? 0, addr: MSI_ADDR_BASE, data: e.pirq, masked });
}

function freePirq(d: Domain, from: number): number {
  for (let p = from; p < NR_PIRQS; p++) if (!d.pirqs.has(p)) return p;
  return -XEN_ENOSPC;
}

interface MapPirqArg { domid?: number; type?: number; index?: number; pirq?: number; bus?: number; devfn?: number; entry_nr?: number }

/** PHYSDEVOP_map_pirq: `data.pirq` the pirq mapped. */
export function physdevMapPirq(hv: Hypervisor, caller: Domain, t: Domain, arg: MapPirqArg): HcResult {
  // An HVM owner's INTx is bound with bind_pt_irq; its MSIs are mapped by its
  // device model (qemu-dm's xen_pt_msi_setup), not by the guest itself.
  if (t.hvm && (caller === t || (arg.type !== MAP_PIRQ_TYPE_MSI && arg.type !== MAP_PIRQ_TYPE_MSI_SEG))) return -XEN_EINVAL;
  const want = Number(arg.pirq ?? -1);
  if (!Number.isInteger(want) || want >= NR_PIRQS) return -XEN_EINVAL;
  let entry: PirqEntry;
  if (arg.type === MAP_PIRQ_TYPE_GSI) {
    const gsi = Number(arg.index);
    if (!Number.isInteger(gsi) || gsi < 0 || gsi >= NR_GSIS) return -XEN_EINVAL;
    if (t.domid !== 0 && !hv.pci.grantsOf(t.domid).irqs.has(gsi)) return -XEN_EPERM;
    for (const e of t.pirqs.values()) if (e.gsi === gsi) return { ret: 0, data: { pirq: e.pirq } }; // mapped already
    entry = { pirq: 0, gsi, msiSbdf: null, port: 0, inFlight: false };
    // A GSI's pirq is the GSI itself when free, as Xen gives a PV domain.
    const p = want >= 0 ? want : !t.pirqs.has(gsi) ? gsi : freePirq(t, 16);
    if (p < 0) return p;
    entry.pirq = p;
  } else if (arg.type === MAP_PIRQ_TYPE_MSI || arg.type === MAP_PIRQ_TYPE_MSI_SEG) {
    const bus = Number(arg.bus);
    const devfn = Number(arg.devfn);
    if (!Number.isInteger(bus) || !Number.isInteger(devfn) || devfn < 0 || devfn > 0xff) return -XEN_EINVAL;
    const seg = arg.type === MAP_PIRQ_TYPE_MSI_SEG ? (bus >>> 16) & 0xffff : 0;
    const sbdf = ((seg << 16) | ((bus & 0xff) << 8) | devfn) >>> 0;
    const dev = hv.pci.devices.get(sbdf);
    if (!dev || dev.gone) return -XEN_ENODEV;
    if (dev.owner !== t.domid) return -XEN_EPERM;
    const p = want >= 0 ? want : freePirq(t, NR_GSIS);
    if (p < 0) return p;
    if (t.hvm) {
      // One pirq per MSI-X entry: asked again, the same (QEMU maps an entry once).
      const entryNr = Number(arg.entry_nr ?? 0);
      if (!Number.isInteger(entryNr) || entryNr < 0 || entryNr > 2047) return -XEN_EINVAL;
      for (const e of t.pirqs.values()) if (e.msiSbdf === sbdf && e.msiEntry === entryNr) return { ret: 0, data: { pirq: e.pirq } };
      entry = { pirq: p, gsi: null, msiSbdf: sbdf, port: 0, inFlight: false, msiEntry: entryNr };
      if (t.pirqs.has(entry.pirq)) return -XEN_EBUSY;
      t.pirqs.set(entry.pirq, entry);
      programMsix(hv, entry, true);
      return { ret: 0, data: { pirq: entry.pirq } };
    }
    entry = { pirq: p, gsi: null, msiSbdf: sbdf, port: 0, inFlight: false };
  } else {
    return -XEN_EINVAL;
  }
  if (t.pirqs.has(entry.pirq)) return -XEN_EBUSY;
  t.pirqs.set(entry.pirq, entry);
  return { ret: 0, data: { pirq: entry.pirq } };
}

/** PHYSDEVOP_unmap_pirq: the pirq goes; a port bound to it stays but hears nothing more (Xen's forced unbind). */
export function physdevUnmapPirq(hv: Hypervisor, _caller: Domain, t: Domain, arg: { pirq?: number }): HcResult {
  const e = t.pirqs.get(Number(arg.pirq));
  if (!e) return -XEN_EINVAL;
  t.pirqs.delete(e.pirq);
  if (t.hvm && e.msiSbdf !== null) {
    // Its binding goes with it (Xen's unmap_domain_pirq of a bound pirq), the entry masked.
    const g = hv.pci.grantsOf(t.domid);
    const i = g.ptIrqs.findIndex((b) => b.irq_type === PT_IRQ_TYPE_MSI && b.machine_irq === e.pirq);
    if (i >= 0) g.ptIrqs.splice(i, 1);
    programMsix(hv, e, true);
  }
  hv.pci.pirqsChanged(t);
  return 0;
}

/** PHYSDEVOP_eoi: the level line's pirq may fire again; it does at once when the line is still high. */
export function physdevEoi(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { irq?: number }): HcResult {
  const e = caller.pirqs.get(Number(arg.irq));
  if (!e) return -XEN_EINVAL;
  e.inFlight = false;
  if (e.gsi !== null) {
    for (const dev of hv.pci.devices.values()) {
      if (dev.owner === caller.domid && gsiOf(dev) === e.gsi && dev.intx === 1) fire(hv, caller, e, true);
    }
  }
  return 0;
}
