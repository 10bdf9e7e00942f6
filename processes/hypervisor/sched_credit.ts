// Xen's credit scheduler (xen/common/sched/credit.c) as a SchedPolicy: the
// default. The mechanism (sched_core.ts) grants and revokes slices, measures
// the real running time and debits it here (burn); this file decides who
// runs next.
//
// Credits. A credit is 0.1 ms of pCPU (CSCHED_CREDITS_PER_MSEC = 10). Every
// accounting period (one time slice, 30 ms by default: csched_acct) the host
// hands out credits_per_tslice * pcpus credits to the *active* vCPUs, shared
// by domain weight (1..65535, default 256) and, inside a domain, equally by
// its active vCPUs. Running debits credits for the time really run (a vCPU
// that kept its pCPU past a revocation is charged up to its SIGSTOP).
//
//   priority   when                                         picked
//   BOOST  0   woken from blocked while UNDER                first (preempts UNDER/OVER)
//   UNDER -1   credit >= 0                                   then
//   OVER  -2   credit < 0                                    then
//   IDLE -64   (the idle vCPU: a pCPU with nothing to run)
//
// Ticks. Every tslice/3 (10 ms) each running vCPU is debited; a BOOSTed one
// that is still running drops to UNDER (it uses real CPU now), and a vCPU
// seen running joins the active list (csched_unit_acct). Every third tick is
// an accounting period (csched_acct), done as Xen does it, including its
// bounds: credit is clamped at -credits_per_tslice, and a vCPU whose credit
// climbs above credits_per_tslice stops earning (leaves the active list with
// half of it). The ticker runs only while some pCPU is busy or some vCPU is
// parked, so an idle host costs nothing.
//
// Caps. cap is a percentage of one pCPU (0 = none; 100 = one pCPU, 200 =
// two). A capped domain earns at most cap% of a period's credits; a vCPU
// whose credit falls below minus that is parked (not runnable, runstate
// offline, its pCPU revoked at once) until accounting brings its credit back
// to >= 0 (CSCHED_FLAG_UNIT_PARKED).
//
// Run queues. One per pCPU, ordered by priority, FIFO inside a priority
// (__runq_insert). A pCPU takes the head of its own queue; when that is
// OVER or nothing, it steals the best vCPU of higher priority from the other
// queues (csched_load_balance). Hard affinity comes from the mechanism's
// `eligible`. At slice end the current vCPU keeps its pCPU unless someone of
// its priority or better waits.
//
// Wake-up (csched_unit_wake, __runq_tickle): an UNDER vCPU woken from
// blocked gets BOOST; if no allowed pCPU is idle, the one running the
// lowest-priority vCPU below it is preempted, but never before that vCPU has
// run ratelimit_us (1 ms by default: sched_ratelimit_us) in its slice.
import {
  XEN_SCHEDULER_CREDIT,
} from '../../shared/abi/domctl.js';
import {
  XEN_SYSCTL_CSCHED_TSLICE_MAX, XEN_SYSCTL_CSCHED_TSLICE_MIN, XEN_SYSCTL_SCHED_RATELIMIT_MAX,
  XEN_SYSCTL_SCHED_RATELIMIT_MIN,
} from '../../shared/abi/sysctl.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';
import type {
  SchedDomain, SchedDomainParams, SchedGlobalParams, SchedHooks, SchedPolicy, SchedTimers, SchedVcpu,
} from './sched_core.js';
import { HOST_TIMERS } from './sched_core.js';

export const CSCHED_PRI_TS_BOOST = 0;
export const CSCHED_PRI_TS_UNDER = -1;
export const CSCHED_PRI_TS_OVER = -2;
export const CSCHED_PRI_IDLE = -64;
export const CSCHED_CREDITS_PER_MSEC = 10;
export const CSCHED_DEFAULT_WEIGHT = 256;
export const CSCHED_TICKS_PER_TSLICE = 3;
export const CSCHED_DEFAULT_TSLICE_MS = 30;
export const CSCHED_DEFAULT_RATELIMIT_US = 1000;
export const CSCHED_MAX_WEIGHT = 65535;

export const PRI_NAMES: Record<number, string> = {
  [CSCHED_PRI_TS_BOOST]: 'BOOST', [CSCHED_PRI_TS_UNDER]: 'UNDER', [CSCHED_PRI_TS_OVER]: 'OVER', [CSCHED_PRI_IDLE]: 'IDLE',
};

/** csched_unit: one vCPU's credit state. */
export interface CschedUnit {
  credit: number;
  pri: number;
  /** On the active list: earns credits at accounting. */
  active: boolean;
  /** Index of the run queue it is on, -1 when none. */
  runq: number;
  /** Parked for its domain's cap (CSCHED_FLAG_UNIT_PARKED). */
  parked: boolean;
}

/** csched_dom. */
export interface CschedDom { weight: number; cap: number }

export interface CreditOptions { tsliceMs?: number; ratelimitUs?: number; timers?: SchedTimers }

export class CreditPolicy implements SchedPolicy {
  readonly name = 'credit';
  readonly schedId = XEN_SCHEDULER_CREDIT;
  private hooks!: SchedHooks;
  private readonly runqs: SchedVcpu[][] = [];
  /** Every vCPU with a csched_unit (the active ones are flagged). */
  private readonly units = new Set<SchedVcpu>();
  private tsliceMs: number;
  private ratelimitUs: number;
  private ticker: unknown = null;
  private readonly timers: SchedTimers;
  private ticks = 0;
  /** Xen's prv->credit_balance: the sum of credits after the last accounting. */
  private creditBalance = 0;
  private readonly ratelimitTimers = new Map<number, unknown>();
  /** Counters for tests and benchmarks. */
  readonly stats = { ticks: 0, accts: 0, parks: 0, unparks: 0, tickles: 0, steals: 0 };

  constructor(private readonly pcpus: number, o: CreditOptions = {}) {
    this.tsliceMs = o.tsliceMs ?? CSCHED_DEFAULT_TSLICE_MS;
    this.ratelimitUs = o.ratelimitUs ?? CSCHED_DEFAULT_RATELIMIT_US;
    this.timers = o.timers ?? HOST_TIMERS;
    for (let i = 0; i < pcpus; i++) this.runqs.push([]);
  }

  attach(hooks: SchedHooks): void { this.hooks = hooks; }

  private get creditsPerTslice(): number { return CSCHED_CREDITS_PER_MSEC * this.tsliceMs; }
  private get ticksPerTslice(): number { return this.tsliceMs < CSCHED_TICKS_PER_TSLICE ? 1 : CSCHED_TICKS_PER_TSLICE; }
  private get tickMs(): number { return this.tsliceMs / this.ticksPerTslice; }

  unit(v: SchedVcpu): CschedUnit {
    let u = v.policy as CschedUnit | null;
    if (!u) {
      u = { credit: 0, pri: CSCHED_PRI_TS_UNDER, active: false, runq: -1, parked: false };
      v.policy = u;
      this.units.add(v);
    }
    return u;
  }

  dom(sd: SchedDomain): CschedDom {
    let d = sd.policy as CschedDom | null;
    if (!d) { d = { weight: CSCHED_DEFAULT_WEIGHT, cap: 0 }; sd.policy = d; }
    return d;
  }

  // ---- run queues -------------------------------------------------------------

  enqueue(v: SchedVcpu, _pcpus: number, woken = false): void {
    const u = this.unit(v);
    if (woken && u.pri === CSCHED_PRI_TS_UNDER && !u.parked) u.pri = CSCHED_PRI_TS_BOOST;
    if (u.runq >= 0) return;
    // Its last pCPU if allowed there, else the shortest allowed queue.
    let q = -1;
    if (v.lastPcpu >= 0 && v.lastPcpu < this.pcpus && allowed(v, v.lastPcpu)) q = v.lastPcpu;
    else {
      for (let i = 0; i < this.pcpus; i++) {
        if (allowed(v, i) && (q < 0 || this.runqs[i].length < this.runqs[q].length)) q = i;
      }
      if (q < 0) q = 0;
    }
    this.runqInsert(q, v, u);
    if (woken) this.tickle(v, u);
  }

  private runqInsert(q: number, v: SchedVcpu, u: CschedUnit): void {
    const rq = this.runqs[q];
    let i = 0;
    while (i < rq.length && (rq[i].policy as CschedUnit).pri >= u.pri) i++;
    rq.splice(i, 0, v);
    u.runq = q;
  }

  dequeue(v: SchedVcpu): void {
    const u = v.policy as CschedUnit | null;
    if (!u || u.runq < 0) return;
    const rq = this.runqs[u.runq];
    const i = rq.indexOf(v);
    if (i >= 0) rq.splice(i, 1);
    u.runq = -1;
  }

  pick(p: number, eligible: (v: SchedVcpu) => boolean): SchedVcpu | null {
    let best: SchedVcpu | null = this.runqs[p].find(eligible) ?? null;
    let bestPri = best ? (best.policy as CschedUnit).pri : CSCHED_PRI_IDLE;
    // csched_load_balance: the local head is OVER or nothing; look for better work elsewhere.
    if (bestPri <= CSCHED_PRI_TS_OVER) {
      for (let k = 1; k < this.pcpus; k++) {
        const rq = this.runqs[(p + k) % this.pcpus];
        const w = rq.find(eligible);
        if (w && (w.policy as CschedUnit).pri > bestPri) { best = w; bestPri = (w.policy as CschedUnit).pri; }
      }
      if (best && (best.policy as CschedUnit).runq !== p) this.stats.steals++;
    }
    if (!best) return null;
    this.dequeue(best);
    this.startTicker();
    return best;
  }

  waiting(p: number, eligible: (v: SchedVcpu) => boolean, cur: SchedVcpu): boolean {
    const pri = this.unit(cur).pri;
    for (let k = 0; k < this.pcpus; k++) {
      const w = this.runqs[(p + k) % this.pcpus].find(eligible);
      if (w && (w.policy as CschedUnit).pri >= pri) return true;
    }
    return false;
  }

  sliceMs(): number { return this.tsliceMs; }

  /**
   * __runq_tickle: a woken vCPU preempts a lower-priority one if no allowed
   * pCPU is idle.
   *
   * xenemu: Xen queues the vCPU on its processor and tickles that pCPU;
   * here the vCPU moves to the queue of the pCPU it preempts (or of one
   * whose vCPU is already giving its slice back), because a pCPU takes its
   * own queue's head first and steals only when that is OVER: a BOOSTed vCPU
   * left on another queue would wait for that queue's slice end (up to a
   * slice, and the measured wake-up p99 was 185 ms) while the preempted pCPU
   * ran an UNDER vCPU of its own queue. A pCPU in the middle of a revocation
   * is the cheapest choice: it picks again as soon as the release arrives.
   */
  private tickle(v: SchedVcpu, u: CschedUnit): void {
    let victim = -1;
    let victimPri = u.pri;
    let revoking = -1;
    for (let p = 0; p < this.pcpus; p++) {
      if (!allowed(v, p)) continue;
      const cur = this.hooks.current(p);
      if (!cur) return; // an idle pCPU will take it (the mechanism schedules idle pCPUs next)
      if (cur.revoking) { if (revoking < 0) revoking = p; continue; }
      const pri = this.unit(cur).pri;
      // Ties go to the shorter run queue: the woken vCPU stays there
      // afterwards (enqueue keeps lastPcpu), and 64 guests started under
      // load all landed on pCPU 0, a lasting imbalance that stealing only
      // slowly undoes (Jain's index 0.986 over 12 s).
      if (pri < victimPri || (victim >= 0 && pri === victimPri && this.runqs[p].length < this.runqs[victim].length)) {
        victim = p; victimPri = pri;
      }
    }
    if (revoking >= 0) { this.requeueOn(v, u, revoking); return; }
    if (victim < 0) return;
    this.requeueOn(v, u, victim);
    this.preemptRatelimited(victim);
  }

  private requeueOn(v: SchedVcpu, u: CschedUnit, q: number): void {
    if (u.runq === q) return;
    this.dequeue(v);
    this.runqInsert(q, v, u);
  }

  /** Preempts pCPU p, but not before its vCPU has run ratelimit_us of its slice. */
  private preemptRatelimited(p: number): void {
    const cur = this.hooks.current(p);
    if (!cur || this.ratelimitTimers.has(p)) return;
    const ranUs = Number(this.hooks.now() - cur.grantedAt) / 1000;
    if (ranUs >= this.ratelimitUs) { this.stats.tickles++; this.hooks.preempt(p); return; }
    const gen = cur.gen;
    this.ratelimitTimers.set(p, this.timers.setTimeout(() => {
      this.ratelimitTimers.delete(p);
      const now = this.hooks.current(p);
      if (!now || now !== cur || now.gen !== gen) return;
      // Still someone better waiting for this pCPU?
      if (this.betterWaiting(p, this.unit(now).pri)) {
        this.stats.tickles++;
        this.hooks.preempt(p);
      }
    }, Math.ceil((this.ratelimitUs - ranUs) / 1000)));
  }

  /** A queued vCPU allowed on pCPU p, not parked, of a priority above `pri`. */
  private betterWaiting(p: number, pri: number): boolean {
    return this.runqs.some((rq) => rq.some((w) => allowed(w, p) && (w.policy as CschedUnit).pri > pri && !w.parked));
  }

  // ---- credits ----------------------------------------------------------------

  burn(v: SchedVcpu, ns: bigint): void {
    const u = this.unit(v);
    u.credit -= Number(ns) * CSCHED_CREDITS_PER_MSEC / 1e6;
    // xenemu: whoever consumed is active, even if no tick saw it running
    // (slices shorter than a tick would otherwise never earn back).
    u.active = true;
  }

  private startTicker(): void {
    if (this.ticker) return;
    this.ticker = this.timers.setInterval(() => this.tick(), this.tickMs);
  }

  private stopTicker(): void {
    if (this.ticker) this.timers.clearInterval(this.ticker);
    this.ticker = null;
  }

  /** csched_tick on every pCPU, and csched_acct every ticksPerTslice ticks. */
  private tick(): void {
    this.stats.ticks++;
    let busy = false;
    for (let p = 0; p < this.pcpus; p++) {
      const v = this.hooks.current(p);
      if (!v) continue;
      busy = true;
      const u = this.unit(v);
      this.hooks.settle(v);
      // csched_unit_acct: boosted but still running after a tick: it is using CPU.
      // xenemu: only once its thread runs under the grant; a grant the guest
      // has not taken up yet (the slice message still on its way to a busy
      // host's process) is no CPU used, and losing BOOST then sent the vCPU
      // behind every UNDER one at its slice end.
      if (u.pri === CSCHED_PRI_TS_BOOST && this.hooks.inGuest(v)) u.pri = CSCHED_PRI_TS_UNDER;
      u.active = true;
    }
    if (++this.ticks % this.ticksPerTslice === 0) this.acct();
    // Accounting may have unparked someone who now runs.
    for (let p = 0; p < this.pcpus && !busy; p++) if (this.hooks.current(p)) busy = true;
    let parked = false;
    for (const v of this.units) if ((v.policy as CschedUnit).parked) { parked = true; break; }
    // Nothing runs and nobody waits for a cap period: no ticks (csched_tick_suspend).
    if (!busy && !parked) this.stopTicker();
  }

  /** csched_acct, line for line where it matters. */
  private acct(): void {
    this.stats.accts++;
    const cpt = this.creditsPerTslice;
    const doms = new Map<SchedDomain, SchedVcpu[]>();
    for (const v of this.units) {
      const u = v.policy as CschedUnit;
      if (!u.active || !v.online || !v.dom.runs) continue;
      const l = doms.get(v.dom);
      if (l) l.push(v); else doms.set(v.dom, [v]);
    }
    let weightTotal = 0;
    for (const [sd, vs] of doms) weightTotal += this.dom(sd).weight * vs.length;
    if (weightTotal === 0) { this.creditBalance = 0; return; }
    let creditTotal = cpt * this.pcpus;
    // Converge balance towards 0 when it drops negative.
    if (this.creditBalance < 0) creditTotal -= this.creditBalance;
    let weightLeft = weightTotal;
    let creditBalance = 0;
    const changed: { v: SchedVcpu; park: boolean }[] = [];
    for (const [sd, vs] of doms) {
      const d = this.dom(sd);
      const n = vs.length;
      weightLeft -= d.weight * n;
      let creditPeak = n * cpt;
      if (this.creditBalance < 0) creditPeak += Math.ceil((-this.creditBalance * d.weight * n) / Math.max(1, weightLeft));
      let creditCap = 0;
      if (d.cap !== 0) {
        creditCap = Math.ceil((d.cap * cpt) / 100);
        if (creditCap < creditPeak) creditPeak = creditCap;
        creditCap = Math.ceil(creditCap / n);
      }
      let creditFair = Math.ceil((creditTotal * d.weight * n) / weightTotal);
      if (creditFair >= creditPeak) {
        // Give other domains a chance at unused credits.
        if (weightLeft !== 0) creditTotal += Math.ceil(((creditFair - creditPeak) * weightTotal) / weightLeft);
        creditFair = creditPeak;
      }
      creditFair = Math.ceil(creditFair / n);
      for (const v of vs) {
        const u = v.policy as CschedUnit;
        u.credit += creditFair;
        if (u.credit < 0) {
          u.pri = CSCHED_PRI_TS_OVER;
          // Park running vCPUs of capped-out domains.
          if (d.cap !== 0 && u.credit < -creditCap && !u.parked) { u.parked = true; changed.push({ v, park: true }); }
          if (u.credit < -cpt) u.credit = -cpt;
        } else {
          u.pri = CSCHED_PRI_TS_UNDER;
          if (u.parked) { u.parked = false; changed.push({ v, park: false }); }
          // Upper bound on credits means the vCPU stops earning.
          if (u.credit > cpt) { u.active = false; u.credit /= 2; }
        }
        creditBalance += u.credit;
      }
    }
    this.creditBalance = creditBalance;
    // Priorities changed: re-sort the queues (csched_runq_sort).
    for (let q = 0; q < this.pcpus; q++) {
      const rq = this.runqs[q];
      rq.sort((a, b) => (b.policy as CschedUnit).pri - (a.policy as CschedUnit).pri);
    }
    for (const c of changed) {
      if (c.park) this.stats.parks++; else this.stats.unparks++;
      this.hooks.setParked(c.v, c.park);
    }
    this.endStaleExtensions();
  }

  /**
   * xenemu: a slice extended because nobody of its priority waited ends as
   * soon as accounting leaves someone better waiting. Xen decides the
   * extension in csched_schedule with the priorities of the last accounting
   * and keeps it for a whole slice; with slices and accounting periods both
   * 30 ms long, a slice end a moment before accounting then gave the vCPU a
   * second slice on a stale UNDER, and the credit floor (-credits_per_tslice)
   * forgave most of it: weights 1:4 measured 25% instead of 20% in some runs.
   */
  private endStaleExtensions(): void {
    for (let p = 0; p < this.pcpus; p++) {
      const cur = this.hooks.current(p);
      if (!cur || !cur.extended || cur.revoking) continue;
      if (this.betterWaiting(p, this.unit(cur).pri)) {
        this.stats.tickles++;
        this.hooks.preempt(p);
      }
    }
  }

  domainRemoved(sd: SchedDomain): void {
    for (const v of sd.vcpus) {
      if (!v.policy) continue;
      this.dequeue(v);
      this.units.delete(v);
    }
  }

  // ---- parameters ---------------------------------------------------------------

  getDomainParams(sd: SchedDomain): SchedDomainParams {
    const d = this.dom(sd);
    return { weight: d.weight, cap: d.cap };
  }

  /** csched_dom_cntl putinfo: weight 1..65535 (0 = unchanged), cap any u16 (0 = none). */
  putDomainParams(sd: SchedDomain, p: Partial<SchedDomainParams>): number {
    const d = this.dom(sd);
    if (p.weight !== undefined && (!Number.isInteger(p.weight) || p.weight < 0 || p.weight > CSCHED_MAX_WEIGHT)) return -XEN_EINVAL;
    if (p.cap !== undefined && (!Number.isInteger(p.cap) || p.cap < 0 || p.cap > 0xffff)) return -XEN_EINVAL;
    if (p.weight) d.weight = p.weight;
    if (p.cap !== undefined) {
      d.cap = p.cap;
      // Uncapped: nothing of it stays parked.
      if (d.cap === 0) for (const v of sd.vcpus) if (v.parked) { (v.policy as CschedUnit).parked = false; this.hooks.setParked(v, false); }
    }
    return 0;
  }

  getGlobals(): SchedGlobalParams { return { tslice_ms: this.tsliceMs, ratelimit_us: this.ratelimitUs }; }

  /** csched_sys_cntl: tslice 1..1000 ms, ratelimit 0 or 100..500000 us and not above the slice. */
  putGlobals(p: Partial<SchedGlobalParams>): number {
    const ts = p.tslice_ms ?? this.tsliceMs;
    const rl = p.ratelimit_us ?? this.ratelimitUs;
    if (!Number.isInteger(ts) || ts < XEN_SYSCTL_CSCHED_TSLICE_MIN || ts > XEN_SYSCTL_CSCHED_TSLICE_MAX) return -XEN_EINVAL;
    if (!Number.isInteger(rl) || rl < 0) return -XEN_EINVAL;
    if (rl !== 0 && (rl < XEN_SYSCTL_SCHED_RATELIMIT_MIN || rl > XEN_SYSCTL_SCHED_RATELIMIT_MAX || rl > ts * 1000)) return -XEN_EINVAL;
    const retick = ts !== this.tsliceMs && this.ticker !== null;
    this.tsliceMs = ts;
    this.ratelimitUs = rl;
    if (retick) { this.stopTicker(); this.startTicker(); }
    return 0;
  }

  /** For tests: the length of each pCPU's run queue. */
  queueLengths(): number[] { return this.runqs.map((rq) => rq.length); }

  /** For `xm`-like views and tests: priority and credit of a vCPU. */
  describe(v: SchedVcpu): { pri: string; credit: number; active: boolean; parked: boolean } {
    const u = this.unit(v);
    return { pri: PRI_NAMES[u.pri] ?? String(u.pri), credit: Math.round(u.credit), active: u.active, parked: u.parked };
  }

  close(): void {
    this.stopTicker();
    for (const t of this.ratelimitTimers.values()) this.timers.clearTimeout(t);
    this.ratelimitTimers.clear();
  }
}

function allowed(v: SchedVcpu, p: number): boolean {
  return (v.affinity & (1n << BigInt(p))) !== 0n;
}
