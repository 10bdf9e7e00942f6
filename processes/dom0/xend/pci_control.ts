// `xl pci-assignable-add / -remove / -list` (tools/xl/xl_pci.c over
// libxl_pci.c): on Xen, libxl unbinds the device from its Domain-0 driver,
// binds it to pciback and quarantines it (xc_assign_device to DOMID_IO);
// on xenemu the hypervisor holds the device's owner, so these are its
// XENEMU_DOMCTL_pci_assignable_* calls, with libxl's messages when they fail.
import { XENEMU_DOMCTL_pci_assignable_add, XENEMU_DOMCTL_pci_assignable_remove } from '../../../shared/abi/domctl.js';
import { XEN_ENODEV } from '../../../shared/abi/errno.js';
import type { XenDomain } from '../../../shared/xen/index.js';
import { ToolstackError } from './toolstack.js';
import { assignableFrom, pciRegistry } from '../toolstack/pci_assign.js';

export class XenPciControl {
  constructor(private readonly dom0: XenDomain) {}

  async assignableAdd(bdf: string): Promise<void> {
    const r = await this.dom0.hv.domctl(XENEMU_DOMCTL_pci_assignable_add, { bdf });
    if (r.ret === -XEN_ENODEV) {
      throw new ToolstackError('EINVAL', `libxl: error: libxl_pci.c: libxl__device_pci_assignable_add: Couldn't lstat /sys/bus/pci/devices/${bdf}: No such file or directory`);
    }
    if (r.ret < 0) throw new ToolstackError('EBUSY', `libxl: error: libxl_pci.c: libxl__device_pci_assignable_add: failed to quarantine ${bdf}`);
  }

  async assignableRemove(bdf: string): Promise<void> {
    const r = await this.dom0.hv.domctl(XENEMU_DOMCTL_pci_assignable_remove, { bdf });
    if (r.ret < 0) throw new ToolstackError(r.ret === -XEN_ENODEV ? 'EINVAL' : 'EBUSY', `libxl: error: libxl_pci.c: libxl__device_pci_assignable_remove: failed to de-quarantine ${bdf}`);
  }

  /** The BDFs in quarantine: what pciback holds, ready for a guest. */
  async assignableList(): Promise<string[]> {
    const r = await pciRegistry(this.dom0);
    if (r.ret < 0) throw new ToolstackError('EIO', `libxl: error: libxl_pci.c: libxl_device_pci_assignable_list: ${r.ret}`);
    return assignableFrom(r.devices);
  }
}
