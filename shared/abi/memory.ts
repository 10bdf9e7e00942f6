// Constants from xen/include/public/memory.h (Xen 4.17).

export const XENMEM_increase_reservation = 0;
export const XENMEM_decrease_reservation = 1;
export const XENMEM_maximum_ram_page = 2;
export const XENMEM_current_reservation = 3;
export const XENMEM_maximum_reservation = 4;
export const XENMEM_populate_physmap = 6;
export const XENMEM_acquire_resource = 28;

// struct xen_mem_acquire_resource: type, id, frame, nr_frames. xenemu answers
// with where the frames are (a segment and page offsets to map), since it
// cannot place frames in another process's address space.
export const XENMEM_resource_ioreq_server = 0;
export const XENMEM_resource_grant_table = 1;
export const XENMEM_resource_vmtrace_buf = 2;
export const XENMEM_resource_ioreq_server_frame_bufioreq = 0;
export const XENMEM_resource_ioreq_server_frame_ioreq = (n: number): number => 1 + n;

/**
 * struct xen_memory_reservation. extent_start is the list of guest frames
 * (pfns) to give back (decrease) or that were populated (increase, out).
 */
export interface xen_memory_reservation {
  extent_start?: number[];
  nr_extents: number;
  extent_order: number;
  mem_flags?: number;
  domid: number;
}

/** Argument of current/maximum_reservation: a domid (DOMID_SELF allowed). */
export interface xen_memory_domid { domid: number }

/**
 * memory_op's cmd carries a continuation's start extent above its low bits
 * (xen/include/xen/hypercall.h MEMOP_EXTENT_SHIFT, MEMOP_CMD_MASK).
 */
export const MEMOP_EXTENT_SHIFT = 6;
export const MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1;

export const XENMEM_set_pod_target = 16;
export const XENMEM_get_pod_target = 17;
/** Pages freed by sharing, and pages shared: no argument, the count is the return value. */
export const XENMEM_get_sharing_freed_pages = 18;
export const XENMEM_get_sharing_shared_pages = 19;
