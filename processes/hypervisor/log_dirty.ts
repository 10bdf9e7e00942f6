// Log-dirty mode's hypervisor half (XEN_DOMCTL_shadow_op; Xen's
// paging_log_dirty_op in xen/arch/x86/mm/paging.c): the frames of a domain
// that others write through the hypervisor, which write-protection of the
// guest's own mapping (shared/dirty.ts, in xend) cannot see.
//
//   what writes a frame                     marked here (Xen's equivalent)
//   GNTTABOP_copy into it                   the destination (gnttab_copy -> gnttab_mark_dirty)
//   a writable GNTTABOP_map_grant_ref       at map and at unmap (Xen: at unmap, gnttab_mark_dirty);
//                                           while mapped, every CLEAN/PEEK with
//                                           XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL reports it
//   XENMEM_populate_physmap / decrease_     the pfns (a frame given back reads as zeros, which
//   reservation                             the target must get; Xen's p2m changes are logged)
//
// The reply is Xen's: a bitmap of `pages` bits, one per pfn, and the stats.
// Frames Domain-0's own daemons map whole (xenstored's and xenconsoled's
// rings, through XENEMU_DOMCTL_getsegments) are not seen: their owner
// (xend) knows them and compares them itself.
import {
  XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY, XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL, XEN_DOMCTL_SHADOW_OP_CLEAN,
  XEN_DOMCTL_SHADOW_OP_ENABLE, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, XEN_DOMCTL_SHADOW_OP_OFF, XEN_DOMCTL_SHADOW_OP_PEEK,
} from '../../shared/abi/domctl.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

/** A frame of `d` written by someone other than `d` itself. */
export function markDirty(d: Domain, frame: number): void {
  d.logDirty?.add(frame);
}

export function domctlShadowOp(hv: Hypervisor, _caller: Domain, d: Domain, arg: { op?: number; mode?: number }): HcResult {
  const op = Number(arg.op);
  const mode = Number(arg.mode ?? 0);
  switch (op) {
    case XEN_DOMCTL_SHADOW_OP_OFF:
      d.logDirty = null;
      return 0;
    case XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY:
    case XEN_DOMCTL_SHADOW_OP_ENABLE:
      if (op === XEN_DOMCTL_SHADOW_OP_ENABLE && !(mode & XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY)) return -XEN_EINVAL;
      // A device the domain owns writes its memory by DMA, which no log
      // sees: Xen refuses global log-dirty to a domain with passthrough
      // devices (paging_log_dirty_enable, has_arch_pdevs), and so does this.
      if (hv.pci.owns(d.domid)) return -XEN_EINVAL;
      d.logDirty ??= new Set();
      return 0;
    case XEN_DOMCTL_SHADOW_OP_CLEAN:
    case XEN_DOMCTL_SHADOW_OP_PEEK: {
      if (!d.logDirty) return -XEN_EINVAL;
      const pages = d.frames.maxPfns;
      const bitmap = new Uint8Array(Math.ceil(pages / 8));
      const set = (pfn: number) => { if (pfn >= 0 && pfn < pages) bitmap[pfn >> 3]! |= 1 << (pfn & 7); };
      for (const pfn of d.logDirty) set(pfn);
      let count = d.logDirty.size;
      if (mode & XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL) {
        for (const a of d.activeGrants.values()) if (a.writers > 0) { set(a.frame); count++; }
      }
      if (op === XEN_DOMCTL_SHADOW_OP_CLEAN) d.logDirty.clear();
      return { ret: 0, data: { dirty_bitmap: bitmap, pages, stats: { fault_count: 0, dirty_count: count } } };
    }
    default:
      return -XEN_EINVAL;
  }
}
