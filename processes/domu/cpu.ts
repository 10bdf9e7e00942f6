// The guest's vCPUs as the shell's `burn` and `ps` see them.
//
// The real thing is the vCPU worker pool of shared/xen/vcpu (one worker
// thread per vCPU, run only inside the scheduler's time slices). Until that
// module exists, MainThreadVcpus stands in: it burns CPU on the domain's
// main thread in slices of a few milliseconds, yielding to the event loop in
// between so the console and xenbus stay responsive. It is one vCPU's worth
// of work whatever the vCPU count. Swapping in the pool is the one line in
// startVcpus().
import type { XenDomain } from '../../shared/xen/index.js';

export interface Vcpus {
  /** vCPUs online now. */
  readonly online: number;
  /** CPU milliseconds each vCPU has burned (index = vCPU id). */
  readonly cpuMs: readonly number[];
  /** Keeps every online vCPU busy for `seconds`; stops early when signal aborts. */
  burn(seconds: number, signal?: AbortSignal): Promise<{ cpuMs: number }>;
  setOnline(n: number): void;
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

  setOnline(n: number): void { this.online = Math.max(1, Math.min(this.max, n)); }

  async close(): Promise<void> { /* nothing to stop */ }
}

/** The vCPUs of this domain. */
export async function startVcpus(dom: XenDomain, online: number): Promise<Vcpus> {
  return new MainThreadVcpus(dom.hello.max_vcpus, online);
}
