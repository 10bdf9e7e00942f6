// pciback: Domain-0's PCI back end service (Linux drivers/xen/xen-pciback).
// It watches /local/domain/0/backend/pci and runs one PciBackendDevice
// (pdev.ts) per <domid>/0 directory the toolstack writes, until that
// directory is removed (the last xl pci-detach, destroy). Guests are
// independent: a front end that misbehaves is refused alone. Counters and
// refusals are in <rundir>/xen-backend/devices/pci-<domid>-0/statistics
// (../backend_stats.ts).
import type { XsClient } from '../../../shared/xenstore/client.js';
import type { XenDomain } from '../../../shared/xen/index.js';
import { xenbusWatch, type XenbusWatch } from '../../../shared/xen/xenbus.js';
import { BackendDriver } from '../backend_stats.js';
import { PCIIF_REJECTS, type PciifReject } from './reject.js';
import { PciBackendDevice } from './pdev.js';

export const PCI_BACKEND_ROOT = '/local/domain/0/backend/pci';

export interface PcibackOptions { dom0: XenDomain; xs: XsClient; log(msg: string): void }

export class Pciback {
  readonly pdevs = new Map<number, PciBackendDevice>();
  private watch: XenbusWatch | undefined;
  private readonly busy = new Map<number, Promise<void>>();
  private closed = false;
  readonly driver: BackendDriver<PciifReject>;

  private constructor(private readonly o: PcibackOptions) {
    this.driver = new BackendDriver({ rundir: o.dom0.rundir, type: 'pci', reasons: PCIIF_REJECTS, log: (m) => o.log(`pciback: ${m}`) });
  }

  static async start(o: PcibackOptions): Promise<Pciback> {
    const b = new Pciback(o);
    b.watch = await xenbusWatch(o.xs, PCI_BACKEND_ROOT, (p) => b.changed(p), 'pciback');
    return b;
  }

  private async changed(path: string): Promise<void> {
    const rel = path.startsWith(PCI_BACKEND_ROOT) ? path.slice(PCI_BACKEND_ROOT.length).split('/').filter(Boolean) : [];
    if (rel.length >= 1) { await this.reconcile(rel[0]!); return; }
    const doms = new Set<string>([...this.pdevs.keys()].map(String));
    for (const d of await this.o.xs.directory(PCI_BACKEND_ROOT).catch(() => [] as string[])) doms.add(d);
    await Promise.all([...doms].map((d) => this.reconcile(d)));
  }

  private reconcile(dom: string): Promise<void> {
    if (!/^\d+$/.test(dom)) return Promise.resolve();
    const domid = Number(dom);
    const prev = this.busy.get(domid) ?? Promise.resolve();
    const p = prev.then(() => this.reconcile1(domid)).catch((e: Error) => this.o.log(`pciback: d${domid}: ${e.message}`));
    this.busy.set(domid, p);
    void p.finally(() => { if (this.busy.get(domid) === p) this.busy.delete(domid); });
    return p;
  }

  private async reconcile1(domid: number): Promise<void> {
    if (this.closed) return;
    const dir = `${PCI_BACKEND_ROOT}/${domid}/0`;
    // The toolstack writes the directory in one transaction; `frontend` marks it complete.
    const present = (await this.o.xs.tryRead(`${dir}/frontend`).catch(() => null)) !== null;
    const have = this.pdevs.get(domid);
    if (present && !have) {
      const d = new PciBackendDevice({ dom0: this.o.dom0, xs: this.o.xs, log: this.o.log, driver: this.driver }, dir, domid);
      this.pdevs.set(domid, d);
      try { await d.start(); } catch (e) { this.o.log(`pciback: d${domid}: ${(e as Error).message}`); }
    } else if (!present && have) {
      this.pdevs.delete(domid);
      await have.close();
      this.o.log(`pciback: d${domid}: back end removed`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watch?.close();
    await Promise.all([...this.pdevs.values()].map((d) => d.close()));
    this.pdevs.clear();
    this.driver.close();
  }
}
