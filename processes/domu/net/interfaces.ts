// The guest's network interfaces: one NetStack per connected netfront,
// configured from the toolstack's vif settings.
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
import { parseIp } from './ipv4.js';
import { NetStack } from './stack.js';

export interface NetInterface { dev: NetFront; stack: NetStack }

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
    return Object.fromEntries(this.list.map((i) => [String(i.dev.devid), { ip: i.stack.ip, prefixLen: i.stack.prefixLen }]));
  }
  private watch: XenbusWatch | null = null;
  private readonly waiters: Array<() => void> = [];

  byName(name: string): NetInterface | undefined { return this.list.find((i) => i.dev.name === name); }

  /** The interface whose subnet holds `ip`, else the first one. */
  route(ip: number): NetInterface | undefined {
    return this.list.find((i) => ((i.stack.ip ^ ip) & i.stack.netmask) === 0) ?? this.list[0];
  }

  async start(dom: XenDomain, xs: XsClient, balloon: Balloon, log: (m: string) => void): Promise<void> {
    const expected = (await xs.directory(`/local/domain/${dom.domid}/device/vif`).catch(() => [] as string[])).length;
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
    const ifc = { dev: nf, stack };
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
