// xc_dom_gnttab_seed (libxc xc_dom_core.c): before the guest runs, the
// builder writes the two reserved grant entries so that the console and
// xenstore backends can reach the guest's ring pages by grant, as in Xen
// (grant_table.h GNTTAB_RESERVED_CONSOLE / GNTTAB_RESERVED_XENSTORE).
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import { shmOpen } from '../../../shared/shm.js';
import { GTF_permit_access } from '../../../shared/abi/grant_table.js';
import { domainSegments, type HypervisorClient } from '../../../shared/xen/index.js';

export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;

export interface GnttabSeed {
  consolePfn: number;
  consoleDomid: number;
  storePfn: number;
  storeDomid: number;
}

export async function seedGrantTable(hv: HypervisorClient, domid: number, s: GnttabSeed): Promise<void> {
  const segs = await domainSegments(hv, domid);
  // Only the first frame: the reserved refs live in it.
  const i32 = new Int32Array(shmOpen(segs.gnttab, PAGE_SIZE));
  const put = (ref: number, backend: number, frame: number) => {
    // Frame and domid first, flags last: Xen's order, so the entry is never
    // valid with stale contents (the guest is paused anyway).
    Atomics.store(i32, ref * 2 + 1, frame | 0);
    Atomics.store(i32, ref * 2, ((backend & 0xffff) << 16) | GTF_permit_access);
  };
  put(GNTTAB_RESERVED_CONSOLE, s.consoleDomid, s.consolePfn);
  put(GNTTAB_RESERVED_XENSTORE, s.storeDomid, s.storePfn);
}
