// Time for a hosted model (shared/hw/machine.ts Clock) on the device
// process's event loop: setTimeout per timer, all cancelled at an FLR.
import type { Clock } from '../../shared/hw/machine.js';

export class LoopClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  now(): number { return Number(process.hrtime.bigint()); }

  setTimer(deadlineNs: number, fn: () => void): number {
    const id = this.nextId++;
    const t = setTimeout(() => { this.timers.delete(id); fn(); }, Math.max(0, (deadlineNs - this.now()) / 1e6));
    this.timers.set(id, t);
    return id;
  }

  cancel(handle: number): void {
    const t = this.timers.get(handle);
    if (t) { clearTimeout(t); this.timers.delete(handle); }
  }

  cancelAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
