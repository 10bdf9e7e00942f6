// The balloon driver (Linux drivers/xen/balloon.c, Mini-OS balloon.c): the
// toolstack writes memory/target (KiB); the guest gives frames back with
// XENMEM_decrease_reservation or asks for them with
// XENMEM_increase_reservation until its reservation matches, so the
// hypervisor's accounting (tot_pages, host free memory) follows.
//
// The guest keeps its own map of populated pfns. It balloons from the top of
// memory down and never touches the frames below `floor` (kernel image,
// start_info, xenstore and console rings); going up it fills the lowest
// holes first. One adjustment runs at a time; a target that changes meanwhile
// is picked up when it ends.
import { XENMEM_decrease_reservation, XENMEM_increase_reservation } from '../../shared/abi/memory.js';
import { DOMID_SELF } from '../../shared/abi/xen.js';
import type { HypervisorClient } from '../../shared/xen/index.js';

/** Frames per hypercall: keeps each message small. */
const BATCH = 2048;

export class Balloon {
  private readonly populated: Uint8Array;
  private count: number;
  private target: number;
  private running: Promise<void> | null = null;
  private rerun = false;
  /** Set when the hypervisor refused more frames (max_pages or host memory). */
  lastError = '';

  constructor(private readonly hv: HypervisorClient, readonly maxPfns: number, nrPages: number,
              public floor: number, private readonly log: (m: string) => void) {
    this.populated = new Uint8Array(maxPfns);
    this.populated.fill(1, 0, Math.min(nrPages, maxPfns));
    this.count = Math.min(nrPages, maxPfns);
    this.target = this.count;
  }

  /**
   * Takes `n` populated frames just above the floor for a driver's rings and
   * buffers and raises the floor over them, so the balloon never gives them
   * back. Returns the first pfn, or -1 when they are not all populated.
   */
  reserve(n: number): number {
    const first = this.floor;
    if (first + n >= this.maxPfns) return -1;
    for (let p = first; p < first + n; p++) if (!this.populated[p]) return -1;
    this.floor = first + n;
    if (this.target < this.floor + 1) this.target = this.floor + 1;
    return first;
  }

  /** Pages the guest holds now. */
  get pages(): number { return this.count; }
  get targetPages(): number { return this.target; }

  /** memory/target changed (KiB). Resolves when the reservation was adjusted as far as it goes. */
  setTargetKb(kb: number): Promise<void> {
    if (!Number.isFinite(kb) || kb <= 0) return Promise.resolve();
    this.target = Math.max(this.floor + 1, Math.min(this.maxPfns, Math.floor(kb / 4)));
    if (this.running) { this.rerun = true; return this.running; }
    this.running = (async () => {
      try {
        do { this.rerun = false; await this.adjust(); } while (this.rerun);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private async adjust(): Promise<void> {
    while (this.count > this.target) {
      const pfns: number[] = [];
      for (let p = this.maxPfns - 1; p >= this.floor && pfns.length < Math.min(BATCH, this.count - this.target); p--) {
        if (this.populated[p]) pfns.push(p);
      }
      if (pfns.length === 0) break;
      const r = await this.hv.memory_op(XENMEM_decrease_reservation, {
        extent_start: pfns, nr_extents: pfns.length, extent_order: 0, domid: DOMID_SELF });
      const done = Math.max(0, r.ret);
      for (const p of pfns.slice(0, done)) this.populated[p] = 0;
      this.count -= done;
      if (done < pfns.length) { this.lastError = `decrease_reservation gave back ${done} of ${pfns.length}`; break; }
    }
    while (this.count < this.target) {
      const pfns: number[] = [];
      for (let p = this.floor; p < this.maxPfns && pfns.length < Math.min(BATCH, this.target - this.count); p++) {
        if (!this.populated[p]) pfns.push(p);
      }
      if (pfns.length === 0) break;
      const r = await this.hv.memory_op<{ extent_start?: number[] }>(XENMEM_increase_reservation, {
        extent_start: pfns, nr_extents: pfns.length, extent_order: 0, domid: DOMID_SELF });
      const got = r.ret > 0 ? (r.data?.extent_start ?? pfns.slice(0, r.ret)) : [];
      for (const p of got) if (p >= 0 && p < this.maxPfns && !this.populated[p]) { this.populated[p] = 1; this.count++; }
      if (got.length < pfns.length) {
        this.lastError = `increase_reservation got ${got.length} of ${pfns.length} (${r.ret < 0 ? r.ret : 'limit'})`;
        this.log(`xen:balloon: ${this.lastError}; staying at ${this.count * 4} kB`);
        break;
      }
    }
  }
}
