// The network functions on pcifront's buses as interfaces: each 82540EM
// (8086:100e) is probed by the e1000 driver (e1000.ts) and joins the
// kernel's interfaces (net/interfaces.ts) under the next free eth<N>, down
// and without an address until ifconfig (pci_bind.ts: at pcifront's connect
// and at every change of its buses). A function that goes takes its
// interface with it.
import type { NetInterfaces } from '../net/interfaces.js';
import { E1000Driver, E1000_DEVICES, E1000_VENDOR } from './e1000.js';
import { PciDriverBinding } from './pci_bind.js';

export function pciNics(net: NetInterfaces, log: (m: string) => void): PciDriverBinding<E1000Driver> {
  return new PciDriverBinding<E1000Driver>({
    name: 'e1000',
    matches: (dev) => dev.info.vendor === E1000_VENDOR && E1000_DEVICES.has(dev.info.device),
    async probe(bdf, dev) {
      const d = await E1000Driver.probe(dev, { name: net.nextName(), log });
      net.addDevice(d, log);
      log(`e1000 ${bdf} ${d.name}: Intel(R) PRO/1000 Network Connection`);
      return d;
    },
    remove: (_bdf, d) => d.gone(),
  }, log);
}
