// The guest's network interfaces: one NetStack per connected netfront,
// configured from the toolstack's vif settings, and one per NIC a driver of
// a passed-through PCI function brought (drivers/pci_net.ts), down and
// without an address until `ifconfig ethN ADDR netmask M up`. A NIC is
// named as Linux's register_netdev names it: the lowest eth<N> free, the
// vifs the domain was created with counted as taken (their netfront is
// eth<devid>).
//
// Address: the `ip` key of the vif's backend directory (xl.cfg `vif =
// ['ip=10.0.0.5/24']`; xl's ip= is an address, a /prefix is accepted, /24
// otherwise); without it, eth<n> of domain <d> takes 10.0.<n>.<d>/24, so the
// first interfaces of all guests on a host share 10.0.0.0/24 (a domid above
// 254 has no default address). A second interface is 10.0.1.<d>, and so on.
import type { XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import type { XenbusWatch } from '../../../shared/xen/xenbus.js';
import type { Balloon } from '../balloon.js';
import { NetFront, watchVifs } from '../../../shared/front/netfront.js';
import type { NetDevice } from '../../../shared/front/netdev.js';
import { parseIp } from './ipv4.js';
import { NetStack } from './stack.js';

/** A network driver as the interface list holds it: netfront, or a PCI NIC's driver. */
export interface NetDriver extends NetDevice {
  readonly state: string;
  onClose(fn: () => void): void;
  close(): Promise<void>;
  /** ifconfig up / down (e1000_open / e1000_close); netfront has neither and is up while connected. */
  open?(): void;
  down?(): void;
  /** STATUS.LU of a NIC; a connected vif always has its link. */
  readonly linkUp?: boolean;
}

export interface NetInterface {
  dev: NetDriver;
  stack: NetStack;
  /** IFF_UP: what ifconfig up/down set. */
  up: boolean;
  /** The vif's devid, for a netfront. */
  vif?: number;
}

/** `ip` of the backend, or the default scheme; null when neither gives one. */
export function vifAddress(ipKey: string | null, domid: number, devid: number): { ip: number; prefixLen: number } | null {
  if (ipKey) {
    const [addr, pfx] = ipKey.trim().split(/\s+/)[0]!.split('/');
    const ip = parseIp(addr ?? '');
    const prefixLen = pfx === undefined ? 24 : Number(pfx);
    if (ip !== null && Number.isInteger(prefixLen) && prefixLen >= 0 && prefixLen <= 32) return { ip, prefixLen };
  }
  if (domid < 1 || domid > 254 || devid > 255) return null;
  return { ip: ((10 << 24) | (devid << 8) | domid) >>> 0, prefixLen: 24 };
}

export class NetInterfaces {
  readonly list: NetInterface[] = [];

  /** `resumed`: the addresses a restored kernel's interfaces had, by vif devid (suspend.ts). */
  constructor(private readonly resumed?: Record<string, { ip: number; prefixLen: number }>) {}

  /** Each interface's address by vif devid, for the suspend record. */
  addresses(): Record<string, { ip: number; prefixLen: number }> {
    return Object.fromEntries(this.list.filter((i) => i.vif !== undefined).map((i) => [String(i.vif), { ip: i.stack.ip, prefixLen: i.stack.prefixLen }]));
  }
  private watch: XenbusWatch | null = null;
  private readonly waiters: Array<() => void> = [];

  byName(name: string): NetInterface | undefined { return this.list.find((i) => i.dev.name === name); }

  /** The interface up whose subnet holds `ip`, else the first one up. */
  route(ip: number): NetInterface | undefined {
    const up = this.list.filter((i) => i.up && i.stack.ip !== 0);
    return up.find((i) => ((i.stack.ip ^ ip) & i.stack.netmask) === 0) ?? up[0];
  }

  /** The vifs the domain was created with (their names are taken). */
  private vifIds = new Set<number>();

  /** The name register_netdev gives the next NIC: the lowest eth<N> neither an interface nor a vif has. */
  nextName(): string {
    for (let n = 0; ; n++) if (!this.vifIds.has(n) && !this.byName(`eth${n}`)) return `eth${n}`;
  }

  /** A NIC a PCI driver probed: down, no address, until ifconfig. */
  addDevice(dev: NetDriver, log: (m: string) => void): NetInterface {
    const stack = new NetStack(dev);
    const ifc: NetInterface = { dev, stack, up: false };
    stack.enabled = false;
    this.list.push(ifc);
    dev.onClose(() => {
      stack.close();
      const i = this.list.indexOf(ifc);
      if (i >= 0) this.list.splice(i, 1);
      log(`${dev.name}: unregistered`);
    });
    return ifc;
  }

  /** ifconfig IF up / down: the driver opened or closed, the stack with it. */
  setUp(ifc: NetInterface, up: boolean): void {
    if (up) ifc.dev.open?.(); else ifc.dev.down?.();
    ifc.up = up;
    ifc.stack.enabled = up;
  }

  async start(dom: XenDomain, xs: XsClient, balloon: Balloon, log: (m: string) => void): Promise<void> {
    const vifs = await xs.directory(`/local/domain/${dom.domid}/device/vif`).catch(() => [] as string[]);
    for (const v of vifs) if (/^\d+$/.test(v)) this.vifIds.add(Number(v));
    const expected = vifs.length;
    this.watch = await watchVifs(dom, xs, balloon, log, (nf) => void this.add(nf, xs, dom.domid, log));
    // Boot waits (boundedly) for the vifs the domain was created with, as
    // Linux's xenbus waits for devices before init.
    if (expected > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 5000);
        const check = () => { if (this.list.length >= expected) { clearTimeout(t); resolve(); } else this.waiters.push(check); };
        check();
      });
    }
  }

  private async add(nf: NetFront, xs: XsClient, domid: number, log: (m: string) => void): Promise<void> {
    const ipKey = await xs.tryRead(`${nf.backend}/ip`).catch(() => null);
    const stack = new NetStack(nf);
    const resumed = this.resumed?.[String(nf.devid)];
    const a = resumed ?? vifAddress(ipKey, domid, nf.devid);
    if (a) stack.configure(a.ip, a.prefixLen);
    // A restored kernel (xl restore, a migration's target) tells the segment
    // where its address is now, as Linux's netfront does after a resume.
    if (resumed && a) stack.arp.announce();
    const ifc: NetInterface = { dev: nf, stack, up: true, vif: nf.devid };
    this.list.push(ifc);
    nf.onClose(() => {
      stack.close();
      const i = this.list.indexOf(ifc);
      if (i >= 0) this.list.splice(i, 1);
    });
    const mac = Array.from(nf.mac, (b) => b.toString(16).padStart(2, '0')).join(':');
    log(`xen_netfront: ${nf.name}: ${mac} connected to ${nf.backend} (tx-ring-ref ${nf.txRingRef}, rx-ring-ref ${nf.rxRingRef}, evtchn ${nf.port})`);
    for (const w of this.waiters.splice(0)) w();
  }

  async close(): Promise<void> {
    await this.watch?.close();
    for (const i of [...this.list]) await i.dev.close();
  }
}
