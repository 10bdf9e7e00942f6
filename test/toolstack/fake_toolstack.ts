// An in-process Toolstack for testing xend's protocol and xm: domains are
// records, consoles are real (a Xenconsoled with a ring page per domain, the
// guest side driven by the test).
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Xenconsoled } from '../../processes/dom0/xenconsoled/xenconsoled.js';
import { ToolstackError, type ConsoleAttach, type DomainInfo, type Toolstack } from '../../processes/dom0/xend/toolstack.js';
import { XenconsInterface } from '../../shared/abi/io/console.js';
import type { DomainConfig } from '../../shared/toolstack/xlcfg.js';
import type { NodeInfo } from '../../shared/toolstack/xend_api.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';

export class FakeToolstack implements Toolstack {
  readonly domains = new Map<number, DomainInfo>();
  readonly rings = new Map<number, XenconsInterface>();
  readonly xenconsoled: Xenconsoled;
  readonly logDir: string;
  private nextDomid = 1;
  private dmesgText = '(XEN) Xen version 4.17 (xenemu)\n(XEN) Brought up 2 CPUs\n';
  private shutdownWaiters: Array<() => void> = [];
  totalMiB = 4096;
  /** Called with the guest's ring whenever xenconsoled notifies that guest. */
  onGuestNotify: (domid: number) => void = () => {};
  /** Called once a domain (and its console) exists. */
  onCreate: (domid: number) => void = () => {};

  constructor() {
    this.logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenemu-fake-ts-'));
    this.xenconsoled = new Xenconsoled({ logDir: this.logDir });
    this.domains.set(0, this.record(0, 'Domain-0', 1024, 2, undefined));
    this.domains.get(0)!.running = true;
    this.domains.get(0)!.blocked = false;
    this.domains.get(0)!.cpu_time_ns = 12_345_000_000;
  }

  private record(domid: number, name: string, mib: number, vcpus: number, config: DomainConfig | undefined): DomainInfo {
    return {
      domid, name, uuid: domid === 0 ? '00000000-0000-0000-0000-000000000000' : config?.uuid ?? randomUUID(),
      type: config?.type ?? 'pv', memory_mib: mib, maxmem_mib: config?.maxmem ?? mib, vcpus_online: vcpus,
      maxvcpus: config?.maxvcpus ?? vcpus, cpu_time_ns: 0, start_time: Math.floor(Date.now() / 1000) - 3725,
      running: false, blocked: true, paused: false, shutdown: false, dying: false, ...(config ? { config } : {}),
    };
  }

  private must(domid: number): DomainInfo {
    const d = this.domains.get(domid);
    if (!d) throw new ToolstackError('ESRCH', `Domain ${domid} does not exist.`);
    return d;
  }

  async list() { return [...this.domains.values()].map((d) => ({ ...d })); }
  async get(domid: number) { return { ...this.must(domid) }; }

  async create(config: DomainConfig, paused = false) {
    const used = [...this.domains.values()].reduce((s, d) => s + d.memory_mib, 0);
    if (used + config.memory > this.totalMiB) {
      throw new ToolstackError('ENOMEM', `failed to create domain "${config.name}": not enough memory (${config.memory} MiB asked, ${this.totalMiB - used} MiB free)`);
    }
    const domid = this.nextDomid++;
    const d = this.record(domid, config.name, config.memory, config.vcpus, config);
    d.paused = paused;
    this.domains.set(domid, d);
    const page = new Uint8Array(new SharedArrayBuffer(PAGE_SIZE));
    this.rings.set(domid, new XenconsInterface(page));
    this.xenconsoled.addConsole(domid, config.name, page, () => this.onGuestNotify(domid));
    this.onCreate(domid);
    return { ...d };
  }

  async destroy(domid: number) {
    this.must(domid);
    if (domid === 0) throw new ToolstackError('EPERM', 'Cannot destroy privileged domain 0.');
    this.domains.delete(domid);
    this.rings.delete(domid);
    await this.xenconsoled.removeConsole(domid);
    this.wake();
  }
  async pause(domid: number) { this.must(domid).paused = true; }
  async unpause(domid: number) { this.must(domid).paused = false; }
  /** Called when xend asks a guest to shut down; the guest acts later (guestShutdown). */
  onShutdownRequest: (domid: number) => void = () => {};
  async shutdown(domid: number) {
    this.must(domid);
    if (domid === 0) throw new ToolstackError('EPERM', 'Cannot shut down domain 0 from xend.');
    this.onShutdownRequest(domid);
  }
  async reboot(domid: number) { this.must(domid); }
  /** The guest has shut down (as it would after reading control/shutdown). */
  guestShutdown(domid: number): void {
    const d = this.must(domid);
    Object.assign(d, { shutdown: true, shutdown_reason: 'poweroff', running: false, blocked: false });
    this.wake();
  }
  private wake(): void { this.shutdownWaiters.splice(0).forEach((w) => w()); }
  /** waitForShutdown calls so far. */
  waitCalls = 0;
  /** Called once a waitForShutdown call is waiting (the domain was not shut down yet). */
  onWaiting: (domid: number) => void = () => {};
  async waitForShutdown(domid: number, timeoutMs: number): Promise<boolean> {
    this.waitCalls++;
    const done = () => { const d = this.domains.get(domid); return !d || d.shutdown; };
    if (done()) return true;
    setImmediate(() => this.onWaiting(domid));
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const check = () => { if (done()) { clearTimeout(timer); resolve(true); } else this.shutdownWaiters.push(check); };
      this.shutdownWaiters.push(check);
    });
  }
  async memSet(domid: number, mib: number) {
    const d = this.must(domid);
    if (mib > d.maxmem_mib) throw new ToolstackError('EINVAL', `memory_dynamic_max must be less than or equal to memory_static_max`);
    d.memory_mib = mib;
  }
  async vcpuSet(domid: number, n: number) {
    const d = this.must(domid);
    if (n > d.maxvcpus) throw new ToolstackError('EINVAL', `Requested vcpus (${n}) is greater than the maximum (${d.maxvcpus})`);
    d.vcpus_online = n;
  }
  async info(): Promise<NodeInfo> {
    const used = [...this.domains.values()].reduce((s, d) => s + d.memory_mib, 0);
    return {
      host: 'xenemu', release: '6.1.0-xenemu', version: '#1 SMP', machine: 'x86_64', nr_cpus: 2, max_cpu_id: 1,
      nr_nodes: 1, cores_per_socket: 2, threads_per_core: 1, cpu_mhz: 2000,
      total_memory: this.totalMiB, free_memory: this.totalMiB - used, xen_major: 4, xen_minor: 17,
      xen_extra: '-xenemu', xen_version: '4.17-xenemu', xen_caps: 'xen-3.0-x86_64', xen_scheduler: 'credit',
      xen_pagesize: PAGE_SIZE, xend_config_format: 4,
    };
  }
  async dmesg(clear: boolean) {
    const t = this.dmesgText;
    if (clear) this.dmesgText = '';
    return t;
  }
  async console(domid: number): Promise<ConsoleAttach> {
    this.must(domid);
    const a = this.xenconsoled.attach(domid);
    if (!a) throw new ToolstackError('ENOSYS', `Domain ${domid} has no console.`);
    return a;
  }

  async close(): Promise<void> {
    await this.xenconsoled.close();
    fs.rmSync(this.logDir, { recursive: true, force: true });
  }
}
