// Log-dirty for a live migration's source (docs/saverestore.md): which
// pages of the guest were written since the last look, from everything
// that writes them.
//
//   the guest itself, through its domain      write-protection of that mapping (shared/dirty.ts
//   process's mapping                         WriteLog: userfaultfd, PAGEMAP_SCAN)
//   back ends, through grants (blkback's      the hypervisor's log (XEN_DOMCTL_shadow_op CLEAN,
//   mappings, netback's copies), ballooning   processes/hypervisor/log_dirty.ts); at the stop with
//                                             XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL, which adds every
//                                             frame still mapped writable
//   xenstored and xenconsoled, through        their two ring frames (store/ring-ref,
//   Domain-0's own mappings of the rings      console/ring-ref), always looked at
//
// Together they are every writer of a PV guest's pages, so the last round,
// with the guest stopped, compares only those pages instead of every
// populated frame.
import {
  XEN_DOMCTL_shadow_op, XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL, XEN_DOMCTL_SHADOW_OP_CLEAN, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY,
  XEN_DOMCTL_SHADOW_OP_OFF,
} from '../../../shared/abi/domctl.js';
import { errnoName } from '../../../shared/abi/errno.js';
import type { HypervisorClient } from '../../../shared/xen/index.js';
import type { WriteLog } from '../../../shared/dirty.js';

export class DomainLogDirty {
  /** Which pfns one clean() already listed. */
  private readonly seen: Uint8Array;
  private readonly out: Uint32Array;

  private constructor(private readonly hv: HypervisorClient, readonly domid: number, private readonly wp: WriteLog,
                      private readonly rings: number[], readonly maxPfns: number) {
    this.seen = new Uint8Array(maxPfns);
    this.out = new Uint32Array(maxPfns);
  }

  /**
   * Turns the hypervisor's log on for `domid` (XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY)
   * beside the write-protection `wp` already armed; the reason when it cannot.
   */
  static async enable(hv: HypervisorClient, domid: number, wp: WriteLog, rings: number[], maxPfns: number): Promise<DomainLogDirty | string> {
    const r = await hv.domctl(XEN_DOMCTL_shadow_op, { domain: domid, op: XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY });
    if (r.ret < 0) return `XEN_DOMCTL_shadow_op ENABLE_LOGDIRTY: ${errnoName(r.ret)}`;
    return new DomainLogDirty(hv, domid, wp, rings, maxPfns);
  }

  /**
   * The pfns written since the last call, each once (a view, valid until the
   * next call). `final`: the guest is stopped and this is the last look; the
   * frames back ends still map writable are included.
   */
  async clean(final = false): Promise<Uint32Array> {
    const r = await this.hv.domctl<{ dirty_bitmap: Uint8Array; pages: number }>(XEN_DOMCTL_shadow_op, {
      domain: this.domid, op: XEN_DOMCTL_SHADOW_OP_CLEAN, mode: final ? XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL : 0 });
    if (r.ret < 0 || !r.data) throw new Error(`XEN_DOMCTL_shadow_op CLEAN on d${this.domid}: ${errnoName(r.ret)}`);
    let n = 0;
    const add = (pfn: number) => {
      if (pfn >= this.maxPfns || this.seen[pfn]) return;
      this.seen[pfn] = 1;
      this.out[n++] = pfn;
    };
    // The guest's own writes, scanned after the hypervisor's: a page both wrote is listed once.
    for (const pfn of this.wp.clean()) add(pfn);
    const bm = r.data.dirty_bitmap;
    const pages = Math.min(Number(r.data.pages), this.maxPfns);
    for (let byte = 0; byte < bm.length; byte++) {
      const b = bm[byte]!;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (b & (1 << bit) && byte * 8 + bit < pages) add(byte * 8 + bit);
    }
    for (const pfn of this.rings) add(pfn);
    for (let i = 0; i < n; i++) this.seen[this.out[i]!] = 0;
    return this.out.subarray(0, n);
  }

  /** XEN_DOMCTL_SHADOW_OP_OFF: the migration is over, either way. */
  async off(): Promise<void> {
    await this.hv.domctl(XEN_DOMCTL_shadow_op, { domain: this.domid, op: XEN_DOMCTL_SHADOW_OP_OFF }).catch(() => undefined);
  }
}
