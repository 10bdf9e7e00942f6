// The models a host PCI device process can host, behind one shape: a
// PciFunction (configuration space and BARs, shared/hw/pci.ts) built over
// the device's IOMMU (its DMA), a clock and its interrupt line. A function
// level reset builds the model anew (PCIe 6.6.2: every register to its
// default), so nothing of one owner reaches the next.
//
//   e1000   shared/hw/e1000.ts E1000Pci; its cable is a NetBackend (wire.ts)
//   nvme    a disk image; the NVMe controller model (shared/hw/nvme.ts,
//           NvmePci) is not in this tree yet: until it is, the function has
//           the NVMe identity and a BAR0 that reads zero (NvmePending below
//           is the seam to replace)
import { existsSync, statSync } from 'node:fs';
import type { Clock, GuestMemory, IrqLines } from '../../shared/hw/machine.js';
import { E1000Pci } from '../../shared/hw/e1000.js';
import { PciFunction } from '../../shared/hw/pci.js';
import type { PciSpec } from '../../shared/wire/pcidev.js';
import { dropWire, type WireFactory } from './wire.js';

export interface ModelHost { mem: GuestMemory; clock: Clock; irq: IrqLines }

export interface HostedModel {
  fn: PciFunction;
  /** Stops its timers and lets go of its back end (before an FLR builds the next one). */
  dispose(): void;
}

export type ModelFactory = (host: ModelHost) => HostedModel;

/** A MAC for the e1000 at bus `bus`: xenemu's host NICs, 02:58:45:00:<bus>:00 (locally administered). */
export function hostNicMac(bus: number): string {
  return `02:58:45:00:${bus.toString(16).padStart(2, '0')}:00`;
}

/** The factory of `spec`'s model, or the reason it cannot be hosted. */
export function modelFactory(spec: PciSpec, bus: number, wire: WireFactory = dropWire): ModelFactory | string {
  switch (spec.model) {
    case 'e1000':
      return (host) => {
        const w = wire();
        const fn = new E1000Pci(host, w, { mac: hostNicMac(bus) });
        return { fn, dispose: () => { fn.nic.busMaster = false; w.close(); } };
      };
    case 'nvme': {
      const image = spec.image ?? '';
      if (!existsSync(image) || !statSync(image).isFile()) return `nvme: no disk image ${image}`;
      return () => ({ fn: new NvmePending(), dispose: () => {} });
    }
  }
}

/**
 * The NVMe function until shared/hw/nvme.ts's NvmePci is hosted here: QEMU's
 * NVMe identity (1b36:0010, class 01:08:02), BAR0 16 KiB reading zero.
 */
class NvmePending extends PciFunction {
  constructor() {
    super('nvme', { vendor: 0x1b36, device: 0x0010, classCode: 0x010802, revision: 0x02, subVendor: 0x1af4, subDevice: 0x1100, interruptPin: 1 });
    this.addBar(0, { kind: 'mem', size: 0x4000, name: 'nvme registers (not modelled yet)', handler: { read: () => 0, write: () => {} } });
  }
}
