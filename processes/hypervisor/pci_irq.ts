// A host PCI device's interrupts, to its owner (docs/passthrough.md
// "Interrupts"). A device owned by Domain-0 or quarantined interrupts no one.
import type { Hypervisor } from './hypervisor.js';
import type { HostPciDevice } from './pci.js';

export function pciIrq(_hv: Hypervisor, dev: HostPciDevice, m: { intx?: 0 | 1; msi?: { addr: number; data: number } }): void {
  if (m.intx !== undefined) dev.intx = m.intx;
}
