// Grant mappings of one vbd (Linux xen-blkback's persistent_gnt tree).
//
// Every guest page blkback touches comes from GNTTABOP_map_grant_ref, which
// the hypervisor checks (grantee is Domain-0, readonly against a writable
// map, the granter owns the frame): blkback never maps a page that was not
// granted to it.
//
// With feature-persistent negotiated (blkif.h "feature-persistent"), a
// frontend keeps granting the same pages, so a mapping is kept and reused
// until the device disconnects; those are mapped writable, as Linux does
// (the frontend grants them so). Beyond the persistent limit, and without
// the feature, a grant is mapped for one request (readonly when the backend
// only reads the page) and unmapped after it.
import type { GrantTable } from '../../../shared/xen/index.js';

/**
 * xen_blkif_max_pgrants: Linux's default is 1056 (32 requests of 33
 * pages); xenemu's front end keeps up to 2048 data pages and 32 indirect
 * pages granted (blkfront.ts BLKFRONT_POOL_PAGES), so the budget is twice
 * Linux's: every page of the front end's pool stays mapped.
 */
export const MAX_PERSISTENT_GRANTS = 2112;

export interface MappedGrant { page: Uint8Array; release(): void }

export class VbdGrants {
  private readonly persistent = new Map<number, Promise<{ handle: number; page: Uint8Array }>>();
  /** The persistent mappings that are done: the data path's lookup, without a promise. */
  private readonly ready = new Map<number, Uint8Array>();
  mapsDone = 0;

  constructor(private readonly gnttab: GrantTable, private readonly domid: number, readonly usePersistent: boolean,
              private readonly limit = MAX_PERSISTENT_GRANTS) {}

  get persistentCount(): number { return this.persistent.size; }

  /** Maps `gref`; `write`: the backend writes into the page (a disk read). Throws XenError on refusal. */
  async map(gref: number, write: boolean): Promise<MappedGrant> {
    if (this.usePersistent) {
      let p = this.persistent.get(gref);
      if (!p && this.persistent.size < this.limit) {
        this.mapsDone++;
        p = this.gnttab.mapGrant(this.domid, gref, false).then((m) => {
          if (this.persistent.get(gref) === p) this.ready.set(gref, m.page);
          return { handle: m.handle, page: m.page };
        });
        this.persistent.set(gref, p);
        // A refused map is not kept: the next request asks the hypervisor again.
        p.catch(() => { if (this.persistent.get(gref) === p) this.persistent.delete(gref); });
      }
      if (p) { const m = await p; return { page: m.page, release: () => undefined }; }
    }
    this.mapsDone++;
    const m = await this.gnttab.mapGrant(this.domid, gref, !write);
    return { page: m.page, release: () => { void this.gnttab.unmapGrant(m.handle); } };
  }

  /**
   * Why a map of `gref` was refused, for the count and the log: the
   * hypervisor answers GNTST_general_error both for a grant that is not
   * Domain-0's and for a writable map of a page granted read-only, as Xen
   * does. A read-only map that works tells them apart (and is undone at once).
   */
  async refusal(gref: number): Promise<'readonly_gref' | 'bad_gref'> {
    try {
      const m = await this.gnttab.mapGrant(this.domid, gref, true);
      await this.gnttab.unmapGrant(m.handle);
      return 'readonly_gref';
    } catch {
      return 'bad_gref';
    }
  }

  /**
   * The page of a persistent grant already mapped, or undefined (then map()
   * it). The hypervisor checked the grant when it was mapped; the front end
   * cannot revoke it while it is (GTF_reading/GTF_writing).
   */
  mapped(gref: number): Uint8Array | undefined { return this.ready.get(gref); }

  /** Unmaps every persistent grant (disconnect). */
  async clear(): Promise<void> {
    const all = [...this.persistent.values()];
    this.persistent.clear();
    this.ready.clear();
    await Promise.all(all.map((p) => p.then((m) => this.gnttab.unmapGrant(m.handle), () => undefined)));
  }
}
