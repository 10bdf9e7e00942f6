// The NVMe functions on pcifront's buses as disks: each device of class
// 0x010802 is probed by the NVMe driver (nvme.ts, registerNvme) and its
// namespace joins the kernel's disks as nvme<N>n1 (pci_bind.ts: at
// pcifront's connect and at every change of its buses). A function that
// goes takes its disk out of the list.
import type { BlockDevices } from './blkdev.js';
import { registerNvme, type NvmeDriver } from './nvme.js';
import { PciDriverBinding } from './pci_bind.js';

const PCI_CLASS_STORAGE_EXPRESS = 0x010802;

export function pciNvmeDisks(disks: BlockDevices, log: (m: string) => void): PciDriverBinding<NvmeDriver> {
  return new PciDriverBinding<NvmeDriver>({
    name: 'nvme',
    matches: (dev) => dev.info.classCode === PCI_CLASS_STORAGE_EXPRESS,
    probe: (_bdf, dev) => registerNvme(disks, dev, { log }),
    remove(bdf, d) {
      disks.unregister(d);
      log(`nvme ${bdf}: removed ${d.name}`);
    },
  }, log);
}
