// Where an HVM guest's frames are in its memory segment
// (/xenemu.<host>.dom<id>.mem), as libxl__build_hvm and libxc's
// xc_dom_x86.c meminit_hvm/alloc_magic_pages_hvm lay out Xen's guest, with
// xenemu's pfns contiguous in one segment:
//
//   pfn 0 .. ram-1                 RAM: memory - videoram (libxl: mem_size =
//                                  max_memkb - video_memkb), below 4 GiB only
//     0x9f800                      hvm_info_table (HVM_INFO_PADDR)
//     0x100000 - len .. 0xfffff    the BIOS image, as hvmloader leaves it
//   pfn ram .. ram+video-1         the VGA's video memory: qemu-xen allocates
//                                  vga.vram right after pc.ram (xen_ram_alloc);
//                                  here the toolstack populates it with the RAM
//   pfn special .. special+7       the special pages, in libxc's order
//                                  (SPECIALPAGE_*); Xen has them at 0xfeff8,
//                                  in the MMIO hole, xenemu right after the
//                                  video memory. reserved_mem_pgstart points here.
//   up to max_pages                LIBXL_MAXMEM_CONSTANT of slack (libxl's max_mem)
//
// The legacy VGA window (0xa0000-0xbffff) stays populated RAM frames in the
// segment (Xen leaves it unpopulated): the guest never sees it as RAM, its
// vCPU sends accesses there to the VGA's device model.
import { PAGE_SHIFT } from '../../../../shared/abi/xen.js';
import { HVM_BELOW_4G_RAM_END } from '../../../../shared/abi/hvm/e820.js';

/** tools/include/xenguest.h */
export const X86_HVM_NR_SPECIAL_PAGES = 8;
/** tools/libs/guest/xg_dom_x86.c SPECIALPAGE_* */
export const SPECIALPAGE_PAGING = 0;
export const SPECIALPAGE_ACCESS = 1;
export const SPECIALPAGE_SHARING = 2;
export const SPECIALPAGE_BUFIOREQ = 3;
export const SPECIALPAGE_XENSTORE = 4;
export const SPECIALPAGE_IOREQ = 5;
export const SPECIALPAGE_IDENT_PT = 6;
export const SPECIALPAGE_CONSOLE = 7;
/** libxl_internal.h: max_mem is the target plus this much (KiB). */
export const LIBXL_MAXMEM_CONSTANT = 1024;

const PAGES_PER_MIB = 1 << (20 - PAGE_SHIFT);

export interface HvmLayout {
  /** Frames of RAM (hvm_info low_mem_pgend). */
  ramPages: number;
  /** The video memory's first frame and size. */
  videoPfn: number;
  videoPages: number;
  /** The first special page (hvm_info reserved_mem_pgstart). */
  specialPfn: number;
  storePfn: number;
  consolePfn: number;
  /** What createdomain populates (RAM and video memory, KiB) and the domain's ceiling (KiB). */
  memoryKb: number;
  maxKb: number;
}

/** The layout for `memoryMiB` of memory, `videoramMiB` of it video memory; null when the RAM would reach the MMIO hole. */
export function hvmLayout(memoryMiB: number, videoramMiB: number): HvmLayout | null {
  const ramPages = (memoryMiB - videoramMiB) * PAGES_PER_MIB;
  if (ramPages <= 0 || ramPages > HVM_BELOW_4G_RAM_END >>> PAGE_SHIFT) return null;
  const videoPages = videoramMiB * PAGES_PER_MIB;
  const specialPfn = ramPages + videoPages;
  return {
    ramPages, videoPfn: ramPages, videoPages, specialPfn,
    storePfn: specialPfn + SPECIALPAGE_XENSTORE, consolePfn: specialPfn + SPECIALPAGE_CONSOLE,
    memoryKb: memoryMiB * 1024, maxKb: memoryMiB * 1024 + LIBXL_MAXMEM_CONSTANT,
  };
}

/** The most RAM an HVM guest may have in xenemu (below the MMIO hole), MiB. */
export const HVM_MAX_RAM_MIB = HVM_BELOW_4G_RAM_END / (1 << 20);
