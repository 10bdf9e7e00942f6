// The milliseconds of each step of a build, for the log: where a domain's
// creation, or a migration's commit, spends its time.
export class Steps {
  private readonly done: Array<[string, number]> = [];

  /** Runs `fn` and records its time under `name` (a step run twice adds up). */
  run<T>(name: string, fn: () => T): T {
    const t0 = performance.now();
    const note = () => this.add(name, performance.now() - t0);
    const r = fn();
    if (r instanceof Promise) return r.finally(note) as T;
    note();
    return r;
  }

  add(name: string, ms: number): void {
    const e = this.done.find(([n]) => n === name);
    if (e) e[1] += ms; else this.done.push([name, ms]);
  }

  get total(): number { return this.done.reduce((a, [, ms]) => a + ms, 0); }

  /** As the log prints them: "evtchn 1.2, gnttab 0.3, ...". */
  toString(): string { return this.done.map(([n, ms]) => `${n} ${ms.toFixed(1)}`).join(', '); }

  record(): Record<string, number> { return Object.fromEntries(this.done); }
}
