// MSI and MSI-X for a PV guest's device (Linux xen-pciback pciback_ops.c
// xen_pcibk_enable_msi/_msix): Domain-0 asks the hypervisor for a pirq per
// vector with PHYSDEVOP_map_pirq (xen/physdev.h, MAP_PIRQ_TYPE_MSI_SEG with
// the device's segment:bus and devfn, the guest as domid) and pcifront hands
// the pirqs to the guest's driver, which binds them with EVTCHNOP_bind_pirq.
// A hypervisor without PHYSDEVOP_map_pirq answers ENOSYS; pcifront then gets
// XEN_PCI_ERR_not_implemented, and the device keeps INTx. MSI-X is switched
// on and off in the device's message control here, as Domain-0's
// pci_enable_msix does; a device without the capability is refused
// (op_failed, Linux's -EINVAL).
import { __HYPERVISOR_physdev_op } from '../../../shared/abi/xen.js';
import type { XenDomain } from '../../../shared/xen/index.js';
import type { ConfigSpace } from './conf_space.js';

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

const PCI_CAPABILITY_LIST = 0x34;
const PCI_CAP_ID_MSIX = 0x11;
const PCI_MSIX_FLAGS_ENABLE = 0x8000;

/** Where the device's MSI-X capability is (PCI 3.0 6.7: the capability list), or 0. */
export async function msixCapability(dev: ConfigSpace): Promise<number> {
  let cap = (await dev.read(PCI_CAPABILITY_LIST, 1)) & 0xfc;
  // 48 capabilities at most fit in 256 bytes: a loop in the list ends here.
  for (let n = 0; cap >= 0x40 && n < 48; n++) {
    if ((await dev.read(cap, 1)) === PCI_CAP_ID_MSIX) return cap;
    cap = (await dev.read(cap + 1, 1)) & 0xfc;
  }
  return 0;
}

/** pci_msix_clear_and_set_ctrl: MSI-X on or off in the device's own message control (Domain-0 writes it, not the guest). */
export async function setMsixEnable(dev: ConfigSpace, cap: number, on: boolean): Promise<void> {
  const ctl = await dev.read(cap + 2, 2);
  await dev.write(cap + 2, 2, on ? ctl | PCI_MSIX_FLAGS_ENABLE : ctl & ~PCI_MSIX_FLAGS_ENABLE);
}
