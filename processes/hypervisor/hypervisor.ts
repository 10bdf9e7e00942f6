// The hypervisor of one virtual host: domains, their lifecycle, and the glue
// between the per-domain channels and the hypercall table.
//
//   launcher ──spawn──> hypervisor ──spawn (lifeline)──> Dom0 ──domctl──> ...
//                          │  boot: create d0, spawn it, wait for `ready`
//                          │  d0 createdomain/unpausedomain ──> spawn dN
//                          │  dN exits without SCHEDOP_shutdown ──> crashed,
//                          │      VIRQ_DOM_EXC to d0
//                          └  d0 exits ──> whole host torn down
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, closeSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { shmPrefix, shmSweep } from '../../shared/shm.js';
import { VIRQ_DOM_EXC, DOMID_FIRST_RESERVED, PAGE_SIZE } from '../../shared/abi/xen.js';
import { SHUTDOWN_crash, SHUTDOWN_suspend } from '../../shared/abi/sched.js';
import { XEN_EINVAL, XEN_ENOSPC, XEN_EPERM } from '../../shared/abi/errno.js';
import type { DomainHello, DomainToHypervisor } from '../../shared/wire/hypercall.js';
import { hostFiles, removeHostFiles, writeHostRecord, type HostRecord } from '../../shared/host.js';
import { ConsoleRing } from './console_io.js';
import { HostMemory, mbToPages, pagesToMB } from './memory.js';
import { Domain, type DomainConfig } from './domain.js';
import { type Scheduler, shutdownName } from './sched.js';
import { SliceScheduler } from './sched_core.js';
import { RoundRobinPolicy } from './sched_rr.js';
import { CreditPolicy } from './sched_credit.js';
import { dispatch } from './hypercall.js';
import { evtchnDestroy, evtchnSend, sendVirq } from './event_channel.js';
import { gnttabDestroy } from './grant_table.js';
import { DomainChannel } from './transport.js';
import { spawnDomainProcess } from './spawn.js';
import { SpareDomains } from './spare.js';
import { Privcmd } from './privcmd.js';
import { PrivcmdSocket } from './privcmd_sock.js';
import { PciRegistry, type HostPciDevice } from './pci.js';
import { pciIrq } from './pci_irq.js';
import type { PciSpec } from '../../shared/wire/pcidev.js';

/** `defer`: the caller's reply waits (a guest's SCHEDOP_shutdown(suspend), answered at resume). */
export type HcResult = number | { ret: number; data?: unknown; defer?: boolean };

export interface HypervisorOptions {
  host: string;
  rundir: string;
  memoryMB: number;
  pcpus: number;
  dom0MB: number;
  dom0Program: string;
  defaultDomUProgram: string;
  readyFd?: number;
  /** Xen's `sched=` boot parameter: credit (default) or rr. */
  sched?: 'credit' | 'rr';
  /** The host's PCI devices (`xenemu up --pci`), and the device process's program. */
  pci?: PciSpec[];
  pcidevProgram?: string;
}

/** How long a domain gets to exit on SIGTERM before SIGKILL, when the host goes down. */
const TERM_GRACE_MS = 1500;

export class Hypervisor {
  readonly host: string;
  readonly rundir: string;
  readonly pcpus: number;
  readonly cpuKhz = readCpuKhz();
  readonly console: ConsoleRing;
  readonly memory: HostMemory;
  readonly domains = new Map<number, Domain>();
  readonly scheduler: Scheduler;
  readonly defaultDomUProgram: string;
  private readonly opts: HypervisorOptions;
  private nextDomid = 1;
  private ready = false;
  private stopping: Promise<void> | null = null;
  private readonly started = new Date().toISOString();
  private notifyErrors = 0;
  private readonly spares: SpareDomains;
  private readonly privcmd: Privcmd;
  private readonly privcmdSock: PrivcmdSocket;
  readonly pci: PciRegistry;

  constructor(opts: HypervisorOptions) {
    this.opts = opts;
    this.host = opts.host;
    this.rundir = opts.rundir;
    this.pcpus = opts.pcpus;
    this.defaultDomUProgram = opts.defaultDomUProgram;
    this.console = new ConsoleRing();
    this.memory = new HostMemory(mbToPages(opts.memoryMB), (m) => this.console.log(m));
    this.spares = new SpareDomains(opts.host, opts.rundir, opts.defaultDomUProgram, (m) => this.console.log(m),
                                   () => this.domainsChanged());
    this.privcmd = new Privcmd(this, () => {
      const d0 = this.domains.get(0);
      return d0 ? this.helloOf(d0) : null;
    });
    this.privcmdSock = new PrivcmdSocket(this);
    this.pci = new PciRegistry(this, opts.pcidevProgram ?? '');
    this.scheduler = new SliceScheduler({
      pcpus: opts.pcpus, log: (m) => this.console.log(m),
      policy: opts.sched === 'rr' ? new RoundRobinPolicy(opts.pcpus) : new CreditPolicy(opts.pcpus),
      notify: (d, vcpu, gen) => d.channel?.send({ type: 'slice', vcpu, gen }),
      signal: (d, sig) => {
        const pid = d.proc?.pid;
        if (!pid || d.proc!.exitCode !== null || d.proc!.signalCode !== null) return false;
        try { process.kill(pid, sig); return true; } catch { return false; }
      },
    });
  }

  isPrivileged(d: Domain): boolean { return d.domid === 0; }

  /** Xen's boot command line, as this host's options would spell it (XENVER_commandline). */
  get commandline(): string {
    return `dom0_mem=${this.opts.dom0MB}M,max:${this.opts.dom0MB}M sched=${this.scheduler.name} maxcpus=${this.pcpus}`;
  }

  /** Boots Domain-0. Resolves once its process is spawned (readiness comes later by `ready`). */
  async boot(): Promise<void> {
    writeFileSync(join(this.rundir, hostFiles.pid), `${process.pid}\n`);
    this.console.log(`xenemu hypervisor: host ${this.host}, ${this.opts.memoryMB} MB, ${this.pcpus} pCPUs, ` +
                     `scheduler ${this.scheduler.name}`);
    const dom0Pages = mbToPages(this.opts.dom0MB);
    const d0 = this.createDomain({
      domid: 0, maxVcpus: Math.min(this.pcpus, 4), totPages: dom0Pages, maxPages: dom0Pages, hvm: false,
      handle: new Array(16).fill(0), program: this.opts.dom0Program, args: [], maxGrantFrames: 64, maxEvtchnPort: 4095,
    });
    if (!d0) throw new Error(`cannot create Domain-0 with ${this.opts.dom0MB} MB`);
    await this.privcmd.start();
    await this.privcmdSock.start();
    // The host's PCI devices are there before Domain-0, as a machine's are before its first OS.
    await this.pci.start(this.opts.pci ?? []);
    const rc = this.unpauseDomain(d0);
    if (rc < 0) throw new Error(`cannot start Domain-0: ${rc}`);
    this.writeRecord();
  }

  allocDomid(): number {
    for (let i = 0; i < DOMID_FIRST_RESERVED; i++) {
      const id = this.nextDomid;
      this.nextDomid = this.nextDomid + 1 >= DOMID_FIRST_RESERVED ? 1 : this.nextDomid + 1;
      if (!this.domains.has(id)) return id;
    }
    return -XEN_ENOSPC;
  }

  createDomain(cfg: DomainConfig): Domain | null {
    if (!this.memory.allocate(cfg.domid, cfg.totPages, `domain creation (${pagesToMB(cfg.totPages)} MB)`)) return null;
    let d: Domain;
    try {
      d = new Domain(this.host, cfg);
    } catch (err) {
      this.memory.release(cfg.domid, cfg.totPages);
      this.console.log(`d${cfg.domid}: cannot create segments: ${(err as Error).message}`);
      return null;
    }
    this.domains.set(d.domid, d);
    this.scheduler.domainCreated(d);
    d.sched = this.scheduler;
    this.console.log(`d${d.domid}: created, ${pagesToMB(d.totPages)} MB (max ${pagesToMB(d.maxPages)} MB), ` +
                     `${d.maxVcpus} vCPUs, paused`);
    this.domainsChanged();
    return d;
  }

  /** The first unpause starts the domain's process; later ones resume it. */
  unpauseDomain(d: Domain): number {
    if (d.shutdown) return -XEN_EINVAL;
    if (!d.started) {
      const ch = new DomainChannel(this.rundir, d.domid, (m) => this.console.log(m));
      d.channel = ch;
      d.started = true;
      d.paused = false;
      void this.startDomain(d, ch);
      this.scheduler.domainUnpaused(d);
      return 0;
    }
    // A domain held stopped for ignoring preemption resumes only when its scheduler says so.
    if (d.paused && d.proc?.pid && this.scheduler.mayContinue(d)) {
      try { process.kill(d.proc.pid, 'SIGCONT'); } catch { /* exiting */ }
    }
    d.paused = false;
    this.scheduler.domainUnpaused(d);
    return 0;
  }

  private async startDomain(d: Domain, ch: DomainChannel): Promise<void> {
    try {
      await ch.bind();
    } catch (err) {
      this.console.log(`d${d.domid}: cannot bind ${ch.endpoint}: ${(err as Error).message}`);
      this.shutdownDomain(d, SHUTDOWN_crash);
      if (d.domid === 0) void this.stop('Domain-0 could not start', 1);
      return;
    }
    void ch.serve((m) => this.onMessage(d, m));
    if (d.dying) return;
    const spec = { host: this.host, rundir: this.rundir, domid: d.domid, program: d.program, args: d.args,
                   endpoint: ch.endpoint };
    const proc = this.spares.take(spec) ?? spawnDomainProcess(spec);
    d.proc = proc;
    proc.on('error', (err) => this.console.log(`d${d.domid}: spawn failed: ${err.message}`));
    proc.on('exit', (code, signal) => this.onDomainExit(d, proc, code, signal));
    this.console.log(`d${d.domid}: started ${d.program} as pid ${proc.pid}`);
    this.domainsChanged();
  }

  pauseDomain(d: Domain): void {
    if (d.paused) return;
    d.paused = true;
    if (d.proc?.pid) { try { process.kill(d.proc.pid, 'SIGSTOP'); } catch { /* exiting */ } }
    this.scheduler.domainPaused(d);
  }

  /** An upcall: the only message on the event path (event_channel.ts). */
  kick(d: Domain, vcpu: number): void {
    this.scheduler.wake(d, vcpu);
    d.channel?.upcall(vcpu);
  }

  shutdownDomain(d: Domain, reason: number): void {
    if (d.shutdown || d.dying) return;
    d.shutdown = true;
    d.shutdownReason = reason;
    this.console.log(`d${d.domid}: shutdown (${shutdownName(reason)})`);
    this.scheduler.domainPaused(d); // a shut-down domain gets no more slices
    const d0 = this.domains.get(0);
    if (d0 && d !== d0) sendVirq(this, d0, VIRQ_DOM_EXC);
    this.domainsChanged();
  }

  /**
   * domain_resume: a domain shut down for suspend runs on, in place (xl save
   * -c); its SCHEDOP_shutdown(suspend) returns 1, Xen's "suspend cancelled".
   */
  resumeDomain(d: Domain): number {
    if (!d.shutdown || d.dying) return 0;
    if (d.shutdownReason !== SHUTDOWN_suspend) return -XEN_EINVAL;
    d.shutdown = false;
    this.console.log(`d${d.domid}: resumed`);
    if (!d.paused) this.scheduler.domainUnpaused(d);
    const id = d.suspendReply;
    d.suspendReply = null;
    if (id !== null) d.channel?.send({ type: 'reply', id, ret: 1 });
    this.domainsChanged();
    return 0;
  }

  destroyDomain(d: Domain, why: string): void {
    if (d.dying) return;
    d.dying = true;
    this.console.log(`d${d.domid}: destroyed (${why})`);
    const proc = d.proc;
    if (proc?.pid && proc.exitCode === null && proc.signalCode === null) {
      try { process.kill(proc.pid, 'SIGCONT'); proc.kill('SIGKILL'); } catch { /* gone */ }
    }
    d.channel?.close();
    d.channel = null;
    evtchnDestroy(this, d);
    gnttabDestroy(this, d);
    d.releaseSegments();
    this.memory.releaseAll(d.domid);
    this.scheduler.domainDestroyed(d);
    this.pci.domainGone(d.domid, `d${d.domid} destroyed`);
    this.domains.delete(d.domid);
    // Xen keeps a destroyed target's domid from reuse while its device model
    // holds it; xenemu ends the device model's rights instead, so a domain
    // created later under the same domid is not its target.
    for (const o of this.domains.values()) if (o.target === d.domid) o.target = null;
    const d0 = this.domains.get(0);
    if (d0 && d !== d0) sendVirq(this, d0, VIRQ_DOM_EXC);
    this.domainsChanged();
  }

  private onDomainExit(d: Domain, proc: ChildProcess, code: number | null, signal: string | null): void {
    if (d.proc === proc) d.proc = null;
    this.domainsChanged();
    if (this.stopping) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (d.domid === 0) {
      this.console.log(`Domain-0 exited (${how}): tearing the host down`);
      void this.stop('Domain-0 died', 1);
      return;
    }
    if (d.dying) return;
    this.pci.domainGone(d.domid, `d${d.domid}'s process exited`);
    if (!d.shutdown) {
      this.console.log(`d${d.domid}: process exited (${how}) without SCHEDOP_shutdown: crashed`);
      this.shutdownDomain(d, SHUTDOWN_crash);
    } else {
      this.console.log(`d${d.domid}: process exited (${how})`);
    }
  }

  private onMessage(d: Domain, m: DomainToHypervisor): void {
    if (d.dying) return;
    switch (m.type) {
      case 'sched':
        this.scheduler.sched(d, m);
        return;
      case 'notify': {
        const rc = evtchnSend(this, d, m.port);
        if (rc < 0 && this.notifyErrors++ < 10) this.console.log(`d${d.domid}: notify port ${m.port} failed: ${rc}`);
        return;
      }
      case 'hypercall': {
        const r = dispatch(this, d, m.op, m.cmd, m.arg);
        if (r.defer) { d.suspendReply = m.id; return; }
        d.channel?.send({ type: 'reply', id: m.id, ret: r.ret, data: r.data });
        return;
      }
      case 'hello': {
        // A guest is starting: make the next one's process meanwhile (spare.ts).
        if (d.domid !== 0) this.spares.refill();
        d.channel?.send({ type: 'reply', id: m.id, ret: 0, data: this.helloOf(d) });
        return;
      }
      case 'ready': {
        if (d.domid !== 0) { d.channel?.send({ type: 'reply', id: m.id, ret: -XEN_EPERM }); return; }
        this.markReady();
        d.channel?.send({ type: 'reply', id: m.id, ret: 0 });
        return;
      }
    }
  }

  /** A host PCI device's interrupt (pci_irq.ts). */
  deviceIrq(dev: HostPciDevice, m: { intx?: 0 | 1; msi?: { addr: number; data: number }; upcall?: number }): void {
    pciIrq(this, dev, m);
  }

  helloOf(d: Domain): DomainHello {
    return {
      domid: d.domid, host: this.host, max_vcpus: d.maxVcpus, tot_pages: d.totPages, max_pages: d.maxPages,
      mem: d.segments.mem, mem_bytes: d.frames.maxPfns * PAGE_SIZE, shared_info: d.segments.shared_info,
      gnttab: d.segments.gnttab, gnttab_frames: d.maxGrantFrames, vcpu: d.segments.vcpu, start_info: d.startInfo,
      privileged: this.isPrivileged(d), ...(d.hvm ? { hvm: d.segments.hvm } : {}),
    };
  }

  private markReady(): void {
    if (this.ready) return;
    this.ready = true;
    writeFileSync(join(this.rundir, hostFiles.ready), `${new Date().toISOString()}\n`);
    this.console.log('Domain-0 ready: host is up');
    this.spares.refill();
    if (this.opts.readyFd !== undefined) {
      try { writeSync(this.opts.readyFd, 'ready\n'); closeSync(this.opts.readyFd); } catch { /* launcher gone */ }
    }
  }

  /** Keeps host.json in step with the domains and their processes. */
  domainsChanged(): void {
    if (this.stopping) return;
    const domains: Record<string, number> = {};
    for (const d of this.domains.values()) if (d.proc?.pid && d.proc.exitCode === null) domains[d.domid] = d.proc.pid;
    const rec: HostRecord = {
      name: this.host, memoryMB: this.opts.memoryMB, pcpus: this.pcpus, started: this.started,
      pids: { hypervisor: process.pid, domains, spares: this.spares.pids(), pcidevs: this.pci.pids() }, domains: this.domains.size,
      ...(this.pci.devices.size ? { pci: this.pci.records() } : {}),
    };
    try { writeHostRecord(this.rundir, rec); } catch { /* run dir removed under us */ }
  }

  private writeRecord(): void { this.domainsChanged(); }

  /**
   * Takes the host down: SIGTERM to every domain process (Dom0 first gets to
   * close its services), SIGKILL after a grace period, then the shm segments
   * and run dir files go. `graceful` false (Dom0 died) skips the grace.
   */
  stop(why: string, exitCode = 0, graceful = exitCode === 0): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.console.log(`host going down: ${why}`);
      this.scheduler.close();
      this.spares.close();
      this.privcmd.close();
      this.privcmdSock.close();
      this.pci.close();
      const procs = [...this.domains.values()].map((d) => d.proc).filter((p): p is ChildProcess => !!p && p.exitCode === null && p.signalCode === null);
      procs.push(...this.pci.procs());
      const exited = procs.map((p) => new Promise<void>((res) => {
        if (p.exitCode !== null || p.signalCode !== null) res(); else p.once('exit', () => res());
      }));
      for (const p of procs) {
        try { process.kill(p.pid!, 'SIGCONT'); p.kill(graceful ? 'SIGTERM' : 'SIGKILL'); } catch { /* gone */ }
      }
      if (graceful) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(exited), new Promise<void>((r) => { timer = setTimeout(r, TERM_GRACE_MS); })]);
        clearTimeout(timer);
        for (const p of procs) if (p.exitCode === null && p.signalCode === null) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(exited), new Promise<void>((r) => { timer = setTimeout(r, 1000); })]);
      clearTimeout(timer);
      for (const d of this.domains.values()) { d.channel?.close(); d.releaseSegments(); }
      this.domains.clear();
      shmSweep(shmPrefix(this.host));
      removeHostFiles(this.rundir, true);
      this.console.log('host down');
      process.exitCode = exitCode;
    })();
    return this.stopping;
  }
}

function readCpuKhz(): number {
  try {
    const m = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return Math.round(Number(m[1]) * 1000);
  } catch { /* not Linux */ }
  return 2_000_000;
}


