// The guest's vCPUs as the shell's `burn` and `ps` see them.
//
// The real thing is the vCPU worker pool of shared/xen/vcpu (one piscina
// worker thread per vCPU, running only inside the scheduler's time slices):
// PoolVcpus. MainThreadVcpus stands in when the hypervisor offers no vCPU
// area: it burns CPU on the domain's main thread in slices of a few
// milliseconds, yielding to the event loop in between so the console and
// xenbus stay responsive; it is one vCPU's worth of work whatever the count.
import type { XenDomain } from '../../shared/xen/index.js';
import { VcpuPool } from '../../shared/xen/vcpu/index.js';

export interface Vcpus {
  /** vCPUs online now. */
  readonly online: number;
  /** CPU milliseconds each vCPU has burned (index = vCPU id). */
  readonly cpuMs: readonly number[];
  /** Keeps every online vCPU busy for `seconds`; stops early when signal aborts. */
  burn(seconds: number, signal?: AbortSignal): Promise<{ cpuMs: number }>;
  setOnline(n: number): Promise<void>;
  close(): Promise<void>;
}

const SLICE_MS = 5;

export class MainThreadVcpus implements Vcpus {
  online: number;
  readonly cpuMs: number[];

  constructor(readonly max: number, online = max) {
    this.online = Math.max(1, Math.min(max, online));
    this.cpuMs = new Array<number>(max).fill(0);
  }

  async burn(seconds: number, signal?: AbortSignal): Promise<{ cpuMs: number }> {
    const start = performance.now();
    const endAt = start + seconds * 1000;
    const cpu0 = process.cpuUsage();
    let sink = 0;
    while (performance.now() < endAt && !signal?.aborted) {
      const sliceEnd = Math.min(endAt, performance.now() + SLICE_MS);
      while (performance.now() < sliceEnd) sink = (sink * 1103515245 + 12345) % 2147483647;
      await new Promise<void>((r) => setImmediate(r));
    }
    const used = process.cpuUsage(cpu0);
    const ms = (used.user + used.system) / 1000;
    this.cpuMs[0] = (this.cpuMs[0] ?? 0) + ms;
    return { cpuMs: sink >= 0 ? ms : 0 };
  }

  async setOnline(n: number): Promise<void> { this.online = Math.max(1, Math.min(this.max, n)); }

  async close(): Promise<void> { /* nothing to stop */ }
}

/**
 * `burn` as `stress -c <vCPUs> -t SECONDS`: SECONDS of work on every online
 * vCPU, handed to the pool in steps so that Ctrl-C stops it within a step
 * (the pool's own burn cannot be cancelled).
 */
const BURN_STEP_S = 0.25;

export class PoolVcpus implements Vcpus {
  constructor(private readonly pool: VcpuPool) {}

  get online(): number { return this.pool.online; }

  get cpuMs(): number[] { return this.pool.stats().vcpus.map((v) => v.work_ns / 1e6); }

  async burn(seconds: number, signal?: AbortSignal): Promise<{ cpuMs: number }> {
    let left = seconds;
    let cpuMs = 0;
    while (left > 0 && !signal?.aborted) {
      const step = Math.min(BURN_STEP_S, left);
      left -= step;
      cpuMs += (await this.pool.burn(step * this.pool.online)).cpuMs;
    }
    return { cpuMs };
  }

  setOnline(n: number): Promise<void> { return this.pool.setOnline(n); }

  close(): Promise<void> { return this.pool.close(); }
}

/** The vCPUs of this domain: the slice-scheduled pool, or the main thread when there is no vCPU area. */
export async function startVcpus(dom: XenDomain, online: number, log: (m: string) => void): Promise<Vcpus> {
  const n = Math.max(1, Math.min(dom.hello.max_vcpus, online));
  try {
    return new PoolVcpus(await VcpuPool.start(dom, n));
  } catch (err) {
    log(`smp: no vCPU pool (${(err as Error).message}); running guest work on the boot CPU`);
    return new MainThreadVcpus(dom.hello.max_vcpus, n);
  }
}
