// The network functions on pcifront's buses as interfaces: each 82540EM
// (8086:100e) is probed by the e1000 driver (e1000.ts) and joins the
// kernel's interfaces (net/interfaces.ts) under the next free eth<N>, down
// and without an address until ifconfig; at pcifront's connect and at every
// change of its buses (hot-plug). A function that goes (unplug, or the bus
// with it) takes its interface with it.
import type { NetInterfaces } from '../net/interfaces.js';
import { E1000Driver, E1000_DEVICES, E1000_VENDOR } from './e1000.js';
import type { Pcifront } from './pcifront.js';

export class PciNics {
  private readonly drivers = new Map<string, E1000Driver>();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly net: NetInterfaces, private readonly log: (m: string) => void) {}

  /** Probes `front`'s NICs now and after each change of its buses. */
  follow(front: Pcifront): void {
    const sync = () => { this.chain = this.chain.then(() => this.sync(front)); };
    const prev = front.onChange;
    front.onChange = () => { prev?.(); sync(); };
    const gone = front.onGone;
    front.onGone = () => { gone?.(); sync(); };
    sync();
  }

  /** Resolves once every probe asked so far is done. */
  settled(): Promise<void> { return this.chain; }

  private async sync(front: Pcifront): Promise<void> {
    for (const [bdf, d] of [...this.drivers]) {
      if (front.devices.has(bdf) && front.state === 'connected') continue;
      this.drivers.delete(bdf);
      d.gone();
    }
    for (const [bdf, dev] of front.devices) {
      if (this.drivers.has(bdf) || dev.info.vendor !== E1000_VENDOR || !E1000_DEVICES.has(dev.info.device)) continue;
      try {
        const d = await E1000Driver.probe(dev, { name: this.net.nextName(), log: this.log });
        this.drivers.set(bdf, d);
        this.net.addDevice(d, this.log);
        this.log(`e1000 ${bdf} ${d.name}: Intel(R) PRO/1000 Network Connection`);
      } catch (e) {
        this.log(`e1000 ${bdf}: probe failed: ${(e as Error).message}`);
      }
    }
  }
}
