// Round-robin policy: one FIFO run queue per pCPU, fixed slices, no weights.
// The first policy behind the mechanism (sched_core.ts), kept as a reference
// and for comparison (`--sched rr`); Xen's credit scheduler (sched_credit.ts)
// is the default. Hard affinity comes with the mechanism's `eligible`.
//
//   enqueue  onto the shortest queue, its last pCPU's on a tie (cache warmth
//            means nothing here, but it keeps a lone vCPU where it was)
//   pick     the first eligible vCPU of the pCPU's own queue, else steal the
//            first eligible one of another queue (Xen's csched_load_balance)
import { DEFAULT_SLICE_MS, type SchedPolicy, type SchedVcpu } from './sched_core.js';

export class RoundRobinPolicy implements SchedPolicy {
  readonly name = 'rr';
  /** Not one of Xen's schedulers (XEN_SCHEDULER_*): it has no parameters. */
  readonly schedId = 0;
  private readonly queues: SchedVcpu[][] = [];

  constructor(pcpus: number, private readonly slice = DEFAULT_SLICE_MS) {
    for (let i = 0; i < pcpus; i++) this.queues.push([]);
  }

  enqueue(v: SchedVcpu): void {
    if (v.policy !== null) return;
    let best = v.lastPcpu >= 0 && v.lastPcpu < this.queues.length ? v.lastPcpu : 0;
    for (let i = 0; i < this.queues.length; i++) if (this.queues[i].length < this.queues[best].length) best = i;
    this.queues[best].push(v);
    v.policy = best;
  }

  dequeue(v: SchedVcpu): void {
    if (v.policy === null) return;
    const q = this.queues[v.policy as number];
    const i = q.indexOf(v);
    if (i >= 0) q.splice(i, 1);
    v.policy = null;
  }

  pick(p: number, eligible: (v: SchedVcpu) => boolean): SchedVcpu | null {
    for (let k = 0; k < this.queues.length; k++) {
      const q = this.queues[(p + k) % this.queues.length];
      const i = q.findIndex(eligible);
      if (i >= 0) {
        const v = q[i];
        q.splice(i, 1);
        v.policy = null;
        return v;
      }
    }
    return null;
  }

  waiting(_p: number, eligible: (v: SchedVcpu) => boolean): boolean {
    return this.queues.some((q) => q.some(eligible));
  }

  sliceMs(): number { return this.slice; }
}
