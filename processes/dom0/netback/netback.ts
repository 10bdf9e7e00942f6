// netback: Domain-0's network back end. It follows the vif back-end
// directories the toolstack writes (libxl's layout):
//
//   /local/domain/0/backend/vif/<domid>/<devid>/
//       frontend, frontend-id, online, state, script, mac, bridge, handle, type, [ip]
//
// One watch on /local/domain/0/backend/vif; on any change the set of
// devices is re-read: a new directory gets a Vif (probe: features,
// InitWait), `online` = 0 asks it to close (network-detach), a vanished
// directory removes it (detach done, or the domain destroyed). Each vif's
// packets go through the learning bridge named by its `bridge` key
// (xenbr0 by default); bridges are made on first use. The vifs' statistics
// and the refusals of their front ends' input are in <rundir>/xen-backend/
// (../backend_stats.ts).
import type { XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import { xenbusWatch, type XenbusWatch } from '../../../shared/xen/xenbus.js';
import { BackendDriver } from '../backend_stats.js';
import { Bridge } from './bridge.js';
import { FramePool } from './pool.js';
import { NETIF_REJECTS, type NetifReject } from './reject.js';
import { Vif } from './vif.js';
import { TapPort } from './tap.js';
import { UplinkPort } from './uplink.js';

export const VIF_BACKEND_ROOT = '/local/domain/0/backend/vif';
/** Dom0 frames for packets in flight (4 MiB). */
const POOL_FRAMES = 1024;
const AGEING_SWEEP_MS = 30_000;

export interface NetbackOptions { dom0: XenDomain; xs: XsClient; log: (m: string) => void; poolFrames?: number }

export class Netback {
  readonly vifs = new Map<string, Vif>();
  readonly bridges = new Map<string, Bridge>();
  /** Emulated NICs' ports (tap.ts), by name (vif<domid>.<n>-emu). */
  readonly taps = new Map<string, TapPort>();
  private readonly pool: FramePool;
  /** xenbr0's TAP into the host's namespace (uplink.ts), with XENEMU_UPLINK. */
  uplink: UplinkPort | null = null;
  private watch: XenbusWatch | null = null;
  private readonly sweep: NodeJS.Timeout;
  private closed = false;
  readonly driver: BackendDriver<NetifReject>;

  private constructor(private readonly o: NetbackOptions) {
    this.pool = new FramePool(o.dom0.memory, o.poolFrames ?? POOL_FRAMES);
    this.driver = new BackendDriver({ rundir: o.dom0.rundir, type: 'vif', reasons: NETIF_REJECTS, log: o.log });
    this.sweep = setInterval(() => { for (const b of this.bridges.values()) b.age(); }, AGEING_SWEEP_MS);
    this.sweep.unref();
  }

  static async start(o: NetbackOptions): Promise<Netback> {
    const nb = new Netback(o);
    const br = nb.bridge('xenbr0');
    const linuxBridge = process.env.XENEMU_UPLINK;
    if (linuxBridge) nb.uplink = UplinkPort.open(br, linuxBridge, o.log);
    nb.watch = await xenbusWatch(o.xs, VIF_BACKEND_ROOT, () => nb.rescan(), 'netback');
    return nb;
  }

  /**
   * A port on bridge `bridge` for an HVM guest's emulated NIC: what
   * vif-bridge does with qemu's tap. Returns the endpoint the device model
   * connects to. A second call with the same name gives the same port.
   */
  async addTap(name: string, bridge: string): Promise<string> {
    if (!/^vif\d+\.\d+-emu$/.test(name)) throw new Error(`tap name ${name}: vif<domid>.<n>-emu`);
    const had = this.taps.get(name);
    if (had) return had.endpoint;
    const t = await TapPort.open(name, this.o.dom0.rundir, this.bridge(bridge));
    this.taps.set(name, t);
    return t.endpoint;
  }

  /** Takes away every tap port of domain `domid`. */
  removeTaps(domid: number): void {
    for (const [name, t] of this.taps) {
      if (name.startsWith(`vif${domid}.`)) { t.close(); this.taps.delete(name); }
    }
  }

  bridge(name: string): Bridge {
    let b = this.bridges.get(name);
    if (!b) { b = new Bridge(name); this.bridges.set(name, b); }
    return b;
  }

  private async list(path: string): Promise<string[]> {
    return this.o.xs.directory(path).catch(() => []);
  }

  /** Brings the vifs in line with the backend directories. Never overlaps itself (xenbusWatch). */
  private async rescan(): Promise<void> {
    if (this.closed) return;
    const { xs } = this.o;
    const seen = new Set<string>();
    for (const d of await this.list(VIF_BACKEND_ROOT)) {
      if (!/^\d+$/.test(d)) continue;
      for (const v of await this.list(`${VIF_BACKEND_ROOT}/${d}`)) {
        if (!/^\d+$/.test(v)) continue;
        const dir = `${VIF_BACKEND_ROOT}/${d}/${v}`;
        const online = await xs.tryRead(`${dir}/online`).catch(() => null);
        if (online === null) continue; // being written, or being removed
        const key = `${d}/${v}`;
        seen.add(key);
        let vif = this.vifs.get(key);
        if (!vif) {
          vif = new Vif({ dom0: this.o.dom0, xs, pool: this.pool, bridge: (n) => this.bridge(n), log: this.o.log, driver: this.driver },
                        Number(d), Number(v), dir);
          this.vifs.set(key, vif);
          try {
            await vif.probe();
          } catch (e) {
            this.o.log(`netback: ${vif.name}: probe failed: ${(e as Error).message}`);
          }
        }
        if (online === '0') await vif.offline();
      }
    }
    for (const [key, vif] of this.vifs) {
      if (seen.has(key)) continue;
      this.vifs.delete(key);
      await vif.remove();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    await this.watch?.close();
    for (const v of this.vifs.values()) await v.remove();
    this.vifs.clear();
    for (const t of this.taps.values()) t.close();
    this.taps.clear();
    this.uplink?.close();
    this.uplink = null;
    this.driver.close();
  }
}
