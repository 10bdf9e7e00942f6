// The guest's block devices: a watch on device/vbd (xenbus_probe_frontend)
// starts a Blkfront for each new device directory, and forgets a device
// whose directory is removed (xl block-detach) or whose back end closed it.
// Devices present at boot are connected before the shell starts. Other
// drivers (nvme.ts, a passed-through NVMe namespace) register their disks in
// the same list, so the shell's block commands reach every disk by name.
import type { XsClient } from '../../../shared/xenstore/client.js';
import { xenbusWatch, type XenbusWatch } from '../../../shared/xen/xenbus.js';
import { Blkfront, type BlkfrontDeps } from '../../../shared/front/blkfront.js';

/** A disk as the shell's block commands and the file system use it: sectors of 512 bytes. */
export interface BlockDevice {
  readonly name: string;
  /** major << 8 | minor, as lsblk shows it. */
  readonly devid: number;
  readonly sectors: number;
  readonly readonly: boolean;
  /** Largest transfer of one request, in bytes. */
  readonly maxRequestBytes: number;
  readonly stats: { requests: number; bytes: number; notifiesSent: number; notifiesReceived: number; errors: number };
  read(sector: number, into: Uint8Array): Promise<void>;
  write(sector: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  /** Resolves when no request is in flight (a suspend waits for it). */
  quiesce(timeoutMs?: number): Promise<void>;
  /** Discard, where the device has it. */
  readonly features?: { discard: boolean };
  discard?(sector: number, count: number): Promise<void>;
  /** A buffer the device does I/O on without a copy, or null (then any Uint8Array serves). */
  allocBuffer(bytes: number): Uint8Array | null;
  freeBuffer(buf: Uint8Array): void;
}

/** The disks by name. */
export interface BlockDeviceList {
  readonly devices: Map<string, BlockDevice>;
  get(name: string): BlockDevice | undefined;
}

export class BlockDevices implements BlockDeviceList {
  readonly devices = new Map<string, BlockDevice>(); // name -> device
  private readonly byDevid = new Map<number, Blkfront>();
  private readonly probing = new Map<number, Promise<void>>();
  private watch: XenbusWatch | undefined;
  /** Called when a device connects (the file system mounts from here). */
  onConnect: ((d: BlockDevice) => void | Promise<void>) | undefined;
  onRemove: ((d: BlockDevice) => void) | undefined;

  constructor(private readonly deps: BlkfrontDeps, private readonly domid: number) {}

  private get base(): string { return `/local/domain/${this.domid}/device/vbd`; }

  /** Probes the devices there are now (bounded wait), then follows hotplug. */
  async start(bootTimeoutMs = 10_000): Promise<void> {
    const xs: XsClient = this.deps.xs;
    const now = await xs.directory(this.base).catch(() => [] as string[]);
    await Promise.race([
      Promise.allSettled(now.filter((d) => /^\d+$/.test(d)).map((d) => this.probe(Number(d), bootTimeoutMs))),
      new Promise((r) => setTimeout(r, bootTimeoutMs).unref()),
    ]);
    this.watch = await xenbusWatch(xs, this.base, (p) => this.changed(p), 'vbd');
  }

  get(name: string): BlockDevice | undefined {
    return this.devices.get(name.replace(/^\/dev\//, ''));
  }

  /** A disk of another driver (not a vbd) joins the list; false if its name is taken. */
  async register(dev: BlockDevice): Promise<boolean> {
    if (this.devices.has(dev.name)) return false;
    this.devices.set(dev.name, dev);
    try { await this.onConnect?.(dev); } catch (e) { this.deps.log(`${dev.name}: ${(e as Error).message}`); }
    return true;
  }

  /** A registered disk goes (its device was unplugged). */
  unregister(dev: BlockDevice): void {
    if (this.devices.get(dev.name) !== dev) return;
    this.devices.delete(dev.name);
    this.onRemove?.(dev);
  }

  private async changed(path: string): Promise<void> {
    const rel = path.slice(this.base.length).split('/').filter(Boolean);
    const ids = rel.length > 0 ? [rel[0]!] : await this.deps.xs.directory(this.base).catch(() => [] as string[]);
    for (const d of ids) {
      if (!/^\d+$/.test(d)) continue;
      const devid = Number(d);
      const exists = (await this.deps.xs.tryRead(`${this.base}/${d}/backend`).catch(() => null)) !== null;
      if (exists && !this.byDevid.has(devid) && !this.probing.has(devid)) void this.probe(devid);
      if (!exists) this.drop(devid);
    }
    // A removed directory shows only as a change of the directory above it.
    if (rel.length === 0) {
      for (const devid of [...this.byDevid.keys()]) if (!ids.includes(String(devid))) this.drop(devid);
    }
  }

  private drop(devid: number): void {
    const dev = this.byDevid.get(devid);
    if (!dev) return;
    this.byDevid.delete(devid);
    if (this.devices.get(dev.name) === dev) this.devices.delete(dev.name);
    this.onRemove?.(dev);
  }

  private probe(devid: number, timeoutMs = 10_000): Promise<void> {
    const p = (async () => {
      const dev = new Blkfront(this.deps, devid, `${this.base}/${devid}`);
      this.byDevid.set(devid, dev);
      try {
        await dev.connect(timeoutMs);
      } catch (e) {
        this.deps.log(`blkfront: vbd ${devid}: ${(e as Error).message}`);
        this.byDevid.delete(devid);
        return;
      }
      dev.onGone = () => this.drop(devid);
      this.devices.set(dev.name, dev);
      try { await this.onConnect?.(dev); } catch (e) { this.deps.log(`blkfront: ${dev.name}: ${(e as Error).message}`); }
    })().finally(() => this.probing.delete(devid));
    this.probing.set(devid, p);
    return p;
  }

  async close(): Promise<void> { await this.watch?.close(); }
}
