// Time for qemu-dm's devices (shared/hw/machine.ts Clock): a monotonic
// nanosecond clock and one-shot timers that the ioreq thread fires between
// requests, and whose nearest deadline bounds how long it sleeps.
import type { Clock } from '../../shared/hw/machine.js';

interface Timer { id: number; at: number; fn: () => void }

export class TimerClock implements Clock {
  private timers: Timer[] = [];
  private nextId = 1;

  now(): number { return Number(process.hrtime.bigint()); }

  setTimer(deadlineNs: number, fn: () => void): number {
    const t = { id: this.nextId++, at: deadlineNs, fn };
    let i = this.timers.length;
    while (i > 0 && this.timers[i - 1]!.at > deadlineNs) i--;
    this.timers.splice(i, 0, t);
    return t.id;
  }

  cancel(handle: number): void {
    const i = this.timers.findIndex((t) => t.id === handle);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** Fires what is due; returns ms until the next deadline (-1: none). */
  run(): number {
    const now = this.now();
    while (this.timers.length && this.timers[0]!.at <= now) this.timers.shift()!.fn();
    return this.timers.length ? Math.max(0, (this.timers[0]!.at - this.now()) / 1e6) : -1;
  }
}
