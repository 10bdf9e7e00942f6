// The NVMe functions on pcifront's buses as disks: each device of class
// 0x010802 is probed by the NVMe driver (nvme.ts, registerNvme) and its
// namespace joins the kernel's disks as nvme<N>n1, at pcifront's connect and
// at every change of its buses (hot-plug). A function that goes (unplug, or
// the bus with it) takes its disk out of the list.
import type { BlockDevices } from './blkdev.js';
import { registerNvme, type NvmeDriver } from './nvme.js';
import type { Pcifront } from './pcifront.js';

const PCI_CLASS_STORAGE_EXPRESS = 0x010802;

export class PciNvmeDisks {
  private readonly drivers = new Map<string, NvmeDriver>();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly disks: BlockDevices, private readonly log: (m: string) => void) {}

  /** Probes `front`'s NVMe functions now and after each change of its buses. */
  follow(front: Pcifront): void {
    const sync = () => { this.chain = this.chain.then(() => this.sync(front)); };
    const prev = front.onChange;
    front.onChange = () => { prev?.(); sync(); };
    const gone = front.onGone;
    front.onGone = () => { gone?.(); sync(); };
    sync();
  }

  private async sync(front: Pcifront): Promise<void> {
    for (const [bdf, d] of [...this.drivers]) {
      if (front.devices.has(bdf) && front.state === 'connected') continue;
      this.drivers.delete(bdf);
      this.disks.unregister(d);
      this.log(`nvme ${bdf}: removed ${d.name}`);
    }
    for (const [bdf, dev] of front.devices) {
      if (this.drivers.has(bdf) || dev.info.classCode !== PCI_CLASS_STORAGE_EXPRESS) continue;
      try {
        this.drivers.set(bdf, await registerNvme(this.disks, dev, { log: this.log }));
      } catch (e) {
        this.log(`nvme ${bdf}: probe failed: ${(e as Error).message}`);
      }
    }
  }
}
