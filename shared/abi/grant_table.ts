// Layouts and constants from xen/include/public/grant_table.h (Xen 4.17).
// Grant table v1: an array of grant_entry_v1 (8 bytes) in frames shared
// between the granting domain and the hypervisor.
import { PAGE_SIZE } from './xen.js';

export type grant_ref_t = number;
export type grant_handle_t = number;

export const GNTTABOP_map_grant_ref = 0;
export const GNTTABOP_unmap_grant_ref = 1;
export const GNTTABOP_setup_table = 2;
export const GNTTABOP_dump_table = 3;
export const GNTTABOP_transfer = 4;
export const GNTTABOP_copy = 5;
export const GNTTABOP_query_size = 6;
export const GNTTABOP_unmap_and_replace = 7;
export const GNTTABOP_set_version = 8;
export const GNTTABOP_get_status_frames = 9;
export const GNTTABOP_get_version = 10;

// struct grant_entry_v1 { uint16_t flags; domid_t domid; uint32_t frame; }
export const grant_entry_v1 = { flags: 0, domid: 2, frame: 4, SIZE: 8 } as const;
export const GRANT_ENTRIES_PER_PAGE = PAGE_SIZE / grant_entry_v1.SIZE; // 512

// grant_entry_v1.flags
export const GTF_invalid = 0 << 0;
export const GTF_permit_access = 1 << 0;
export const GTF_accept_transfer = 2 << 0;
export const GTF_transitive = 3 << 0;
export const GTF_type_mask = 3 << 0;
export const _GTF_readonly = 2;
export const GTF_readonly = 1 << _GTF_readonly;
export const _GTF_reading = 3;
export const GTF_reading = 1 << _GTF_reading;
export const _GTF_writing = 4;
export const GTF_writing = 1 << _GTF_writing;
export const GTF_PWT = 1 << 5;
export const GTF_PCD = 1 << 6;
export const GTF_PAT = 1 << 7;
export const GTF_sub_page = 1 << 8;

// gnttab_map_grant_ref.flags
export const GNTMAP_device_map = 1 << 0;
export const GNTMAP_host_map = 1 << 1;
export const GNTMAP_readonly = 1 << 2;
export const GNTMAP_application_map = 1 << 3;
export const GNTMAP_contains_pte = 1 << 4;

// gnttab_copy.flags
export const GNTCOPY_source_gref = 1 << 0;
export const GNTCOPY_dest_gref = 1 << 1;

// Status codes of individual grant operations.
export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_bad_virt_addr = -5;
export const GNTST_bad_dev_addr = -6;
export const GNTST_no_device_space = -7;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_address_too_big = -11;
export const GNTST_eagain = -12;
export const GNTST_no_space = -13;

export interface gnttab_setup_table { dom: number; nr_frames: number }
export interface gnttab_map_grant_ref { dom: number; ref: number; flags: number }
export interface gnttab_unmap_grant_ref { handle: number }
export interface gnttab_query_size { dom: number }
/** One side of a copy: a grant ref of `domid`, or (no GNTCOPY_*_gref) a frame of the caller. */
export interface gnttab_copy_ptr { ref?: number; gmfn?: number; domid: number; offset: number }
export interface gnttab_copy { source: gnttab_copy_ptr; dest: gnttab_copy_ptr; len: number; flags: number }

/** Reads entry `ref` from a grant table view (one copy, see docs/style.md rule 6). */
export function readGrantEntry(dv: DataView, ref: number): { flags: number; domid: number; frame: number } {
  const o = ref * grant_entry_v1.SIZE;
  return { flags: dv.getUint16(o, true), domid: dv.getUint16(o + 2, true), frame: dv.getUint32(o + 4, true) };
}
