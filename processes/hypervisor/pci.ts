// The hypervisor's PCI registry (docs/passthrough.md): the host's devices,
// one process each (processes/pcidev), who owns each, and the IOMMU context
// and BAR channel that follow the owner.
//
//   boot ──> for each --pci: BAR channel segment, control socket, spawn
//            `xenemu-pcidev <model> bdf=<bdf> host=H` with a lifeline; wait for hello
//   hello / owner change ──> context {owner, mem, frames, sharedInfo, key, slots} (the device resets)
//   the owner's MSI pirqs bound / unbound ──> the posted-interrupt table (pci_irq.ts publishPosted)
//   device exits ──> gone: its channel's `gone` word, every slot woken (the
//            owner's next access reads all-ones), a log line, host.json
//   owner dies or is destroyed ──> quarantine
//
// Owners: 0 (Domain-0, the hardware domain, at boot), a guest's domid, or
// null for quarantine (Xen's dom_io). The transitions and their checks are
// pci_domctl.ts's.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import * as zmq from 'zeromq';
import { futexWake, shmCreate, shmUnlink } from '../../shared/shm.js';
import { hostFiles, type PciRecord } from '../../shared/host.js';
import { lifelineEnv, lifelineStdio } from '../../shared/runtime/lifeline.js';
import { domainExtraNodeFlags } from '../../shared/runtime/node_flags.js';
import { nodeTitleArgs, pcidevTitle } from '../../shared/runtime/title.js';
import { ZmqOutbox } from '../../shared/runtime/zmq_outbox.js';
import { IOREQ_STATE_WORD } from '../../shared/abi/hvm/ioreq.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { BAR_MAGIC, BAR_MAX_SLOTS, BAR_SEGMENT_SIZE, bar_channel, barSlotOffset } from '../../shared/hw/bar_channel.js';
import {
  bdfOfIndex, decodePciMessage, encodePciMessage, formatPciSpec, parseBdf, pciBarSegment, pciConfigSocket, pciControlEndpoint, pciDir, pciIrqSocket,
  type HypervisorToPciDev, type PciDevHello, type PciDevToHypervisor, type PciSpec,
} from '../../shared/wire/pcidev.js';
import type { Domain } from './domain.js';
import { PostedIrqTable, pciPostedSegment } from '../../shared/hw/posted_irq.js';
import { publishPosted } from './pci_irq.js';

/** How long boot waits for every device's hello before Domain-0 starts without the missing ones. */
const HELLO_TIMEOUT_MS = 15_000;

/** What a domain was allowed and given (XEN_DOMCTL_*_permission, *_mapping, bind_pt_irq). */
export interface PciGrants {
  irqs: Set<number>;
  iomem: { first: number; nr: number }[];
  ioports: { first: number; nr: number }[];
  memoryMappings: { gfn: number; mfn: number; nr: number }[];
  ioportMappings: { gport: number; mport: number; nr: number }[];
  /** PT_IRQ_TYPE_PCI: the guest's bus-0 device and pin the machine irq (a GSI) drives. */
  /** bind_pt_irq's bindings: PT_IRQ_TYPE_PCI a GSI to the guest's device/pin; PT_IRQ_TYPE_MSI a pirq to the guest's vector and flags. */
  ptIrqs: { machine_irq: number; irq_type: number; device: number; intx: number; gvec?: number; gflags?: number }[];
}

export interface PciHost {
  readonly host: string;
  readonly rundir: string;
  readonly domains: Map<number, Domain>;
  readonly console: { log(m: string): void };
  domainsChanged(): void;
  /** INTx level / MSI of a device, or an upcall a posted MSI needs, to its owner (pci_irq.ts). */
  deviceIrq(dev: HostPciDevice, m: { intx?: 0 | 1; msi?: { addr: number; data: number }; upcall?: number }): void;
}

export class HostPciDevice {
  readonly sbdf: number;
  proc: ChildProcess | null = null;
  hello: PciDevHello | null = null;
  owner: number | null = 0;
  gone = false;
  key = 0;
  readonly faults = { iommu: 0, quarantine: 0 };
  readonly msi = { posted: 0, relayed: 0 };
  intx: 0 | 1 = 0;
  readonly seg: SharedArrayBuffer;
  readonly segment: string;
  /** Which of its MSIs the device posts to its owner's ports itself (shared/hw/posted_irq.ts). */
  readonly posted: PostedIrqTable;
  private readonly sock = new zmq.Pair({ linger: 0 });
  private readonly outbox: ZmqOutbox;
  readonly endpoint: string;
  private helloWaiters: (() => void)[] = [];

  constructor(readonly bdf: string, readonly spec: PciSpec, private readonly reg: PciRegistry) {
    this.sbdf = parseBdf(bdf)!;
    this.segment = pciBarSegment(reg.hv.host, bdf);
    shmUnlink(this.segment);
    this.seg = shmCreate(this.segment, BAR_SEGMENT_SIZE);
    Atomics.store(new Int32Array(this.seg), bar_channel.magic >> 2, BAR_MAGIC);
    this.posted = PostedIrqTable.create(pciPostedSegment(reg.hv.host, bdf));
    this.endpoint = pciControlEndpoint(reg.hv.rundir, bdf);
    this.outbox = new ZmqOutbox(this.sock, (e) => reg.hv.console.log(`pci ${bdf}: send failed: ${(e as Error).message}`));
  }

  get model(): string { return this.spec.model; }

  async bind(): Promise<void> {
    try { unlinkSync(this.endpoint.slice('ipc://'.length)); } catch { /* not there */ }
    await this.sock.bind(this.endpoint);
    void this.serve();
  }

  private async serve(): Promise<void> {
    try {
      for await (const [frame] of this.sock) {
        const m = decodePciMessage<PciDevToHypervisor>(frame as Buffer);
        if (!m) { this.reg.hv.console.log(`pci ${this.bdf}: dropped a malformed message`); continue; }
        try { this.reg.onMessage(this, m); } catch (e) { this.reg.hv.console.log(`pci ${this.bdf}: handler threw: ${(e as Error).stack}`); }
      }
    } catch { /* closed */ }
  }

  send(m: HypervisorToPciDev): void { this.outbox.send(encodePciMessage(m)); }

  helloSeen(): Promise<void> {
    if (this.hello || this.gone) return Promise.resolve();
    return new Promise((r) => this.helloWaiters.push(r));
  }

  wakeHelloWaiters(): void {
    for (const w of this.helloWaiters.splice(0)) w();
  }

  /** The channel says gone; every slot's waiter is woken to see it. */
  markGone(): void {
    this.gone = true;
    const i32 = new Int32Array(this.seg);
    Atomics.store(i32, bar_channel.gone >> 2, 1);
    for (let s = 0; s < BAR_MAX_SLOTS; s++) futexWake(this.seg, barSlotOffset(s) + IOREQ_STATE_WORD, 8);
    this.wakeHelloWaiters();
  }

  close(): void {
    this.outbox.close();
    this.sock.close();
    try { unlinkSync(this.endpoint.slice('ipc://'.length)); } catch { /* gone */ }
  }
}

export function ownerName(owner: number | null): string {
  return owner === null ? 'quarantine' : owner === 0 ? 'Domain-0' : `d${owner}`;
}

export class PciRegistry {
  readonly devices = new Map<number, HostPciDevice>();
  readonly grants = new Map<number, PciGrants>();
  private closed = false;

  constructor(readonly hv: PciHost, private readonly program: string) {}

  /** Spawns a process per spec, BDFs from 0000:03:00.0 on, and waits for their hello. */
  async start(specs: PciSpec[]): Promise<void> {
    if (!specs.length) return;
    mkdirSync(pciDir(this.hv.rundir), { recursive: true });
    const devs = specs.map((s, i) => new HostPciDevice(bdfOfIndex(i), s, this));
    for (const d of devs) {
      this.devices.set(d.sbdf, d);
      await d.bind();
      this.spawn(d);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(devs.map((d) => d.helloSeen())), new Promise<void>((r) => { timer = setTimeout(r, HELLO_TIMEOUT_MS); })]);
    clearTimeout(timer);
    for (const d of devs) if (!d.hello && !d.gone) this.hv.console.log(`pci ${d.bdf}: no hello within ${HELLO_TIMEOUT_MS} ms`);
  }

  private spawn(d: HostPciDevice): void {
    const rundir = this.hv.rundir;
    const log = openSync(join(rundir, hostFiles.logs, `pcidev-${d.bdf}.log`), 'a');
    try {
      const env = lifelineEnv({ ...process.env, XENEMU_HOST: this.hv.host, XENEMU_HOST_DIR: rundir, XENEMU_PCIDEV_CTL: d.endpoint });
      delete env.XENEMU_READY_FD;
      const title = pcidevTitle(this.hv.host, d.model, d.bdf);
      // XENEMU_DOMAIN_NODE_FLAGS as for a domain: the benchmarks profile the device with its owner.
      const proc = spawn(process.execPath, [...nodeTitleArgs(title), ...domainExtraNodeFlags(), this.program, '--host', this.hv.host, '--rundir', rundir,
                                            '--bdf', d.bdf, '--pci', formatPciSpec(d.spec)],
                         { stdio: lifelineStdio(log, log), env, cwd: rundir, argv0: title });
      d.proc = proc;
      proc.on('error', (e) => this.hv.console.log(`pci ${d.bdf}: spawn failed: ${e.message}`));
      proc.on('exit', (code, signal) => this.onExit(d, proc, code, signal));
      this.hv.console.log(`pci ${d.bdf}: ${formatPciSpec(d.spec)} started as pid ${proc.pid}`);
    } finally {
      closeSync(log);
    }
  }

  private onExit(d: HostPciDevice, proc: ChildProcess, code: number | null, signal: string | null): void {
    if (d.proc === proc) d.proc = null;
    d.markGone();
    // A device killed outright could not remove its sockets: Domain-0's programs and the owner find none rather than a dead one.
    for (const path of [pciConfigSocket(this.hv.rundir, d.bdf), pciIrqSocket(this.hv.rundir, d.bdf)]) {
      try { unlinkSync(path); } catch { /* it did, or the run dir is going */ }
    }
    if (this.closed) return;
    this.hv.console.log(`pci ${d.bdf}: device process exited (${signal ? `signal ${signal}` : `code ${code}`}): ` +
                        `the device is gone${d.owner !== null && d.owner !== 0 ? `; its owner d${d.owner} reads all-ones` : ''}`);
    this.hv.domainsChanged();
  }

  onMessage(d: HostPciDevice, m: PciDevToHypervisor): void {
    switch (m.type) {
      case 'hello':
        if (m.bdf !== d.bdf) { this.hv.console.log(`pci ${d.bdf}: hello names ${m.bdf}: ignored`); return; }
        d.hello = m;
        this.hv.console.log(`pci ${d.bdf}: ${m.model} ${hex4(m.vendor)}:${hex4(m.device)}, BARs ` +
                            `${m.bars.map((b) => `${b.index}:${b.kind}/${b.size}`).join(' ')}, owner ${ownerName(d.owner)}`);
        this.programContext(d);
        d.wakeHelloWaiters();
        this.hv.domainsChanged();
        return;
      case 'irq':
        this.hv.deviceIrq(d, m);
        return;
      case 'faults':
        d.faults.iommu = m.iommu;
        d.faults.quarantine = m.quarantine;
        this.hv.console.log(`pci ${d.bdf}: ${m.last} (${m.iommu} iommu faults, ${m.quarantine} quarantined DMAs)`);
        this.hv.domainsChanged();
        return;
      case 'msi':
        d.msi.posted = m.posted;
        d.msi.relayed = m.relayed;
        this.hv.domainsChanged();
        return;
    }
  }

  /**
   * Programs the device's context for its owner: Domain-0 and quarantine
   * get no DMA into any guest (Domain-0 runs no driver of it: its DMA is
   * quarantined as well), a guest its memory and frame table.
   */
  private programContext(d: HostPciDevice): void {
    const o = d.owner !== null && d.owner !== 0 ? this.hv.domains.get(d.owner) : undefined;
    if (o && !o.dying && o.mem) {
      d.send({ type: 'context', owner: o.domid, mem: o.segments.mem, memBytes: o.frames.maxPfns * PAGE_SIZE,
               frames: o.segments.frames, maxPfns: o.frames.maxPfns, key: d.key, slots: o.maxVcpus + 1,
               ...(o.hvm ? {} : { sharedInfo: o.segments.shared_info }) });
    } else {
      d.send({ type: 'context', owner: d.owner === 0 ? 0 : null, key: 0, slots: 0 });
    }
  }

  /** Moves a device to `owner` (null: quarantine): new key, new context (the device resets). */
  setOwner(d: HostPciDevice, owner: number | null, why: string): void {
    const was = d.owner;
    d.owner = owner;
    d.key = owner !== null && owner !== 0 ? randomInt(1, 0x7fffffff) : 0;
    d.intx = 0;
    // The former owner's bindings go before anything else of the new owner's is set up.
    publishPosted(this.hv, d);
    this.hv.console.log(`pci ${d.bdf}: ${ownerName(was)} -> ${ownerName(owner)} (${why})`);
    if (!d.gone && d.hello) this.programContext(d);
    this.hv.domainsChanged();
  }

  grantsOf(domid: number): PciGrants {
    let g = this.grants.get(domid);
    if (!g) {
      g = { irqs: new Set(), iomem: [], ioports: [], memoryMappings: [], ioportMappings: [], ptIrqs: [] };
      this.grants.set(domid, g);
    }
    return g;
  }

  /** The owner died or was destroyed: its devices go to quarantine, its grants go. */
  domainGone(domid: number, why: string): void {
    if (domid === 0) return;
    for (const d of this.devices.values()) if (d.owner === domid) this.setOwner(d, null, why);
    this.grants.delete(domid);
  }

  /** `d` bound, unbound or unmapped a pirq: the posted-interrupt tables of its devices follow. */
  pirqsChanged(d: Domain): void {
    for (const dev of this.devices.values()) if (dev.owner === d.domid) publishPosted(this.hv, dev);
  }

  /** Whether `domid` owns a device (has_arch_pdevs). */
  owns(domid: number): boolean {
    for (const d of this.devices.values()) if (d.owner === domid) return true;
    return false;
  }

  records(): PciRecord[] {
    return [...this.devices.values()].map((d) => ({
      bdf: d.bdf, model: d.model, spec: formatPciSpec(d.spec), owner: ownerName(d.owner),
      state: d.gone ? 'gone' : d.hello ? 'running' : 'starting', pid: d.proc?.pid ?? 0,
      faults: { ...d.faults }, msi: { ...d.msi },
      ...(d.hello?.tap ? { tap: d.hello.tap } : {}),
    }));
  }

  pids(): number[] {
    const out: number[] = [];
    for (const d of this.devices.values()) {
      const p = d.proc;
      if (p?.pid && p.exitCode === null && p.signalCode === null) out.push(p.pid);
    }
    return out;
  }

  /** The device processes, for the host's stop. */
  procs(): ChildProcess[] {
    return [...this.devices.values()].map((d) => d.proc).filter((p): p is ChildProcess => !!p && p.exitCode === null && p.signalCode === null);
  }

  close(): void {
    this.closed = true;
    for (const d of this.devices.values()) d.close();
  }
}

const hex4 = (v: number) => v.toString(16).padStart(4, '0');
