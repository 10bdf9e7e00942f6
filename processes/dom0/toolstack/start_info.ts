// The start_info page of a PV guest, written by the domain builder into the
// guest's memory through Dom0's foreign mapping (xc_dom_x86.c
// start_info_x86_64). Layout: xen/include/public/xen.h struct start_info,
// mirrored in shared/abi/xen.ts.
//
// Where the builder puts things inside the guest's pseudo-physical space
// (xenemu's pfn is also its "mfn": there is no second translation):
//
//   pfn 0 .. IMAGE_PFNS-1   the kernel image, p2m and page tables of a real
//                           PV kernel; nothing is loaded (the kernel is the
//                           domain's program) but the frames stay reserved
//   pfn START_INFO_PFN      start_info
//   pfn XENSTORE_PFN        struct xenstore_domain_interface
//   pfn CONSOLE_PFN         struct xencons_interface
//   above                   free memory (the guest balloons from the top)
//
// The order is xc_dom_build_image's: image, start_info, xenstore, console.
import { encodeStartInfo, XEN_START_INFO_MAGIC, type StartInfo, PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { GuestMemory } from '../../../shared/xen/index.js';

export const IMAGE_PFNS = 16;
export const START_INFO_PFN = IMAGE_PFNS;
export const XENSTORE_PFN = IMAGE_PFNS + 1;
export const CONSOLE_PFN = IMAGE_PFNS + 2;
/** Pages the builder needs before anything is free (smallest guest). */
export const SPECIAL_PFNS_END = CONSOLE_PFN + 1;

export interface SpecialPages {
  startInfoPfn: number;
  storePfn: number;
  consolePfn: number;
}

export const DEFAULT_LAYOUT: SpecialPages = {
  startInfoPfn: START_INFO_PFN, storePfn: XENSTORE_PFN, consolePfn: CONSOLE_PFN,
};

export interface StartInfoFields {
  nrPages: number;
  storePort: number;
  consolePort: number;
  cmdline: string;
}

/**
 * Clears the special pages (fresh rings: all indices zero) and writes
 * start_info. shared_info is 0: in xenemu it is its own segment, which the
 * guest learns from its hello, not a frame of its pseudo-physical space.
 */
export function writeStartInfo(mem: GuestMemory, pages: SpecialPages, f: StartInfoFields): StartInfo {
  for (const pfn of [pages.startInfoPfn, pages.storePfn, pages.consolePfn]) mem.page(pfn).fill(0);
  const si: StartInfo = {
    magic: XEN_START_INFO_MAGIC,
    nr_pages: f.nrPages,
    shared_info: 0,
    flags: 0, // neither SIF_PRIVILEGED nor SIF_INITDOMAIN: an unprivileged DomU
    store_mfn: pages.storePfn,
    store_evtchn: f.storePort,
    console_mfn: pages.consolePfn,
    console_evtchn: f.consolePort,
    mod_start: 0,
    mod_len: 0,
    cmd_line: f.cmdline,
  };
  encodeStartInfo(mem.dataView(pages.startInfoPfn), si);
  return si;
}

/** start_info's address as XEN_DOMCTL_setvcpucontext passes it in rsi. */
export function startInfoAddress(pages: SpecialPages): number {
  return pages.startInfoPfn * PAGE_SIZE;
}
