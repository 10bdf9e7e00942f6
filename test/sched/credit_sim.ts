// A deterministic simulation of the slice mechanism and the credit policy
// (processes/hypervisor/sched_core.ts, sched_credit.ts): the real code, run
// on a simulated clock with simulated guests, so that a policy question
// ("how do credits flow for weights 256:1024?") has an exact, repeatable
// answer in milliseconds instead of seconds of a busy host.
//
// A guest here behaves as a VcpuPool's vCPU thread does: it takes a slice up
// a little after the grant (the `slice` message and the notify), checks its
// grant word every 1 ms work unit, and gives a revoked slice back (release)
// a little after it notices. Timers fire late by a seeded random amount
// (Node's timers do), so that slices and ticks drift apart as on a host.
import { SliceScheduler, type SchedTimers } from '../../processes/hypervisor/sched_core.js';
import { CreditPolicy } from '../../processes/hypervisor/sched_credit.js';
import type { Domain } from '../../processes/hypervisor/domain.js';
import { RUNSTATE_runnable, RUNSTATE_running, vcpuWord } from '../../shared/abi/vcpu.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';

const MS = 1e6;

interface Ev { at: number; seq: number; fn: () => void; every?: number; dead?: boolean }

/** Timers on a simulated clock (ns); each firing is late by up to `jitterMs` (seeded). */
export class SimClock implements SchedTimers {
  t = 0;
  private seq = 0;
  private evs: Ev[] = [];
  private seed: number;
  constructor(private readonly jitterMs = 0.3, seed = 1) { this.seed = seed; }
  rand(): number {
    this.seed = (this.seed * 1103515245 + 12345) & 0x7fffffff;
    return this.seed / 0x80000000;
  }
  now = (): bigint => BigInt(Math.round(this.t));
  private add(fn: () => void, ms: number, every?: number): Ev {
    const e: Ev = { at: this.t + ms * MS + this.rand() * this.jitterMs * MS, seq: this.seq++, fn, every };
    this.evs.push(e);
    return e;
  }
  /** An event of the simulated world (a guest's action), at an exact delay. */
  at(ms: number, fn: () => void): void { this.evs.push({ at: this.t + ms * MS, seq: this.seq++, fn }); }
  setTimeout(fn: () => void, ms: number): unknown { return this.add(fn, ms); }
  clearTimeout(h: unknown): void { if (h) (h as Ev).dead = true; }
  setInterval(fn: () => void, ms: number): unknown { return this.add(fn, ms, ms); }
  clearInterval(h: unknown): void { if (h) (h as Ev).dead = true; }
  /** Runs events until `ms` of simulated time have passed. */
  run(ms: number): void {
    const end = this.t + ms * MS;
    for (;;) {
      this.evs = this.evs.filter((e) => !e.dead);
      if (this.evs.length === 0) break;
      let k = 0;
      for (let i = 1; i < this.evs.length; i++) {
        const a = this.evs[i], b = this.evs[k];
        if (a.at < b.at || (a.at === b.at && a.seq < b.seq)) k = i;
      }
      const e = this.evs[k];
      if (e.at > end) break;
      this.t = Math.max(this.t, e.at);
      if (e.every !== undefined) {
        // Node re-arms an interval from the time its callback runs.
        e.at = this.t + e.every * MS + this.rand() * this.jitterMs * MS;
        e.seq = this.seq++;
      } else {
        e.dead = true;
      }
      e.fn();
    }
    this.t = end;
  }
}

export interface SimGuest {
  d: Domain;
  /** Has work now. */
  busy: boolean;
  /** Generation of the slice its thread runs under, 0 = none. */
  held: number;
  /** Its own delay from grant to running under it, if not the host's. */
  notifyMs?: number;
}

export interface SimOptions { pcpus: number; tsliceMs?: number; ratelimitUs?: number; jitterMs?: number; seed?: number }

/** A host: the real SliceScheduler and CreditPolicy on a SimClock, and guests that behave. */
export class SimHost {
  readonly clock: SimClock;
  readonly policy: CreditPolicy;
  readonly sched: SliceScheduler;
  readonly guests: SimGuest[] = [];
  /** Delay from grant to the thread running under it, and from noticing a revocation to the release message. */
  notifyMs = 0.2;
  releaseMs = 0.2;

  constructor(o: SimOptions) {
    this.clock = new SimClock(o.jitterMs ?? 0.3, o.seed ?? 1);
    this.policy = new CreditPolicy(o.pcpus, { tsliceMs: o.tsliceMs, ratelimitUs: o.ratelimitUs, timers: this.clock });
    this.sched = new SliceScheduler({
      pcpus: o.pcpus, policy: this.policy, log: () => {}, now: this.clock.now, timers: this.clock,
      notify: (d, vcpu, gen) => {
        const g = this.guestOf(d);
        this.clock.at(g.notifyMs ?? this.notifyMs, () => this.takeUp(g, vcpu, gen));
      },
      signal: () => true,
    });
  }

  private guestOf(d: Domain): SimGuest { return this.guests.find((g) => g.d === d)!; }

  /** A domain with one vCPU, registered for slices, running. */
  domain(): SimGuest {
    const domid = this.guests.length + 1;
    const d = { domid, maxVcpus: 1, running: true, blocked: false, vcpuArea: new SharedArrayBuffer(PAGE_SIZE) } as unknown as Domain;
    const g: SimGuest = { d, busy: false, held: 0 };
    this.guests.push(g);
    this.sched.domainCreated(d);
    this.sched.domainUnpaused(d);
    this.sched.registerSliceArea(d);
    return g;
  }

  private i32(g: SimGuest): Int32Array { return new Int32Array(g.d.vcpuArea!); }

  /** The thread starts running under grant `gen` (if it is still the vCPU's grant). */
  private takeUp(g: SimGuest, vcpu: number, gen: number): void {
    const a = this.i32(g);
    if (!g.busy || Atomics.load(a, vcpuWord(vcpu, 'grant')) !== gen) return;
    g.held = gen;
    a[vcpuWord(vcpu, 'held')] = gen;
    this.unit(g, gen);
  }

  /** One 1 ms work unit; at its end the thread checks its grant word. */
  private unit(g: SimGuest, gen: number): void {
    this.clock.at(1, () => {
      if (g.held !== gen) return;
      const a = this.i32(g);
      if (Atomics.load(a, vcpuWord(0, 'grant')) === gen && g.busy) { this.unit(g, gen); return; }
      g.held = 0;
      a[vcpuWord(0, 'held')] = 0;
      const still = g.busy;
      this.clock.at(this.releaseMs, () => {
        if (still) this.sched.sched(g.d, { type: 'sched', op: 'release', vcpu: 0, gen } as never);
        else this.sched.sched(g.d, { type: 'sched', op: 'block', vcpu: 0, gen } as never);
      });
    });
  }

  /** Work without end. */
  burnForever(g: SimGuest): void {
    g.busy = true;
    this.sched.sched(g.d, { type: 'sched', op: 'wake', vcpu: 0, gen: 0 } as never);
  }

  /** `ms` of work; resolves (through `done`) when done, with the wall time it took. */
  burn(g: SimGuest, ms: number, done: (wallMs: number) => void): void {
    const t0 = this.clock.t;
    g.busy = true;
    let left = ms * MS;
    let last = -1;
    const a = this.i32(g);
    // Work accrues while the thread runs under a slice it holds.
    const step = () => {
      this.clock.at(0.1, () => {
        if (g.held !== 0 && Atomics.load(a, vcpuWord(0, 'grant')) === g.held) {
          if (last >= 0) left -= this.clock.t - last;
          last = this.clock.t;
        } else last = -1;
        if (left > 0) { step(); return; }
        g.busy = false;
        const gen = g.held;
        g.held = 0;
        a[vcpuWord(0, 'held')] = 0;
        this.clock.at(this.releaseMs, () => {
          this.sched.sched(g.d, { type: 'sched', op: 'block', vcpu: 0, gen } as never);
          done((this.clock.t - t0) / MS);
        });
      });
    };
    this.sched.sched(g.d, { type: 'sched', op: 'wake', vcpu: 0, gen: 0 } as never);
    step();
  }

  running(g: SimGuest): number { return Number(this.sched.runstate(g.d, 0).time[RUNSTATE_running]); }
  runnable(g: SimGuest): number { return Number(this.sched.runstate(g.d, 0).time[RUNSTATE_runnable]); }

  /** Running ns of each guest over `ms` of simulated time. */
  window(gs: SimGuest[], ms: number): number[] {
    const r0 = gs.map((g) => this.running(g));
    this.clock.run(ms);
    return gs.map((g, i) => this.running(g) - r0[i]);
  }

  close(): void { this.sched.close(); }
}
