// A vCPU's thread (one piscina worker per vCPU, docs/design.md §4). A task names
// the vCPU it runs as; the thread runs guest work only while that vCPU's
// grant word holds a generation it has not given back:
//
//   preemptionPoint():  still my slice?  go on.
//                       revoked?  released=gen, ring the doorbell (the main
//                                 thread tells the hypervisor), then
//                       Atomics.wait on the grant word until a new slice.
//
// Work is cut into units of UNIT_MS so that a revocation is noticed within
// about a millisecond: that is what "giving the pCPU back promptly" means.
import { workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { vcpuWord } from '../../abi/vcpu.js';
import { VcpuArea, CTL_CLOSED, CTL_DOORBELL, ctlBlocked, ctlHeld } from './area.js';
import { futexWait } from '../../shm.js';
import type { VcpuTask, VcpuTaskResult, VcpuContext } from './task.js';

const area = new VcpuArea(workerData.area as SharedArrayBuffer);
const ctl = new Int32Array(workerData.ctl as SharedArrayBuffer);
export const UNIT_MS = 1;

class PoolClosed extends Error { constructor() { super('vCPU pool closed'); this.name = 'PoolClosed'; } }

function release(v: number): void {
  const held = Atomics.load(ctl, ctlHeld(v));
  if (!held) return;
  Atomics.store(ctl, ctlHeld(v), 0);
  area.setHeld(v, 0);
  area.setReleased(v, held);
  Atomics.add(ctl, CTL_DOORBELL, 1);
  Atomics.notify(ctl, CTL_DOORBELL);
}

/** Returns once vCPU v holds a slice; counts the time spent waiting. */
function preemptionPoint(v: number, stats: { waitNs: number }): void {
  const held = Atomics.load(ctl, ctlHeld(v));
  if (held && area.grant(v) === held) { area.setHeld(v, held); return; } // the fast path
  if (held) release(v);
  const t0 = process.hrtime.bigint();
  for (;;) {
    if (Atomics.load(ctl, CTL_CLOSED)) throw new PoolClosed();
    const g = area.grant(v);
    if (g !== 0 && g !== area.released(v)) { Atomics.store(ctl, ctlHeld(v), g); area.setHeld(v, g); break; }
    Atomics.wait(area.i32, vcpuWord(v, 'grant'), g);
  }
  stats.waitNs += Number(process.hrtime.bigint() - t0);
}

/** VcpuContext.block: give the slice back, sleep on the word, then wait for a new slice. */
function block(v: number, sab: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number,
               stats: { waitNs: number }): void {
  release(v);
  Atomics.store(ctl, ctlBlocked(v), 1);
  Atomics.add(ctl, CTL_DOORBELL, 1);
  Atomics.notify(ctl, CTL_DOORBELL);
  const t0 = process.hrtime.bigint();
  if (!Atomics.load(ctl, CTL_CLOSED)) futexWait(sab, byteOffset, expected, timeoutMs);
  stats.waitNs += Number(process.hrtime.bigint() - t0);
  Atomics.store(ctl, ctlBlocked(v), 0);
  Atomics.add(ctl, CTL_DOORBELL, 1);
  Atomics.notify(ctl, CTL_DOORBELL);
  preemptionPoint(v, stats);
}

/** Busy work of `ms`, in units, each inside a slice. Returns the time spent computing. */
function burn(v: number, ms: number, stats: { waitNs: number }): number {
  let workNs = 0;
  const total = ms * 1e6;
  let x = 0;
  while (workNs < total) {
    preemptionPoint(v, stats);
    const unit = Math.min(UNIT_MS * 1e6, total - workNs);
    const t0 = process.hrtime.bigint();
    let el = 0;
    while (el < unit) {
      for (let i = 0; i < 2000; i++) x = (x * 1103515245 + 12345) | 0;
      el = Number(process.hrtime.bigint() - t0);
    }
    workNs += el;
  }
  if (x === 42) workNs++; // keep the loop from being optimised away
  return workNs;
}

/**
 * Between tasks the thread keeps its slice (ctl) for the next task but runs
 * no guest code, so it does not count as holding the pCPU (area `held` 0):
 * a revocation that lands then costs the grace period, not a SIGSTOP.
 */
export default async function vcpuTask(t: VcpuTask): Promise<VcpuTaskResult> {
  try {
    return await runTask(t);
  } finally {
    area.setHeld(t.vcpu, 0);
  }
}

async function runTask(t: VcpuTask): Promise<VcpuTaskResult> {
  const stats = { waitNs: 0 };
  const v = t.vcpu;
  if (t.kind === 'burn') {
    const workNs = burn(v, t.ms, stats);
    return { workNs, waitNs: stats.waitNs, value: undefined };
  }
  preemptionPoint(v, stats);
  const mod = await import(t.module.startsWith('file:') ? t.module : pathToFileURL(t.module).href) as
    Record<string, (arg: unknown, ctx: VcpuContext) => unknown>;
  const fn = mod[t.name ?? 'default'];
  if (typeof fn !== 'function') throw new Error(`${t.module}: no export ${t.name ?? 'default'}`);
  const ctx: VcpuContext = {
    vcpu: v,
    preemptionPoint: () => preemptionPoint(v, stats),
    block: (sab, off, expected, timeoutMs) => block(v, sab, off, expected, timeoutMs, stats),
  };
  const t0 = process.hrtime.bigint();
  const value = await fn(t.arg, ctx);
  return { workNs: Number(process.hrtime.bigint() - t0) - stats.waitNs, waitNs: stats.waitNs, value };
}
