// MSI and MSI-X for a PV guest's device (Linux xen-pciback pciback_ops.c
// xen_pcibk_enable_msi/_msix): Domain-0 asks the hypervisor for a pirq per
// vector with PHYSDEVOP_map_pirq (xen/physdev.h, MAP_PIRQ_TYPE_MSI_SEG with
// the device's segment:bus and devfn, the guest as domid) and pcifront hands
// the pirqs to the guest's driver, which binds them with EVTCHNOP_bind_pirq.
// A hypervisor without PHYSDEVOP_map_pirq answers ENOSYS; pcifront then gets
// XEN_PCI_ERR_not_implemented, and the device keeps INTx.
import { __HYPERVISOR_physdev_op } from '../../../shared/abi/xen.js';
import type { XenDomain } from '../../../shared/xen/index.js';

export const PHYSDEVOP_map_pirq = 13;
export const PHYSDEVOP_unmap_pirq = 14;
export const MAP_PIRQ_TYPE_MSI_SEG = 0x3;

/** struct physdev_map_pirq (xen/physdev.h), as the hypercall message carries it. */
export interface PhysdevMapPirq {
  domid: number; type: number; index: number; pirq: number; bus: number; devfn: number; entry_nr: number; table_base: number;
}

export interface MachineDevice { domain: number; bus: number; devfn: number }

/** One pirq for MSI (entry -1) or MSI-X entry `entry`: the pirq, or a negative Xen errno. */
export async function mapMsiPirq(dom0: XenDomain, domid: number, dev: MachineDevice, entry: number): Promise<number> {
  const arg: PhysdevMapPirq = {
    domid, type: MAP_PIRQ_TYPE_MSI_SEG, index: -1, pirq: -1, bus: ((dev.domain << 16) | dev.bus) >>> 0, devfn: dev.devfn,
    entry_nr: entry < 0 ? 0 : entry, table_base: 0,
  };
  const r = await dom0.hv.hypercall<{ pirq: number }>(__HYPERVISOR_physdev_op, PHYSDEVOP_map_pirq, arg);
  if (r.ret < 0) return r.ret;
  return r.data?.pirq ?? r.ret;
}

export async function unmapPirq(dom0: XenDomain, domid: number, pirq: number): Promise<number> {
  return (await dom0.hv.hypercall(__HYPERVISOR_physdev_op, PHYSDEVOP_unmap_pirq, { domid, pirq })).ret;
}
