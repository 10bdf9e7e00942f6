// Time for a hosted model (shared/hw/machine.ts Clock) on the device
// process's event loop: setTimeout per timer, all cancelled at an FLR.
import type { Clock } from '../../shared/hw/machine.js';

export class LoopClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout | NodeJS.Immediate>();
  private nextId = 1;

  now(): number { return Number(process.hrtime.bigint()); }

  setTimer(deadlineNs: number, fn: () => void): number {
    const id = this.nextId++;
    const ms = (deadlineNs - this.now()) / 1e6;
    const run = () => { this.timers.delete(id); fn(); };
    // A timer due now (a model's work left for later) runs at the loop's next turn, not setTimeout's 1 ms on.
    this.timers.set(id, ms <= 0 ? setImmediate(run) : setTimeout(run, ms));
    return id;
  }

  cancel(handle: number): void {
    const t = this.timers.get(handle);
    if (t) { clear(t); this.timers.delete(handle); }
  }

  cancelAll(): void {
    for (const t of this.timers.values()) clear(t);
    this.timers.clear();
  }
}

/** A Timeout has refresh(), an Immediate has not. */
function clear(t: NodeJS.Timeout | NodeJS.Immediate): void {
  if ('refresh' in t) clearTimeout(t); else clearImmediate(t);
}
