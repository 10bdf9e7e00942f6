// blkback: Domain-0's block back end service. It watches
// /local/domain/0/backend/vbd and runs one Vbd (vbd.ts) per
// <domid>/<devid> directory the toolstack writes, until that directory is
// removed (xl block-detach, destroy). Devices are independent: one front end
// that misbehaves is disconnected alone. Their statistics and the refusals of
// their front ends' input are in <rundir>/xen-backend/ (../backend_stats.ts).
import type { XsClient } from '../../../shared/xenstore/client.js';
import type { XenDomain } from '../../../shared/xen/index.js';
import { xenbusWatch, type XenbusWatch } from '../../../shared/xen/xenbus.js';
import { BackendDriver } from '../backend_stats.js';
import { BLKIF_REJECTS, type BlkifReject } from './reject.js';
import { blkbackHooks, type BlkbackHooks } from './test_hooks.js';
import { Vbd } from './vbd.js';

export const VBD_BACKEND_ROOT = '/local/domain/0/backend/vbd';

export interface BlkbackOptions { dom0: XenDomain; xs: XsClient; log(msg: string): void }

export class Blkback {
  readonly vbds = new Map<string, Vbd>();
  private watch: XenbusWatch | undefined;
  private readonly busy = new Map<string, Promise<void>>();
  private closed = false;
  readonly driver: BackendDriver<BlkifReject>;
  private readonly hooks: BlkbackHooks | null;

  private constructor(private readonly o: BlkbackOptions) {
    this.driver = new BackendDriver({ rundir: o.dom0.rundir, type: 'vbd', reasons: BLKIF_REJECTS, log: (m) => o.log(`blkback: ${m}`) });
    this.hooks = blkbackHooks(o.dom0.rundir);
    if (this.hooks) o.log('blkback: test hooks on (XENEMU_TEST_HOOKS)');
  }

  static async start(o: BlkbackOptions): Promise<Blkback> {
    const b = new Blkback(o);
    b.watch = await xenbusWatch(o.xs, VBD_BACKEND_ROOT, (p) => b.changed(p), 'blkback');
    return b;
  }

  /** A change under backend/vbd: (re)consider every device it may concern. */
  private async changed(path: string): Promise<void> {
    const rel = path.startsWith(VBD_BACKEND_ROOT) ? path.slice(VBD_BACKEND_ROOT.length).split('/').filter(Boolean) : [];
    if (rel.length >= 2) { await this.reconcile(rel[0]!, rel[1]!); return; }
    // The root or a domain directory: rescan what exists and what we hold.
    const keys = new Set(this.vbds.keys());
    const doms = rel.length === 1 ? [rel[0]!] : await this.o.xs.directory(VBD_BACKEND_ROOT).catch(() => [] as string[]);
    for (const d of doms) {
      for (const dev of await this.o.xs.directory(`${VBD_BACKEND_ROOT}/${d}`).catch(() => [] as string[])) keys.add(`${d}/${dev}`);
    }
    await Promise.all([...keys].filter((k) => rel.length === 0 || k.startsWith(`${rel[0]}/`))
      .map((k) => { const [d, dev] = k.split('/'); return this.reconcile(d!, dev!); }));
  }

  private reconcile(dom: string, dev: string): Promise<void> {
    const key = `${dom}/${dev}`;
    const prev = this.busy.get(key) ?? Promise.resolve();
    const p = prev.then(() => this.reconcile1(dom, dev, key)).catch((e: Error) => this.o.log(`blkback: ${key}: ${e.message}`));
    this.busy.set(key, p);
    void p.finally(() => { if (this.busy.get(key) === p) this.busy.delete(key); });
    return p;
  }

  private async reconcile1(dom: string, dev: string, key: string): Promise<void> {
    if (this.closed || !/^\d+$/.test(dom) || !/^\d+$/.test(dev)) return;
    const dir = `${VBD_BACKEND_ROOT}/${dom}/${dev}`;
    // The toolstack writes the whole directory in one transaction; `frontend` marks it complete.
    const present = (await this.o.xs.tryRead(`${dir}/frontend`).catch(() => null)) !== null;
    const have = this.vbds.get(key);
    if (present && !have) {
      const v = new Vbd({ dom0: this.o.dom0, xs: this.o.xs, log: this.o.log, driver: this.driver, hooks: this.hooks },
        dir, Number(dom), Number(dev));
      this.vbds.set(key, v);
      try { await v.start(); } catch (e) { this.o.log(`blkback: ${key}: ${(e as Error).message}`); }
    } else if (!present && have) {
      this.vbds.delete(key);
      await have.close();
      this.o.log(`blkback: vbd d${dom}/${dev} removed`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watch?.close();
    await Promise.all([...this.vbds.values()].map((v) => v.close()));
    this.vbds.clear();
    this.driver.close();
  }
}
