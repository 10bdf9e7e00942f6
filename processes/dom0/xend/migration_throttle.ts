// Auto-converge for live migration (docs/saverestore.md): a guest that
// dirties its memory faster than pre-copy sends it gets a lower credit
// scheduler cap (XEN_DOMCTL_scheduler_op putinfo, as `xl sched-credit -c`),
// step by step, so each round finds fewer dirty pages and the last one,
// sent while it is stopped, is short. QEMU's auto-converge throttles vCPUs
// the same way; Clark et al. call it "dynamic rate-limiting" of the
// writable working set. The cap it had is put back before the suspend
// (which must not run slowly: it is downtime) and whenever the migration
// fails.
import type { XenSchedControl } from './sched_control.js';

/** The caps tried in turn, in % of one pCPU. */
export const THROTTLE_CAPS = [50, 20, 5];

export class MigrationThrottle {
  private step_ = 0;
  private saved: { cap: number } | null = null;

  constructor(private readonly sched: Pick<XenSchedControl, 'credit' | 'setCredit'>, private readonly domid: number,
              private readonly log: (m: string) => void) {}

  /** The next lower cap; false when there is none (or the scheduler refuses). */
  async step(): Promise<boolean> {
    if (this.step_ >= THROTTLE_CAPS.length) return false;
    try {
      if (!this.saved) this.saved = { cap: (await this.sched.credit(this.domid)).cap };
      // A cap the guest already had that is lower stays.
      const cap = THROTTLE_CAPS[this.step_++]!;
      if (this.saved.cap !== 0 && this.saved.cap <= cap) return false;
      await this.sched.setCredit(this.domid, { cap });
      this.log(`xend: d${this.domid}: pre-copy does not converge, cap ${cap}%`);
      return true;
    } catch (e) {
      this.log(`xend: d${this.domid}: cannot throttle: ${(e as Error).message}`);
      return false;
    }
  }

  /** The cap the guest had. */
  async release(): Promise<void> {
    if (!this.saved) return;
    const { cap } = this.saved;
    this.saved = null;
    await this.sched.setCredit(this.domid, { cap });
  }
}
