// The slice mechanism: pCPUs, grants, revocation, runstate accounting, and
// Xen's preemption made real with SIGSTOP, hard affinity, and the measure of
// the real running time a policy debits. Who runs next is a SchedPolicy's
// choice (sched_credit.ts, the default; sched_rr.ts); everything else is here.
//
// A vCPU's worker thread runs guest work only while the grant word of its
// slot in the vCPU area (shared/abi/vcpu.ts) holds a generation it has not
// given back. The hypervisor cannot Atomics.notify another process, so a
// grant is a store plus a `slice` message whose handler in the domain does
// the notify:
//
//   hypervisor                         domain main thread        vCPU worker
//   grant: grant=g, deadline, timer
//     |------ slice {vcpu, g} -------------->| Atomics.notify ---->| runs units
//   slice end (timer): grant=0, grace timer                        | sees grant != g
//     |<----- sched {release, vcpu, g} ------|<-- doorbell --------| held=0, released=g
//   release: account, pick next, grant ...
//   grace end, held == g:  SIGSTOP the domain, charge the vCPU, requeue it;
//   when that vCPU is picked again: SIGCONT, new grant.
//
// While a domain is held stopped only the vCPU that ignored the revocation
// may resume it, so a guest that never yields still gets exactly its share.
// No polling: the only timers are one per busy pCPU (slice end or grace end).
//
// Domains that never sent XENEMU_VCPUOP_register_slice_area (Dom0 services,
// guests without a VcpuPool) are not sliced: their process runs freely and
// vCPU 0's runstate follows SCHEDOP_block and events, as before.
import { XEN_LEGACY_MAX_VCPUS } from '../../shared/abi/xen.js';
import { XEN_EINVAL, XEN_ENOENT } from '../../shared/abi/errno.js';
import {
  RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running, XEN_RUNSTATE_UPDATE,
  XENEMU_VCPU_SLOT_SIZE, runstateOffset, vcpu_runstate_info, vcpuWord, xenemu_vcpu_slot, type VcpuRunstateInfo,
} from '../../shared/abi/vcpu.js';
import type { xen_domctl_getvcpuinfo } from '../../shared/abi/domctl.js';
import type { SchedRequest } from '../../shared/wire/hypercall.js';
import type { Domain } from './domain.js';
import type { Scheduler } from './sched.js';

export const DEFAULT_SLICE_MS = 30;
/**
 * How long a vCPU has to give its pCPU back after a revocation. An honest
 * worker notices within one work unit (1 ms) plus a message; the rest is for
 * a host whose own CPUs are busy with other things.
 */
export const DEFAULT_GRACE_MS = 40;

/** What a policy decides on; the mechanism owns every field but `policy`. */
export class SchedVcpu {
  online = true;
  /** Has work: runnable or running (false = blocked). */
  wantsRun = false;
  /** pCPU held now, -1 when none. */
  pcpu = -1;
  lastPcpu = -1;
  /** Generation of the last grant (the current one while pcpu >= 0). */
  gen = 0;
  /** The grant was revoked; waiting for the release until the grace timer. */
  revoking = false;
  revokedAt = 0n;
  /**
   * The slice was extended at its end because nobody of its priority or
   * better waited (Xen's csched_schedule picking the same vCPU again).
   */
  extended = false;
  state = RUNSTATE_offline;
  entry = 0n;
  readonly time: [bigint, bigint, bigint, bigint] = [0n, 0n, 0n, 0n];
  slices = 0;
  preempts = 0;
  stolen = 0n;
  /** Hard affinity (XEN_DOMCTL_setvcpuaffinity): bit p set = may run on pCPU p. */
  affinity = ALL_CPUS;
  /** Parked by the policy (a capped vCPU that used its cap): not runnable, runstate offline. */
  parked = false;
  /** When the current slice was granted, and up to when its time has been charged (settle). */
  grantedAt = 0n;
  ranSince = 0n;
  /** Policy's own per-vCPU data (queue membership, credit, ...). */
  policy: unknown = null;
  constructor(readonly dom: SchedDomain, readonly id: number) {}
}

export class SchedDomain {
  /** Sliced: registered its vCPU area (XENEMU_VCPUOP_register_slice_area). */
  sliced = false;
  /** Its process is held SIGSTOPped because `rogue` kept its pCPU after a revocation. */
  stopped = false;
  rogue: SchedVcpu | null = null;
  /** Policy's own per-domain data (weight, cap, ...). */
  policy: unknown = null;
  readonly vcpus: SchedVcpu[] = [];
  readonly dv: DataView;
  readonly i32: Int32Array;
  readonly u64: BigUint64Array;
  constructor(readonly d: Domain) {
    const area = d.vcpuArea ?? new SharedArrayBuffer(XEN_LEGACY_MAX_VCPUS * XENEMU_VCPU_SLOT_SIZE);
    this.dv = new DataView(area);
    this.i32 = new Int32Array(area);
    this.u64 = new BigUint64Array(area);
    for (let i = 0; i < XEN_LEGACY_MAX_VCPUS; i++) this.vcpus.push(new SchedVcpu(this, i));
  }
  /** The domain may be given pCPUs at all. */
  get runs(): boolean { return this.sliced && this.d.running; }
}

/** What the mechanism offers a policy (given once, by attach). */
export interface SchedHooks {
  readonly pcpus: number;
  now(): bigint;
  /** The vCPU holding pCPU p, or null. */
  current(p: number): SchedVcpu | null;
  /** Debits v (policy.burn) with the running time since its last charge; v must hold a pCPU. */
  settle(v: SchedVcpu): void;
  /** Revokes pCPU p's slice now (as at slice end); the policy picks again on the release. */
  preempt(p: number): void;
  /** Parks or unparks v: a parked vCPU is not runnable (a running one is revoked). */
  setParked(v: SchedVcpu, parked: boolean): void;
  /** v's thread runs guest code under its current grant now (the guest's `held` word). */
  inGuest(v: SchedVcpu): boolean;
}

/** Domain parameters of XEN_DOMCTL_scheduler_op (credit: weight and cap). */
export interface SchedDomainParams { weight: number; cap: number }
/** Host parameters of XEN_SYSCTL_scheduler_op (credit: tslice_ms, ratelimit_us). */
export interface SchedGlobalParams { tslice_ms: number; ratelimit_us: number }

export interface SchedPolicy {
  readonly name: string;
  /** XEN_SCHEDULER_* (domctl.h). */
  readonly schedId: number;
  attach?(hooks: SchedHooks): void;
  /** v became runnable (woken, gave its slice back, was preempted or unpaused); `woken`: from blocked. */
  enqueue(v: SchedVcpu, pcpus: number, woken?: boolean): void;
  /** v leaves the run queues (blocked, paused, down, destroyed, or picked). */
  dequeue(v: SchedVcpu): void;
  /** Removes and returns the next vCPU for pCPU `p` among those `eligible`. */
  pick(p: number, eligible: (v: SchedVcpu) => boolean): SchedVcpu | null;
  /** Should `cur` give pCPU `p` up at its slice end for an eligible waiter? (If not, the slice is extended.) */
  waiting(p: number, eligible: (v: SchedVcpu) => boolean, cur: SchedVcpu): boolean;
  sliceMs(v: SchedVcpu): number;
  /** v ran `ns` of real time (measured by the mechanism, including time held past a revocation). */
  burn?(v: SchedVcpu, ns: bigint): void;
  /** The domain's vCPUs are going away. */
  domainRemoved?(sd: SchedDomain): void;
  getDomainParams?(sd: SchedDomain): SchedDomainParams;
  /** 0 or -XEN_EINVAL. */
  putDomainParams?(sd: SchedDomain, p: Partial<SchedDomainParams>): number;
  getGlobals?(): SchedGlobalParams;
  putGlobals?(p: Partial<SchedGlobalParams>): number;
  close?(): void;
}

/**
 * The timers the mechanism and the policy run on: the host's by default; a
 * simulation with its own clock (test/sched/credit_sim.test.ts) drives both
 * deterministically.
 */
export interface SchedTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(h: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(h: unknown): void;
}

export const HOST_TIMERS: SchedTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

/** Every pCPU (pcpus <= 64). */
export const ALL_CPUS = (1n << 64n) - 1n;

interface Pcpu { id: number; cur: SchedVcpu | null; timer: unknown }

export interface SliceSchedulerOptions {
  pcpus: number;
  policy: SchedPolicy;
  graceMs?: number;
  log: (m: string) => void;
  /** Sends `slice` to the domain (its main thread notifies the worker). */
  notify: (d: Domain, vcpu: number, gen: number) => void;
  /** Signals the domain's process; false when it is gone. */
  signal?: (d: Domain, sig: 'SIGSTOP' | 'SIGCONT') => boolean;
  now?: () => bigint;
  timers?: SchedTimers;
}

const N = BigInt;

export class SliceScheduler implements Scheduler {
  readonly name: string;
  private readonly pcpus: Pcpu[] = [];
  private readonly doms = new Map<Domain, SchedDomain>();
  private readonly policy: SchedPolicy;
  private readonly graceMs: number;
  private readonly now: () => bigint;
  private readonly timers: SchedTimers;
  private readonly eligible = (v: SchedVcpu) =>
    v.online && v.wantsRun && !v.parked && v.pcpu < 0 && v.dom.runs && (!v.dom.stopped || v.dom.rogue === v);
  /** eligible, and allowed on pCPU p by its hard affinity. */
  private readonly eligibleAt: ((v: SchedVcpu) => boolean)[] = [];

  constructor(private readonly o: SliceSchedulerOptions) {
    this.policy = o.policy;
    this.name = o.policy.name;
    this.graceMs = o.graceMs ?? DEFAULT_GRACE_MS;
    this.now = o.now ?? (() => process.hrtime.bigint());
    this.timers = o.timers ?? HOST_TIMERS;
    for (let i = 0; i < o.pcpus; i++) {
      this.pcpus.push({ id: i, cur: null, timer: null });
      const bit = 1n << N(i);
      this.eligibleAt.push((v) => (v.affinity & bit) !== 0n && this.eligible(v));
    }
    this.policy.attach?.({
      pcpus: o.pcpus,
      now: this.now,
      current: (p) => this.pcpus[p]?.cur ?? null,
      settle: (v) => this.settle(v),
      preempt: (p) => { const pc = this.pcpus[p]; if (pc?.cur && !pc.cur.revoking) this.revoke(pc); },
      setParked: (v, parked) => this.setParked(v, parked),
      inGuest: (v) => v.pcpu >= 0 && Atomics.load(v.dom.i32, vcpuWord(v.id, 'held')) === v.gen,
    });
  }

  get schedId(): number { return this.policy.schedId; }

  // ---- domain lifecycle ----------------------------------------------------

  domainCreated(d: Domain): void {
    const sd = new SchedDomain(d);
    this.doms.set(d, sd);
    const now = this.now();
    for (const v of sd.vcpus) {
      v.online = v.id < d.maxVcpus;
      v.entry = now;
      // Until the domain registers for slices, vCPU 0 stands for its process.
      this.writeSlot(v);
    }
  }

  domainDestroyed(d: Domain): void {
    const sd = this.doms.get(d);
    if (!sd) return;
    for (const v of sd.vcpus) {
      this.policy.dequeue(v);
      if (v.pcpu >= 0) this.vacate(v, false);
    }
    this.policy.domainRemoved?.(sd);
    this.doms.delete(d);
    this.scheduleIdle();
  }

  domainUnpaused(d: Domain): void {
    const sd = this.doms.get(d);
    if (!sd) return;
    if (!sd.sliced) d.blocked = false;
    for (const v of sd.vcpus) if (this.eligible(v)) this.policy.enqueue(v, this.pcpus.length);
    this.updateAll(sd);
    this.scheduleIdle();
  }

  domainPaused(d: Domain): void {
    const sd = this.doms.get(d);
    if (!sd) return;
    for (const v of sd.vcpus) {
      this.policy.dequeue(v);
      if (v.pcpu >= 0) this.vacate(v, false);
    }
    this.updateAll(sd);
    this.scheduleIdle();
  }

  mayContinue(d: Domain): boolean { return !this.doms.get(d)?.stopped; }

  registerSliceArea(d: Domain): number {
    const sd = this.doms.get(d);
    if (!sd) return -XEN_EINVAL;
    if (sd.sliced) return 0;
    sd.sliced = true;
    // Every vCPU starts blocked: the domain wakes those that have work.
    for (const v of sd.vcpus) v.wantsRun = false;
    this.updateAll(sd);
    this.o.log(`d${d.domid}: vCPUs run in ${this.policy.name} slices of ${this.policy.sliceMs(sd.vcpus[0])} ms`);
    return 0;
  }

  // ---- vCPU events -----------------------------------------------------------

  wake(d: Domain, vcpu: number): void {
    const sd = this.doms.get(d);
    if (!sd) return;
    // A sliced domain's vCPUs are woken by the domain itself (it knows when
    // there is work); an event only wakes its main thread, which runs freely.
    if (sd.sliced) return;
    d.blocked = false;
    this.update(sd.vcpus[vcpu] ?? sd.vcpus[0]);
  }

  block(d: Domain, vcpu: number, gen = 0): void {
    const sd = this.doms.get(d);
    if (!sd) return;
    if (!sd.sliced) { d.blocked = true; this.update(sd.vcpus[0]); return; }
    this.vcpuBlock(sd.vcpus[vcpu], gen);
  }

  yield(d: Domain, vcpu: number, gen = 0): void {
    const sd = this.doms.get(d);
    if (!sd?.sliced) return;
    const v = sd.vcpus[vcpu];
    this.release(v, gen || v.gen);
  }

  sched(d: Domain, m: SchedRequest): void {
    const sd = this.doms.get(d);
    if (!sd?.sliced || m.vcpu < 0 || m.vcpu >= d.maxVcpus) return;
    const v = sd.vcpus[m.vcpu];
    switch (m.op) {
      case 'wake': return this.vcpuWake(v);
      case 'block': return this.vcpuBlock(v, m.gen);
      case 'release': return this.release(v, m.gen);
    }
  }

  vcpuUp(d: Domain, vcpu: number): number {
    const sd = this.doms.get(d);
    if (!sd) return -XEN_EINVAL;
    if (vcpu < 0 || vcpu >= d.maxVcpus) return -XEN_ENOENT;
    const v = sd.vcpus[vcpu];
    if (v.online) return 0;
    v.online = true;
    v.wantsRun = false;
    this.update(v);
    this.o.log(`d${d.domid}: vCPU ${vcpu} up`);
    return 0;
  }

  vcpuDown(d: Domain, vcpu: number): number {
    const sd = this.doms.get(d);
    if (!sd) return -XEN_EINVAL;
    if (vcpu < 0 || vcpu >= d.maxVcpus) return -XEN_ENOENT;
    const v = sd.vcpus[vcpu];
    if (!v.online) return 0;
    v.online = false;
    v.wantsRun = false;
    this.policy.dequeue(v);
    if (v.pcpu >= 0) this.vacate(v, false);
    this.update(v);
    this.o.log(`d${d.domid}: vCPU ${vcpu} down`);
    this.scheduleIdle();
    return 0;
  }

  vcpuIsUp(d: Domain, vcpu: number): boolean {
    return vcpu >= 0 && vcpu < d.maxVcpus && !!this.doms.get(d)?.vcpus[vcpu].online;
  }

  runstate(d: Domain, vcpu: number): VcpuRunstateInfo {
    const v = this.doms.get(d)!.vcpus[vcpu];
    const now = this.now();
    const time = [...v.time] as [bigint, bigint, bigint, bigint];
    time[v.state] += now - v.entry;
    return { state: v.state, state_entry_time: v.entry, time };
  }

  vcpuInfo(d: Domain, vcpu: number): xen_domctl_getvcpuinfo {
    const v = this.doms.get(d)!.vcpus[vcpu];
    const r = this.runstate(d, vcpu);
    return {
      vcpu, online: v.online ? 1 : 0, blocked: v.state === RUNSTATE_blocked ? 1 : 0,
      running: v.state === RUNSTATE_running ? 1 : 0, cpu_time: Number(r.time[RUNSTATE_running]),
      cpu: Math.max(0, v.pcpu >= 0 ? v.pcpu : v.lastPcpu),
    };
  }

  onlineVcpus(d: Domain): number {
    const sd = this.doms.get(d);
    return sd ? sd.vcpus.filter((v) => v.online && v.id < d.maxVcpus).length : 0;
  }

  cpuTimeNs(d: Domain): number {
    const sd = this.doms.get(d);
    if (!sd) return 0;
    let t = 0n;
    for (const v of sd.vcpus) if (v.id < d.maxVcpus) t += this.runstate(d, v.id).time[RUNSTATE_running];
    return Number(t);
  }

  close(): void {
    for (const p of this.pcpus) { if (p.timer) this.timers.clearTimeout(p.timer); p.timer = null; }
    this.policy.close?.();
  }

  // ---- parameters (XEN_DOMCTL_scheduler_op, XEN_SYSCTL_scheduler_op, vcpuaffinity) ----

  getDomainParams(d: Domain): SchedDomainParams | null {
    const sd = this.doms.get(d);
    return sd && this.policy.getDomainParams ? this.policy.getDomainParams(sd) : null;
  }

  putDomainParams(d: Domain, p: Partial<SchedDomainParams>): number {
    const sd = this.doms.get(d);
    if (!sd || !this.policy.putDomainParams) return -XEN_EINVAL;
    return this.policy.putDomainParams(sd, p);
  }

  getGlobals(): SchedGlobalParams | null { return this.policy.getGlobals?.() ?? null; }

  putGlobals(p: Partial<SchedGlobalParams>): number {
    return this.policy.putGlobals ? this.policy.putGlobals(p) : -XEN_EINVAL;
  }

  getAffinity(d: Domain, vcpu: number): bigint {
    return this.doms.get(d)?.vcpus[vcpu]?.affinity ?? ALL_CPUS;
  }

  /**
   * Hard affinity; a mask naming no pCPU of this host is -EINVAL. A vCPU
   * running on a pCPU now outside it is revoked (its release queues it on an
   * allowed pCPU); a queued one moves to an allowed pCPU's queue at once
   * (vcpu_set_hard_affinity, vcpu_migrate).
   */
  setAffinity(d: Domain, vcpu: number, mask: bigint): number {
    const sd = this.doms.get(d);
    if (!sd) return -XEN_EINVAL;
    if (vcpu < 0 || vcpu >= d.maxVcpus) return -XEN_ENOENT;
    const host = (1n << N(this.pcpus.length)) - 1n;
    if ((mask & host) === 0n) return -XEN_EINVAL;
    const v = sd.vcpus[vcpu];
    v.affinity = mask === ALL_CPUS ? ALL_CPUS : mask & host;
    if (v.pcpu >= 0) {
      if (!(v.affinity & (1n << N(v.pcpu))) && !v.revoking) this.revoke(this.pcpus[v.pcpu]);
    } else if (this.eligible(v)) {
      this.policy.dequeue(v);
      this.policy.enqueue(v, this.pcpus.length);
    }
    this.scheduleIdle();
    return 0;
  }

  /**
   * For tests: the mechanism is work-conserving between events, i.e. no pCPU
   * is idle while a vCPU allowed on it is eligible. Returns what breaks
   * that, or null.
   */
  idleWhileWaiting(): string | null {
    for (const p of this.pcpus) {
      if (p.cur) continue;
      for (const sd of this.doms.values()) {
        const v = sd.vcpus.slice(0, sd.d.maxVcpus).find(this.eligibleAt[p.id]!);
        if (v) return `pCPU ${p.id} idle while d${sd.d.domid} vCPU ${v.id} waits (affinity ${v.affinity})`;
      }
    }
    return null;
  }

  /** Per-pCPU view for tests and `xm`-like tools: who holds which pCPU. */
  pcpuOwners(): { pcpu: number; domid: number; vcpu: number }[] {
    return this.pcpus.map((p) => ({ pcpu: p.id, domid: p.cur?.dom.d.domid ?? -1, vcpu: p.cur?.id ?? -1 }));
  }

  // ---- the mechanism ---------------------------------------------------------

  private vcpuWake(v: SchedVcpu): void {
    if (!v.online || v.wantsRun) return;
    v.wantsRun = true;
    if (this.eligible(v)) this.policy.enqueue(v, this.pcpus.length, true);
    this.update(v);
    this.scheduleIdle();
  }

  /** No work: it gives back whatever slice it holds (a stale gen too: nothing is left to use it). */
  private vcpuBlock(v: SchedVcpu, _gen: number): void {
    v.wantsRun = false;
    this.policy.dequeue(v);
    if (v.pcpu >= 0) {
      const p = this.pcpus[v.pcpu];
      this.vacate(v, false);
      this.update(v);
      this.schedule(p);
    } else {
      this.update(v);
    }
  }

  /**
   * The vCPU gave slice `gen` back and still has work. A stale gen means
   * nothing. Every idle pCPU picks, not only the one given back: v may now
   * be queued on another (its affinity changed while it ran), and that pCPU
   * may be idle with nothing else to make it look.
   */
  private release(v: SchedVcpu, gen: number): void {
    if (v.pcpu < 0 || gen !== v.gen) return;
    this.vacate(v, true);
    this.scheduleIdle();
  }

  /**
   * Takes pCPU v.pcpu from v: grant word cleared (if it still holds v's
   * generation), timer dropped, runstate accounted. `requeue`: v stays
   * runnable and goes to the back of the queue.
   */
  private vacate(v: SchedVcpu, requeue: boolean): void {
    this.settle(v);
    const p = this.pcpus[v.pcpu];
    if (p.timer) this.timers.clearTimeout(p.timer);
    p.timer = null;
    p.cur = null;
    v.lastPcpu = v.pcpu;
    v.pcpu = -1;
    v.revoking = false;
    Atomics.compareExchange(v.dom.i32, vcpuWord(v.id, 'grant'), v.gen, 0);
    if (requeue && this.eligible(v)) this.policy.enqueue(v, this.pcpus.length);
    this.update(v);
  }

  /** Charges v's running time since the last charge (policy.burn). */
  private settle(v: SchedVcpu): void {
    if (v.pcpu < 0) return;
    const now = this.now();
    if (now > v.ranSince) this.policy.burn?.(v, now - v.ranSince);
    v.ranSince = now;
  }

  private setParked(v: SchedVcpu, parked: boolean): void {
    if (v.parked === parked) return;
    v.parked = parked;
    if (parked) {
      if (v.pcpu >= 0 && !v.revoking) this.revoke(this.pcpus[v.pcpu]);
    } else if (this.eligible(v)) {
      this.policy.enqueue(v, this.pcpus.length);
    }
    this.update(v);
    if (!parked) this.scheduleIdle();
  }

  private scheduleIdle(): void {
    for (const p of this.pcpus) if (!p.cur) this.schedule(p);
  }

  private schedule(p: Pcpu): void {
    if (p.cur) return;
    const v = this.policy.pick(p.id, this.eligibleAt[p.id]);
    if (v) this.grant(p, v);
  }

  private grant(p: Pcpu, v: SchedVcpu): void {
    const sd = v.dom;
    if (sd.stopped) {
      // Only the vCPU that kept its pCPU is eligible here: its process resumes now.
      sd.stopped = false;
      sd.rogue = null;
      if (this.o.signal?.(sd.d, 'SIGCONT') === false) return;
    }
    v.gen = v.gen >= 0x7fffffff ? 1 : v.gen + 1;
    v.pcpu = p.id;
    v.slices++;
    v.grantedAt = v.ranSince = this.now();
    v.extended = false;
    p.cur = v;
    const sliceMs = this.policy.sliceMs(v);
    sd.i32[vcpuWord(v.id, 'pcpu')] = p.id;
    sd.dv.setBigUint64(v.id * XENEMU_VCPU_SLOT_SIZE + xenemu_vcpu_slot.deadline, this.now() + N(sliceMs) * 1_000_000n, true);
    sd.i32[vcpuWord(v.id, 'slices')] = v.slices;
    Atomics.store(sd.i32, vcpuWord(v.id, 'grant'), v.gen);
    this.update(v);
    this.o.notify(sd.d, v.id, v.gen);
    p.timer = this.timers.setTimeout(() => this.sliceEnd(p), sliceMs);
  }

  private sliceEnd(p: Pcpu): void {
    p.timer = null;
    const v = p.cur;
    if (!v) return;
    if (!this.policy.waiting(p.id, this.eligibleAt[p.id], v) && !v.parked && (v.affinity & (1n << N(p.id)))) {
      // Nobody else wants this pCPU: Xen lets the vCPU go on without a switch.
      v.extended = true;
      const sliceMs = this.policy.sliceMs(v);
      v.dom.dv.setBigUint64(v.id * XENEMU_VCPU_SLOT_SIZE + xenemu_vcpu_slot.deadline,
                            this.now() + N(sliceMs) * 1_000_000n, true);
      p.timer = this.timers.setTimeout(() => this.sliceEnd(p), sliceMs);
      return;
    }
    this.revoke(p);
  }

  /** Takes the slice back: grant word cleared, the holder has the grace period to release it. */
  private revoke(p: Pcpu): void {
    const v = p.cur!;
    if (p.timer) this.timers.clearTimeout(p.timer);
    v.revoking = true;
    v.revokedAt = this.now();
    Atomics.compareExchange(v.dom.i32, vcpuWord(v.id, 'grant'), v.gen, 0);
    p.timer = this.timers.setTimeout(() => this.graceEnd(p, v), this.graceMs);
  }

  private graceEnd(p: Pcpu, v: SchedVcpu): void {
    p.timer = null;
    if (p.cur !== v || !v.revoking) return;
    // Read the guest-written word once. Its thread still runs guest work under
    // a slice (this one, or an older one it never gave back after a SIGCONT):
    // it kept the pCPU. Nothing held: it gave it back, or never took it up.
    const held = Atomics.load(v.dom.i32, vcpuWord(v.id, 'held'));
    if (held === 0) { this.release(v, v.gen); return; }
    this.preempt(v);
  }

  /**
   * v kept its pCPU past the grace period: stop its domain's process, charge
   * v the time it held on (it stays "running" until now), and give every pCPU
   * the domain holds to someone else. Only v resumes the domain, when it is
   * picked again.
   */
  private preempt(v: SchedVcpu): void {
    const sd = v.dom;
    const now = this.now();
    if (this.o.signal?.(sd.d, 'SIGSTOP') === false) {
      // The process is gone; its exit tears the domain down.
      this.vacate(v, false);
      this.scheduleIdle();
      return;
    }
    sd.stopped = true;
    sd.rogue = v;
    v.preempts++;
    v.stolen += now - v.revokedAt;
    sd.i32[vcpuWord(v.id, 'preempts')] = v.preempts;
    sd.dv.setBigUint64(v.id * XENEMU_VCPU_SLOT_SIZE + xenemu_vcpu_slot.stolen, v.stolen, true);
    this.o.log(`d${sd.d.domid}: vCPU ${v.id} kept pCPU ${v.pcpu} ${Number(now - v.revokedAt) / 1e6 | 0} ms ` +
               `after its slice: domain stopped (preemption ${v.preempts})`);
    for (const w of sd.vcpus) if (w.pcpu >= 0) this.vacate(w, true);
    this.scheduleIdle();
  }

  // ---- runstate ------------------------------------------------------------

  private stateOf(v: SchedVcpu): number {
    if (v.pcpu >= 0) return RUNSTATE_running;
    const sd = v.dom;
    if (!v.online || v.id >= sd.d.maxVcpus || !sd.d.running || v.parked) return RUNSTATE_offline;
    if (!sd.sliced) {
      // Not sliced: vCPU 0 is the process; the others have nothing to run.
      if (v.id !== 0) return RUNSTATE_blocked;
      return sd.d.blocked ? RUNSTATE_blocked : RUNSTATE_running;
    }
    return v.wantsRun ? RUNSTATE_runnable : RUNSTATE_blocked;
  }

  private updateAll(sd: SchedDomain): void {
    for (const v of sd.vcpus) this.update(v);
    if (sd.sliced) sd.d.blocked = sd.vcpus.every((v) => !v.online || v.state !== RUNSTATE_running && !v.wantsRun);
  }

  /** Moves v to the state its flags say, accounting the time of the old one (vcpu_runstate_change). */
  private update(v: SchedVcpu): void {
    const s = this.stateOf(v);
    if (s === v.state) return;
    const now = this.now();
    if (now > v.entry) v.time[v.state] += now - v.entry;
    v.state = s;
    v.entry = now;
    this.writeSlot(v);
    const sd = v.dom;
    if (sd.sliced) sd.d.blocked = sd.vcpus.every((w) => !w.online || (w.pcpu < 0 && !w.wantsRun));
  }

  /** Publishes v's runstate the Xen way: XEN_RUNSTATE_UPDATE set around the update. */
  private writeSlot(v: SchedVcpu): void {
    const sd = v.dom;
    const off = runstateOffset(v.id);
    const ei = (off + vcpu_runstate_info.state_entry_time) >> 3;
    Atomics.store(sd.u64, ei, v.entry | XEN_RUNSTATE_UPDATE);
    sd.dv.setInt32(off + vcpu_runstate_info.state, v.state, true);
    for (let i = 0; i < 4; i++) Atomics.store(sd.u64, ((off + vcpu_runstate_info.time) >> 3) + i, v.time[i]);
    Atomics.store(sd.u64, ei, v.entry);
    sd.i32[vcpuWord(v.id, 'online')] = v.online ? 1 : 0;
    if (v.pcpu < 0 && v.lastPcpu < 0) sd.i32[vcpuWord(v.id, 'pcpu')] = -1;
  }
}

