// A PV kernel's driver binding on pcifront's buses: every function a driver
// matches is probed at pcifront's connect and at every change of its buses
// (hot-plug); a function that goes (unplug, or the bus with it) is removed
// from the driver. One probe or removal at a time, in order.
import type { PcifrontDevice, Pcifront } from './pcifront.js';

export interface PciDriverOps<D> {
  matches(dev: PcifrontDevice): boolean;
  /** Binds the function; throws when the probe fails (logged, not bound). */
  probe(bdf: string, dev: PcifrontDevice): Promise<D>;
  remove(bdf: string, d: D): void;
  /** The driver's name in the kernel's log. */
  name: string;
}

export class PciDriverBinding<D> {
  private readonly drivers = new Map<string, D>();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly ops: PciDriverOps<D>, private readonly log: (m: string) => void) {}

  /** Probes `front`'s functions now and after each change of its buses. */
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
      this.ops.remove(bdf, d);
    }
    for (const [bdf, dev] of front.devices) {
      if (this.drivers.has(bdf) || !this.ops.matches(dev)) continue;
      try {
        this.drivers.set(bdf, await this.ops.probe(bdf, dev));
      } catch (e) {
        this.log(`${this.ops.name} ${bdf}: probe failed: ${(e as Error).message}`);
      }
    }
  }
}
