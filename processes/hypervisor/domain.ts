// struct domain: what the hypervisor knows of one domain, and the creation
// and release of its shared memory segments.
//
//   /xenemu.<host>.dom<id>.mem          pseudo-physical memory, max_pages * PAGE_SIZE
//   /xenemu.<host>.dom<id>.shared_info  one page, struct shared_info
//   /xenemu.<host>.dom<id>.gnttab       max_grant_frames pages of grant_entry_v1
//   /xenemu.<host>.dom<id>.vcpu         one page: per-vCPU runstate + slice grant (shared/abi/vcpu.ts)
//   /xenemu.<host>.dom<id>.frames       the frame table, one byte per pfn (memory.ts FrameTable), read by
//                                       the IOMMU of a host PCI device the domain owns (shared/hw/iommu.ts)
//   /xenemu.<host>.dom<id>.hvm          HVM only: ioreq servers' pages and interrupt lines
//                                       (shared/abi/hvm/xenemu_hvm.ts, hvm.ts)
//
// Segments are sparse (tmpfs): only touched pages cost host memory; the
// accounting in memory.ts is what limits domains.
import type { ChildProcess } from 'node:child_process';
import { shmCreate, shmUnlink } from '../../shared/shm.js';
import { domainSegmentNames, type DomainSegmentNames } from '../../shared/wire/hypercall.js';
import { shared_info, XEN_LEGACY_MAX_VCPUS, PAGE_SIZE } from '../../shared/abi/xen.js';
import { FrameTable } from './memory.js';
import { HvmState } from './hvm.js';
import type { EvtchnChannel } from './event_channel.js';
import type { ActiveGrant, MaptrackEntry } from './grant_table.js';
import type { DomainChannel } from './transport.js';

/**
 * A pirq of a PV domain (PHYSDEVOP_map_pirq, pci_irq.ts): a host PCI
 * device's INTx (its GSI) or an MSI of one, and the event channel it is
 * bound to (EVTCHNOP_bind_pirq; 0: none). A level INTx stays masked from its
 * delivery until PHYSDEVOP_eoi (`inFlight`).
 */
export interface PirqEntry {
  pirq: number; gsi: number | null; msiSbdf: number | null; port: number; inFlight: boolean;
  /** MAP_PIRQ_TYPE_MSI(_SEG)'s entry_nr: the MSI-X table entry (0 for MSI). */
  msiEntry?: number;
}

export const DEFAULT_MAX_GRANT_FRAMES = 32;
export const DEFAULT_MAX_EVTCHN_PORT = 1023;

export type DomainSegments = DomainSegmentNames;
export const segmentNames = domainSegmentNames;

export interface DomainConfig {
  domid: number;
  maxVcpus: number;
  totPages: number;
  maxPages: number;
  hvm: boolean;
  handle: number[];
  program: string;
  args: string[];
  maxGrantFrames: number;
  maxEvtchnPort: number;
}

export class Domain {
  readonly domid: number;
  maxVcpus: number;
  maxPages: number;
  readonly hvm: boolean;
  readonly handle: number[];
  readonly program: string;
  readonly args: string[];
  readonly segments: DomainSegments;
  readonly frames: FrameTable;
  readonly maxGrantFrames: number;
  readonly maxEvtchnPort: number;

  mem: SharedArrayBuffer | null;
  sharedInfo: SharedArrayBuffer | null;
  gnttab: SharedArrayBuffer | null;
  /** The vCPU area (runstate + slice grants); the scheduler owns what is written there. */
  vcpuArea: SharedArrayBuffer | null = null;
  /** The frame table's segment (FrameTable's bytes). */
  framesSeg: SharedArrayBuffer | null = null;
  /** Int32 and byte views of shared_info, for the atomic bitmap operations. */
  si32: Int32Array;
  si8: Uint8Array;
  gnttab32: Int32Array;

  paused = true;
  shutdown = false;
  shutdownReason = 0;
  dying = false;
  blocked = false;
  /** The process has been spawned (first unpause). */
  started = false;
  proc: ChildProcess | null = null;
  /** The scheduler's accounting, once the hypervisor has one (cpu_time, online vCPUs). */
  sched: { cpuTimeNs(d: Domain): number; onlineVcpus(d: Domain): number } | null = null;
  channel: DomainChannel | null = null;
  startInfo = 0;
  /** The pending reply to this domain's SCHEDOP_shutdown(suspend), sent at resume. */
  suspendReply: number | null = null;
  /** XEN_DOMCTL_set_target: the domain this one is the device model of (stub domains), or null. */
  target: number | null = null;
  /** HVM parameters, ioreq servers and interrupt lines (hvm.ts); null for PV. */
  hvmState: HvmState | null = null;
  readonly created = process.hrtime.bigint();

  /** Event channel ports; index = port. Port 0 is reserved, as in Xen. */
  readonly ports: (EvtchnChannel | undefined)[] = [];
  readonly virqToPort = new Map<number, number>();
  /** More ports of a global VIRQ (XENEMU_EVTCHNOP_bind_virq_listener): virq -> ports. */
  readonly virqListeners = new Map<number, Set<number>>();
  /** Physical interrupts mapped into this domain (pci_irq.ts). */
  readonly pirqs = new Map<number, PirqEntry>();
  /** Grants of this domain currently mapped by someone: ref -> pins. */
  readonly activeGrants = new Map<number, ActiveGrant>();
  /** Grants this domain has mapped: handle -> entry. */
  readonly maptrack = new Map<number, MaptrackEntry>();
  nextHandle = 1;
  /**
   * Log-dirty (log_dirty.ts): the frames others wrote through the
   * hypervisor since the last XEN_DOMCTL_SHADOW_OP_CLEAN; null while off.
   */
  logDirty: Set<number> | null = null;

  constructor(host: string, cfg: DomainConfig) {
    this.domid = cfg.domid;
    this.maxVcpus = cfg.maxVcpus;
    this.maxPages = cfg.maxPages;
    this.hvm = cfg.hvm;
    this.handle = cfg.handle;
    this.program = cfg.program;
    this.args = cfg.args;
    this.maxGrantFrames = cfg.maxGrantFrames;
    this.maxEvtchnPort = cfg.maxEvtchnPort;
    this.segments = segmentNames(host, cfg.domid);
    // A leftover segment of the same name (a crashed earlier host of that
    // name) must not leak its content into a new domain.
    for (const s of Object.values(this.segments)) shmUnlink(s);
    this.mem = shmCreate(this.segments.mem, cfg.maxPages * PAGE_SIZE);
    try {
      this.sharedInfo = shmCreate(this.segments.shared_info, PAGE_SIZE);
      this.gnttab = shmCreate(this.segments.gnttab, cfg.maxGrantFrames * PAGE_SIZE);
      this.vcpuArea = shmCreate(this.segments.vcpu, PAGE_SIZE);
      this.framesSeg = shmCreate(this.segments.frames, Math.ceil(cfg.maxPages / PAGE_SIZE) * PAGE_SIZE);
      if (cfg.hvm) this.hvmState = new HvmState(this.segments.hvm);
    } catch (e) {
      for (const s of Object.values(this.segments)) shmUnlink(s);
      throw e;
    }
    this.si32 = new Int32Array(this.sharedInfo);
    this.si8 = new Uint8Array(this.sharedInfo);
    this.gnttab32 = new Int32Array(this.gnttab);
    this.frames = new FrameTable(cfg.maxPages, this.framesSeg!);
    this.frames.populate(cfg.totPages);
    this.ports[0] = { state: 'reserved', remoteDom: 0, remotePort: 0, virq: -1, notifyVcpu: 0 };
    const now = Date.now();
    const dv = new DataView(this.sharedInfo);
    dv.setUint32(shared_info.wc_sec, Math.floor(now / 1000), true);
    dv.setUint32(shared_info.wc_nsec, (now % 1000) * 1e6, true);
    dv.setBigUint64(shared_info.arch, BigInt(cfg.maxPages), true); // arch.max_pfn
  }

  get totPages(): number { return this.frames.populated; }

  get gnttabEntries(): number { return (this.maxGrantFrames * PAGE_SIZE) / 8; }

  get running(): boolean { return this.started && !this.paused && !this.shutdown && !this.dying; }

  /** Nanoseconds since creation while running; the scheduler seam will refine it. */
  cpuTimeNs(): number {
    return this.started ? Number(process.hrtime.bigint() - this.created) : 0;
  }

  /** Unlinks the segments and drops the hypervisor's mappings. */
  releaseSegments(): void {
    for (const s of Object.values(this.segments)) shmUnlink(s);
    this.mem = null;
    this.sharedInfo = null;
    this.gnttab = null;
    this.vcpuArea = null;
    this.framesSeg = null;
    this.hvmState = null;
    this.si32 = new Int32Array(0);
    this.si8 = new Uint8Array(0);
    this.gnttab32 = new Int32Array(0);
  }
}

export function clampVcpus(n: number): number {
  return Math.max(1, Math.min(XEN_LEGACY_MAX_VCPUS, Math.floor(n)));
}
