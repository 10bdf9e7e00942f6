// Host memory accounting and the frame ownership table (docs/design.md §3).
//
// The host has `total` pages. Every domain owns a set of populated pseudo-
// physical frames (pfns) inside its own `dom<id>.mem` segment; a pfn is owned
// when its bit in the domain's `populated` table is set. Ballooning
// (XENMEM_decrease_reservation) clears ownership and punches the page out of
// the segment, so the host really gets it back; increase_reservation takes
// pages from the host's free pool. Anything that does not fit is refused
// with -ENOMEM and a log line that says what was asked and what is left.
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { shmRelease } from '../../shared/shm.js';

export class HostMemory {
  private free: number;
  private readonly perDomain = new Map<number, number>();

  constructor(readonly totalPages: number, private readonly log: (m: string) => void) {
    this.free = totalPages;
  }

  get freePages(): number { return this.free; }

  pagesOf(domid: number): number { return this.perDomain.get(domid) ?? 0; }

  /** Takes `pages` from the host for `domid`; false (and a log line) if they do not fit. */
  allocate(domid: number, pages: number, what: string): boolean {
    if (pages < 0 || pages > this.free) {
      this.log(`memory: refusing ${what} for d${domid}: ${pages} pages (${pagesToMB(pages)} MB) asked, ` +
               `${this.free} pages (${pagesToMB(this.free)} MB) free of ${this.totalPages}`);
      return false;
    }
    this.free -= pages;
    this.perDomain.set(domid, this.pagesOf(domid) + pages);
    return true;
  }

  release(domid: number, pages: number): void {
    const held = this.pagesOf(domid);
    const n = Math.min(held, pages);
    this.free += n;
    if (held - n === 0) this.perDomain.delete(domid); else this.perDomain.set(domid, held - n);
  }

  releaseAll(domid: number): void { this.release(domid, this.pagesOf(domid)); }
}

export function pagesToMB(pages: number): number {
  return Math.round((pages * PAGE_SIZE) / (1024 * 1024));
}

export function mbToPages(mb: number): number {
  return Math.floor((mb * 1024 * 1024) / PAGE_SIZE);
}

/**
 * Per-domain frame ownership: which pfns of its segment are populated, one
 * byte per pfn (1: owned). It lives in the domain's `dom<id>.frames`
 * segment when one is given, where the IOMMU of a device the domain owns
 * reads it at each DMA (shared/hw/iommu.ts); only the hypervisor writes it.
 */
export class FrameTable {
  private readonly owned: Uint8Array;
  private count = 0;

  constructor(readonly maxPfns: number, shared?: SharedArrayBuffer) {
    this.owned = shared ? new Uint8Array(shared, 0, maxPfns) : new Uint8Array(maxPfns);
  }

  get populated(): number { return this.count; }

  isOwned(pfn: number): boolean {
    return Number.isInteger(pfn) && pfn >= 0 && pfn < this.maxPfns && this.owned[pfn] === 1;
  }

  /** Populates the lowest `n` free pfns (or exactly `pfns` when given); returns those populated. */
  populate(n: number, pfns?: number[]): number[] {
    const out: number[] = [];
    if (pfns) {
      for (const p of pfns.slice(0, n)) {
        if (!Number.isInteger(p) || p < 0 || p >= this.maxPfns) break;
        // Only newly owned pfns count: a guest naming pfns it already has
        // must not be charged host pages that back nothing (the caller gives
        // back whatever was not populated).
        if (this.owned[p] !== 0) continue;
        Atomics.store(this.owned, p, 1);
        this.count++;
        out.push(p);
      }
      return out;
    }
    for (let p = 0; p < this.maxPfns && out.length < n; p++) {
      if (this.owned[p] === 0) { Atomics.store(this.owned, p, 1); this.count++; out.push(p); }
    }
    return out;
  }

  /** Gives back pfn (and its backing page in `mem`); false if it was not owned. */
  depopulate(pfn: number, mem: SharedArrayBuffer | null): boolean {
    if (!this.isOwned(pfn)) return false;
    Atomics.store(this.owned, pfn, 0); // before the page goes: a device's DMA checks the table first
    this.count--;
    if (mem) shmRelease(mem, pfn * PAGE_SIZE, PAGE_SIZE);
    return true;
  }
}

// --- memory_op (xen/common/memory.c) ---
import { XEN_EINVAL, XEN_ENOMEM, XEN_EOPNOTSUPP } from '../../shared/abi/errno.js';
import { XENMEM_resource_ioreq_server } from '../../shared/abi/memory.js';
import { acquireIoreqServer } from './hvm.js';
import { markDirty } from './log_dirty.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

const MAX_ORDER = 9;

/**
 * XENMEM_increase_reservation / populate_physmap: returns the number of
 * extents done, as Xen does (fewer than asked when memory ran out).
 */
export function memoryIncrease(hv: Hypervisor, _caller: Domain, d: Domain,
                               arg: { nr_extents?: number; extent_order?: number; extent_start?: number[] }): HcResult {
  const n = Number(arg.nr_extents ?? 0);
  const order = Number(arg.extent_order ?? 0);
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(order) || order < 0 || order > MAX_ORDER) return -XEN_EINVAL;
  const per = 1 << order;
  const done: number[] = [];
  for (let i = 0; i < n; i++) {
    if (d.totPages + per > d.maxPages) {
      hv.console.log(`memory: d${d.domid} at max_pages ${d.maxPages}, increase_reservation stops after ${i} extents`);
      break;
    }
    if (!hv.memory.allocate(d.domid, per, 'increase_reservation')) break;
    const want = arg.extent_start?.[i];
    const pfns = d.frames.populate(per, want === undefined ? undefined : Array.from({ length: per }, (_, k) => want + k));
    if (pfns.length < per) { hv.memory.release(d.domid, per - pfns.length); if (pfns.length === 0) break; }
    for (const pfn of pfns) markDirty(d, pfn);
    done.push(pfns[0]!);
  }
  if (done.length === 0 && n > 0) return -XEN_ENOMEM;
  hv.domainsChanged();
  return { ret: done.length, data: { extent_start: done } };
}

/** XENMEM_decrease_reservation: frees the named pfns and gives their pages back. */
export function memoryDecrease(hv: Hypervisor, _caller: Domain, d: Domain,
                               arg: { nr_extents?: number; extent_order?: number; extent_start?: number[] }): HcResult {
  const order = Number(arg.extent_order ?? 0);
  const list = Array.isArray(arg.extent_start) ? arg.extent_start.slice(0, Number(arg.nr_extents ?? arg.extent_start.length)) : null;
  if (!list || !Number.isInteger(order) || order < 0 || order > MAX_ORDER) return -XEN_EINVAL;
  let done = 0;
  for (const first of list) {
    let freed = 0;
    for (let k = 0; k < 1 << order; k++) if (d.frames.depopulate(Number(first) + k, d.mem)) { freed++; markDirty(d, Number(first) + k); }
    hv.memory.release(d.domid, freed);
    if (freed === 0) break;
    done++;
  }
  hv.domainsChanged();
  return done;
}

export function memoryCurrent(_hv: Hypervisor, _caller: Domain, d: Domain): HcResult {
  return d.totPages;
}

export function memoryMaximum(_hv: Hypervisor, _caller: Domain, d: Domain): HcResult {
  return d.maxPages;
}

/** XENMEM_get_sharing_freed_pages / _shared_pages: xenemu shares no pages. */
export function memorySharingPages(): HcResult {
  return 0;
}



/** XENMEM_acquire_resource (memory.h): where a resource's frames are, for the caller to map. */
export function memoryAcquireResource(_hv: Hypervisor, _caller: Domain, d: Domain,
                                      arg: { type?: number; id?: number; frame?: number; nr_frames?: number }): HcResult {
  if (arg.type === XENMEM_resource_ioreq_server) return acquireIoreqServer(d, arg);
  return -XEN_EOPNOTSUPP;
}
