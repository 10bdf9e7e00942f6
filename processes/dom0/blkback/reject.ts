// Why blkback refuses a front end's input: one name per check, counted and
// logged under that name (../backend_stats.ts), so that a test or a user sees
// which check fired. The checks are Linux xen-blkback's (blkback.c:
// dispatch_rw_block_io, xen_blkbk_parse_indirect, xen_vbd_translate,
// dispatch_discard_io, __do_block_io_op; xenbus.c: connect_ring), with the
// status each answers.
import { reasonNames } from '../backend_stats.js';

export const BLKIF_REJECT_REASONS = {
  /** BLKIF_RSP_ERROR. Linux: "Bad number of segments in request". */
  bad_nr_segments: 'nr_segments 0, or over BLKIF_MAX_SEGMENTS_PER_REQUEST (11; a flush too), or over feature-max-indirect-segments (256) for BLKIF_OP_INDIRECT',
  /** BLKIF_RSP_ERROR. Linux: "Invalid indirect operation". */
  bad_indirect_op: 'BLKIF_OP_INDIRECT carrying an operation other than READ or WRITE',
  /** BLKIF_RSP_ERROR. Linux: xen_blkbk_parse_indirect's map of the indirect pages failed. */
  bad_indirect_page: 'an indirect descriptor page the hypervisor refused to map (not granted to Domain-0, outside the grant table, or read-only under persistent grants)',
  /** BLKIF_RSP_ERROR. Linux: last_sect >= XEN_PAGE_SIZE >> 9 or last_sect < first_sect. */
  bad_first_last_sect: 'a segment whose last_sect is past its page (> 7) or before its first_sect',
  /** BLKIF_RSP_ERROR. Linux: xen_vbd_translate, sector_number + nr_sects > the device's size. */
  sector_out_of_range: 'sectors past the end of the device (sector_number up to 2^64-1 included), or a discard of none',
  /** BLKIF_RSP_ERROR. Linux: xen_vbd_translate, a write to a read-only vbd ("access denied"). */
  write_to_readonly: 'a write, or a flush carrying data, to a vbd the toolstack attached read-only',
  /** BLKIF_RSP_ERROR. Linux: "invalid buffer -- could not remap it". */
  bad_gref: 'a data segment whose gref the hypervisor refused to map: not granted to Domain-0 (never granted, or granted to another domain) or outside the grant table',
  /** BLKIF_RSP_ERROR. The same refusal, for a page the front end granted read-only. */
  readonly_gref: 'a data page granted read-only that blkback must map writable: a disk read into it, or any persistent grant (mapped writable, as Linux does)',
  /** BLKIF_RSP_EOPNOTSUPP. Linux: "unknown operation". */
  bad_operation: 'an operation blkback does not serve (WRITE_BARRIER, RESERVED_1, or no blkif operation)',
  /** BLKIF_RSP_EOPNOTSUPP. Linux: dispatch_discard_io without feature-discard. */
  discard_unsupported: 'BLKIF_OP_DISCARD on a vbd without feature-discard (read-only)',
  /** Disconnect. Linux: "Frontend provided bogus ring requests". */
  req_prod_overflow: 'req_prod more than the ring ahead of the unanswered requests (RING_REQUEST_PROD_OVERFLOW): the vbd is disconnected',
  /** Disconnect. Linux connect_ring: "reading %s/ring-ref", xenbus_map_ring_valloc failing. */
  bad_ring_ref: 'a ring-ref missing, not a number, or refused by the hypervisor: the vbd does not connect',
  /** Disconnect. Linux connect_ring: "reading %s/event-channel", bind failing. */
  bad_event_channel: 'an event-channel missing, not a number, or that cannot be bound: the vbd does not connect',
  /** Disconnect. Linux connect_ring: "unknown fe protocol". */
  bad_protocol: 'a protocol other than x86_64-abi: the vbd does not connect',
} as const;

export type BlkifReject = keyof typeof BLKIF_REJECT_REASONS;
/** `BlkifReject.bad_gref` names the reason `bad_gref`. */
export const BlkifReject = reasonNames(BLKIF_REJECT_REASONS);
export const BLKIF_REJECTS = Object.keys(BLKIF_REJECT_REASONS) as BlkifReject[];
