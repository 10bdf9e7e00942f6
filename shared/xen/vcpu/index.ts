// A domain's vCPUs: one piscina worker thread per vCPU (docs/design.md §4), each
// running guest work only inside slices its hypervisor grants
// (docs/scheduler.md).
//
//   const pool = await VcpuPool.start(dom, 2);
//   const { cpuMs } = await pool.burn(0.5);   // 500 ms of CPU work, in slices
//   await pool.setOnline(1);                  // VCPUOP_down of vCPU 1
//   pool.stats();  await pool.close();
//
// The main thread is the domain's "hardware": it takes `slice` messages and
// Atomics.notify's the vCPU's grant word (the hypervisor cannot, being
// another process), hears its workers' releases on a doorbell word
// (Atomics.waitAsync) and reports them with `sched` messages, and tells the
// hypervisor when a vCPU has work (wake) or none left (block).
import type { Piscina } from 'piscina';
import { __HYPERVISOR_vcpu_op } from '../../abi/xen.js';
import {
  RUNSTATE_NAMES, RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running, VCPUOP_down, VCPUOP_up,
  XENEMU_VCPUOP_register_slice_area,
} from '../../abi/vcpu.js';
import { XenError } from '../hypervisor.js';
import type { XenDomain } from '../domain.js';
import { VcpuArea, CTL_CLOSED, CTL_DOORBELL, CTL_WORDS, ctlBlocked, ctlHeld } from './area.js';
import type { BurnTask, RunTask, VcpuTask, VcpuTaskResult } from './task.js';

export type { VcpuContext, VcpuTask, VcpuTaskResult } from './task.js';
export { VcpuArea } from './area.js';

/** ES2024's Atomics.waitAsync (in Node 20, not in this project's TypeScript lib). */
interface AtomicsWaitAsync {
  waitAsync(a: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}

/** A vCPU thread without work for this long exits; the next work starts a new one. */
const VCPU_THREAD_IDLE_MS = 60_000;
/**
 * V8 heap of a vCPU thread: guest work computes and allocates little, so a
 * small young generation (1 MB semi-spaces instead of up to 16) is enough.
 */
const VCPU_THREAD_LIMITS = { maxYoungGenerationSizeMb: 3 };

/** Work is handed to a vCPU in chunks of this much; between chunks another vCPU may take over. */
const BURN_CHUNK_MS = 10;

export interface VcpuStats {
  vcpu: number;
  online: boolean;
  state: (typeof RUNSTATE_NAMES)[number];
  /** Runstate times, ns, as the hypervisor accounted them. */
  running_ns: number;
  runnable_ns: number;
  blocked_ns: number;
  offline_ns: number;
  /** pCPU of the current or last slice, -1 if it never ran. */
  pcpu: number;
  slices: number;
  preempts: number;
  /** Time the domain was charged after ignoring a revocation, ns. */
  stolen_ns: number;
  /** Work done by this pool on the vCPU, ns. */
  work_ns: number;
  tasks: number;
}

export interface PoolStats { online: number; max: number; queued: number; vcpus: VcpuStats[] }

type TaskSpec = Omit<BurnTask, 'vcpu'> | Omit<RunTask, 'vcpu'>;

interface Job { task: TaskSpec; transferList?: Transferable[]; resolve: (r: VcpuTaskResult) => void; reject: (e: unknown) => void }

interface VcpuState {
  online: boolean;
  /** Told the hypervisor it has work (wake) and not yet block. */
  awake: boolean;
  /** Its work blocked itself (VcpuContext.block) and the hypervisor was told. */
  blockedInWork: boolean;
  busy: Promise<void> | null;
  reported: number;
  workNs: number;
  tasks: number;
}

export class VcpuPool {
  private readonly queue: Job[] = [];
  private readonly vcpus: VcpuState[] = [];
  private closed = false;
  private closing: Promise<void> | null = null;
  /** The worker threads, made on the first work (threads()). */
  private piscina: Promise<Piscina> | null = null;

  private constructor(private readonly dom: XenDomain, readonly area: VcpuArea, private readonly ctl: Int32Array,
                      private readonly ctlSab: SharedArrayBuffer, readonly maxVcpus: number) {
    for (let v = 0; v < maxVcpus; v++) {
      this.vcpus.push({ online: false, awake: false, blockedInWork: false, busy: null, reported: area.released(v), workNs: 0, tasks: 0 });
    }
  }

  /**
   * Maps the domain's vCPU area, registers for slices and brings `nrVcpus`
   * up (the rest down). Worker threads (one per vCPU with work, up to
   * max_vcpus) start when work comes.
   */
  static async start(dom: XenDomain, nrVcpus: number): Promise<VcpuPool> {
    const max = dom.hello.max_vcpus;
    if (!dom.hello.vcpu) throw new Error('the hypervisor offers no vCPU area');
    if (!Number.isInteger(nrVcpus) || nrVcpus < 1 || nrVcpus > max) {
      throw new RangeError(`nrVcpus must be 1..${max} (max_vcpus)`);
    }
    const area = VcpuArea.open(dom.hello.vcpu);
    const ctlSab = new SharedArrayBuffer(CTL_WORDS * 4);
    const ctl = new Int32Array(ctlSab);
    const rc = await dom.hv.hypercall(__HYPERVISOR_vcpu_op, XENEMU_VCPUOP_register_slice_area, {});
    if (rc.ret < 0) throw new XenError('XENEMU_VCPUOP_register_slice_area', rc.ret);
    const pool = new VcpuPool(dom, area, ctl, ctlSab, max);
    dom.hv.onSlice((v) => { if (v >= 0 && v < max) area.notifyGrant(v); });
    void pool.doorbell();
    await pool.setOnline(nrVcpus);
    return pool;
  }

  /** Busy CPU work of `seconds` in total, spread over the online vCPUs, each part inside slices. */
  async burn(seconds: number): Promise<{ cpuMs: number; wallMs: number }> {
    if (!(seconds >= 0)) throw new RangeError('seconds must be >= 0');
    const t0 = Date.now();
    let left = Math.round(seconds * 1000);
    const parts: Promise<VcpuTaskResult>[] = [];
    while (left > 0) {
      const ms = Math.min(BURN_CHUNK_MS, left);
      left -= ms;
      parts.push(this.submit({ kind: 'burn', ms }));
    }
    const done = await Promise.all(parts);
    return { cpuMs: done.reduce((s, r) => s + r.workNs, 0) / 1e6, wallMs: Date.now() - t0 };
  }

  /**
   * General guest work on some online vCPU: `module` exports `name`, called
   * as fn(arg, ctx) once the vCPU holds a slice (see task.ts RunTask).
   */
  async run<T = unknown>(task: { module: string; name?: string; arg?: unknown }, transferList?: Transferable[]): Promise<T> {
    const r = await this.submit({ kind: 'run', ...task }, transferList);
    return r.value as T;
  }

  /** Hot-plug (VCPUOP_up) or unplug (VCPUOP_down, after its current chunk) so that `n` vCPUs are online. */
  async setOnline(n: number): Promise<void> {
    if (this.closed) throw new Error('vCPU pool closed');
    if (!Number.isInteger(n) || n < 1 || n > this.maxVcpus) throw new RangeError(`n must be 1..${this.maxVcpus}`);
    for (let v = 0; v < this.maxVcpus; v++) {
      const s = this.vcpus[v];
      if (v < n && !s.online) {
        const r = await this.dom.hv.hypercall(__HYPERVISOR_vcpu_op, VCPUOP_up, { vcpuid: v });
        if (r.ret < 0) throw new XenError('VCPUOP_up', r.ret);
        s.online = true;
      } else if (v >= n && (s.online || this.area.online(v))) {
        s.online = false; // no new work from now on
        while (s.busy) await s.busy;
        this.block(v);
        const r = await this.dom.hv.hypercall(__HYPERVISOR_vcpu_op, VCPUOP_down, { vcpuid: v });
        if (r.ret < 0) throw new XenError('VCPUOP_down', r.ret);
      }
    }
    this.pump();
  }

  get online(): number { return this.vcpus.filter((s) => s.online).length; }

  stats(): PoolStats {
    const vcpus = this.vcpus.map((s, v): VcpuStats => {
      const r = this.area.runstate(v);
      const now = process.hrtime.bigint();
      const time = r.time.map(Number);
      // The area holds the times up to state_entry_time; the current state has run since.
      if (r.state_entry_time > 0n && now > r.state_entry_time) time[r.state] += Number(now - r.state_entry_time);
      return {
        vcpu: v, online: this.area.online(v), state: RUNSTATE_NAMES[r.state] ?? 'offline',
        running_ns: time[RUNSTATE_running], runnable_ns: time[RUNSTATE_runnable], blocked_ns: time[RUNSTATE_blocked],
        offline_ns: time[RUNSTATE_offline], pcpu: this.area.pcpu(v), slices: this.area.slices(v),
        preempts: this.area.preempts(v), stolen_ns: Number(this.area.stolenNs(v)), work_ns: s.workNs, tasks: s.tasks,
      };
    });
    return { online: this.online, max: this.maxVcpus, queued: this.queue.length, vcpus };
  }

  /** Gives every slice back (block), stops the threads; queued work is rejected. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      for (const j of this.queue.splice(0)) j.reject(new Error('vCPU pool closed'));
      Atomics.store(this.ctl, CTL_CLOSED, 1);
      for (let v = 0; v < this.maxVcpus; v++) this.area.notifyGrant(v);
      await Promise.allSettled(this.vcpus.map((s) => s.busy));
      for (let v = 0; v < this.maxVcpus; v++) this.block(v);
      Atomics.notify(this.ctl, CTL_DOORBELL);
      this.dom.hv.onSlice(() => {});
      if (this.piscina) await (await this.piscina).destroy();
    })();
    return this.closing;
  }

  // ---- dispatch ---------------------------------------------------------------

  /**
   * A vCPU's thread starts with its first work and goes after a minute
   * without any (VCPU_THREAD_IDLE_MS), and piscina itself is loaded only
   * then: an idle guest holds no worker isolate and no pool code (about
   * 8 MB of RSS, docs/benchmarks.md "density"), and its boot waits for
   * neither. The scheduler sees no difference: a vCPU without work is
   * blocked whether its thread exists or not, and work still runs only
   * inside granted slices.
   */
  private threads(): Promise<Piscina> {
    this.piscina ??= import('piscina').then(({ Piscina }) => new Piscina({
      filename: new URL('./worker.js', import.meta.url).href,
      minThreads: 0, maxThreads: this.maxVcpus, idleTimeout: VCPU_THREAD_IDLE_MS, concurrentTasksPerWorker: 1,
      workerData: { area: this.area.sab, ctl: this.ctlSab },
      resourceLimits: VCPU_THREAD_LIMITS,
    }));
    return this.piscina;
  }

  private submit(task: TaskSpec, transferList?: Transferable[]): Promise<VcpuTaskResult> {
    if (this.closed) return Promise.reject(new Error('vCPU pool closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task, transferList, resolve, reject });
      this.pump();
    });
  }

  /** Hands queued work to idle online vCPUs. */
  private pump(): void {
    for (let v = 0; v < this.maxVcpus && this.queue.length > 0; v++) {
      const s = this.vcpus[v];
      if (s.online && !s.busy) this.startOn(v, this.queue.shift()!);
    }
  }

  private startOn(v: number, job: Job): void {
    const s = this.vcpus[v];
    s.busy = (async () => {
      try {
        const threads = await this.threads();
        // A thread that has yet to start boots before the vCPU asks for a
        // slice, so that its boot is not charged as running time: an empty
        // burn needs no slice.
        if (threads.threads.length < this.vcpus.filter((x) => x.busy).length) {
          await threads.run({ kind: 'burn', ms: 0, vcpu: v } satisfies VcpuTask);
        }
        if (!s.awake) {
          s.awake = true;
          this.dom.hv.sched('wake', v);
        }
        const r = await threads.run({ ...job.task, vcpu: v } as VcpuTask,
          job.transferList ? { transferList: job.transferList as never } : {}) as VcpuTaskResult;
        s.workNs += r.workNs;
        s.tasks++;
        job.resolve(r);
      } catch (e) {
        job.reject(e);
      }
      s.busy = null;
      // More work: keep the slice and go on; none: SCHEDOP_block.
      const next = s.online && !this.closed ? this.queue.shift() : undefined;
      if (next) this.startOn(v, next);
      else { this.block(v); this.pump(); }
    })();
  }

  /** The vCPU has nothing to do: give back the slice its thread holds, if any, and block. */
  private block(v: number): void {
    const s = this.vcpus[v];
    if (!s.awake) return;
    s.awake = false;
    const held = Atomics.exchange(this.ctl, ctlHeld(v), 0);
    if (held) { this.area.setHeld(v, 0); this.area.setReleased(v, held); s.reported = held; }
    this.dom.hv.sched('block', v, held);
  }

  /** Reports the releases of revoked slices that workers rang in (no polling: Atomics.waitAsync). */
  private async doorbell(): Promise<void> {
    let seen = Atomics.load(this.ctl, CTL_DOORBELL);
    while (!this.closed) {
      const w = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.ctl, CTL_DOORBELL, seen);
      if (w.async) await w.value;
      seen = Atomics.load(this.ctl, CTL_DOORBELL);
      for (let v = 0; v < this.maxVcpus; v++) {
        const s = this.vcpus[v];
        const rel = this.area.released(v);
        if (rel !== 0 && rel !== s.reported) {
          s.reported = rel;
          this.dom.hv.sched('release', v, rel);
        }
        // Work that blocks inside itself (VcpuContext.block): blocked while
        // it sleeps, runnable again when it wakes.
        const blocked = Atomics.load(this.ctl, ctlBlocked(v)) === 1;
        if (blocked && s.awake && s.busy) {
          s.awake = false;
          s.blockedInWork = true;
          this.dom.hv.sched('block', v, 0);
        } else if (!blocked && s.blockedInWork) {
          s.blockedInWork = false;
          if (s.busy && !s.awake) { s.awake = true; this.dom.hv.sched('wake', v); }
        }
      }
    }
  }
}
