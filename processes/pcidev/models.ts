// The models a host PCI device process can host, behind one shape: a
// PciFunction (configuration space and BARs, shared/hw/pci.ts) built over
// the device's IOMMU (its DMA), a clock and its interrupt line. A function
// level reset builds the model anew (PCIe 6.6.2: every register to its
// default), so nothing of one owner reaches the next.
//
//   e1000   shared/hw/e1000.ts E1000Pci; its cable is a Wire (wire.ts: the TAP xpt<bus>)
//   nvme    shared/hw/nvme_pci.ts NvmePci over a raw disk image (opened
//           once per process, read-write; every reset's model shares it);
//           its MSI-X messages go to the hypervisor as `irq {msi}`
import { existsSync, statSync } from 'node:fs';
import type { Clock, GuestMemory, IrqLines } from '../../shared/hw/machine.js';
import { E1000Pci } from '../../shared/hw/e1000.js';
import { FileBlockBackend } from '../../shared/hw/block.js';
import { NvmePci } from '../../shared/hw/nvme_pci.js';
import type { PciFunction } from '../../shared/hw/pci.js';
import type { PciSpec } from '../../shared/wire/pcidev.js';
import { dropWire, type WireFactory } from './wire.js';

export interface ModelHost {
  mem: GuestMemory; clock: Clock; irq: IrqLines;
  /** A message interrupt (MSI or MSI-X: the address and data the owner programmed). */
  injectMsi(addr: number, data: number): void;
}

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
      let disk: FileBlockBackend | null = null;
      return (host) => {
        disk ??= new FileBlockBackend(image);
        const fn = new NvmePci(host, disk);
        return { fn, dispose: () => { fn.nvme.busMaster = false; fn.nvme.reset(true); } };
      };
    }
  }
}
