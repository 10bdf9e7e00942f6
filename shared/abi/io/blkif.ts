// Block device interface, from xen/include/public/io/blkif.h (Xen 4.17),
// x86_64 layouts (checked with offsetof against libxen-dev's header):
//
//   struct blkif_request (112)          struct blkif_request_segment (8)
//     0 u8  operation                     0 grant_ref_t gref
//     1 u8  nr_segments                   4 u8 first_sect
//     2 u16 handle                        5 u8 last_sect
//     8 u64 id
//    16 u64 sector_number
//    24 seg[11]
//
//   struct blkif_request_discard (32)   struct blkif_request_indirect (64)
//     0 u8 operation, 1 u8 flag           0 u8 operation, 1 u8 indirect_op
//     2 u16 handle, 8 u64 id              2 u16 nr_segments, 8 u64 id
//    16 u64 sector_number                16 u64 sector_number, 24 u16 handle
//    24 u64 nr_sectors                   28 grant_ref_t indirect_grefs[8]
//
//   struct blkif_response (16): 0 u64 id, 8 u8 operation, 10 i16 status
//
// DEFINE_RING_TYPES(blkif, struct blkif_request, struct blkif_response):
// 112-byte union entries, 32 in a page. Sectors are 512 bytes whatever the
// disk's sector-size says ("sector_number" and first/last_sect count 512).
// Codecs only; decoding takes a private copy (RING_COPY_REQUEST's result).
import { PAGE_SIZE } from '../xen.js';
import { __RING_SIZE } from './ring.js';

export const BLKIF_OP_READ = 0;
export const BLKIF_OP_WRITE = 1;
export const BLKIF_OP_WRITE_BARRIER = 2;
export const BLKIF_OP_FLUSH_DISKCACHE = 3;
export const BLKIF_OP_RESERVED_1 = 4;
export const BLKIF_OP_DISCARD = 5;
export const BLKIF_OP_INDIRECT = 6;

export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8;
export const BLKIF_DISCARD_SECURE = 1 << 0;

export const BLKIF_RSP_EOPNOTSUPP = -2;
export const BLKIF_RSP_ERROR = -1;
export const BLKIF_RSP_OKAY = 0;

export const VDISK_CDROM = 0x1;
export const VDISK_REMOVABLE = 0x2;
export const VDISK_READONLY = 0x4;

/** 512: the unit of sector_number, first_sect and last_sect. */
export const XEN_BLKIF_SECTOR_SIZE = 512;
export const SECTORS_PER_PAGE = PAGE_SIZE / XEN_BLKIF_SECTOR_SIZE;

export const blkif_request_segment = { gref: 0, first_sect: 4, last_sect: 5, SIZE: 8 } as const;
export const blkif_request = { operation: 0, nr_segments: 1, handle: 2, id: 8, sector_number: 16, seg: 24, SIZE: 112 } as const;
export const blkif_request_discard = { operation: 0, flag: 1, handle: 2, id: 8, sector_number: 16, nr_sectors: 24, SIZE: 32 } as const;
export const blkif_request_indirect = {
  operation: 0, indirect_op: 1, nr_segments: 2, id: 8, sector_number: 16, handle: 24, indirect_grefs: 28, SIZE: 64,
} as const;
export const blkif_response = { id: 0, operation: 8, status: 10, SIZE: 16 } as const;

/** sizeof(union blkif_sring_entry) */
export const BLKIF_RING_ENTRY_SIZE = Math.max(blkif_request.SIZE, blkif_response.SIZE);
/** __CONST_RING_SIZE(blkif, PAGE_SIZE) = 32 */
export const BLK_RING_SIZE = __RING_SIZE(BLKIF_RING_ENTRY_SIZE);
/** Segments described by one indirect page (PAGE_SIZE / sizeof(struct blkif_request_segment) = 512). */
export const SEGS_PER_INDIRECT_FRAME = PAGE_SIZE / blkif_request_segment.SIZE;

/** Xenstore keys of the protocol (blkif.h "Backend/Frontend XenBus Nodes"). */
export const BLKIF_XS = {
  // backend
  params: 'params', mode: 'mode', type: 'type', sectors: 'sectors', sectorSize: 'sector-size', info: 'info',
  featureFlushCache: 'feature-flush-cache', featureBarrier: 'feature-barrier', featureDiscard: 'feature-discard',
  featurePersistent: 'feature-persistent', featureMaxIndirectSegments: 'feature-max-indirect-segments',
  discardGranularity: 'discard-granularity', discardAlignment: 'discard-alignment', discardSecure: 'discard-secure',
  physicalDevice: 'physical-device',
  // frontend
  ringRef: 'ring-ref', eventChannel: 'event-channel', protocol: 'protocol', virtualDevice: 'virtual-device',
  deviceType: 'device-type',
} as const;
export const XEN_IO_PROTO_ABI_X86_64 = 'x86_64-abi';

export interface BlkifSegment { gref: number; first_sect: number; last_sect: number }

export interface BlkifRequest {
  operation: number;
  nr_segments: number;
  handle: number;
  id: bigint;
  sector_number: bigint;
  seg: BlkifSegment[];
}
export interface BlkifRequestDiscard {
  operation: number; flag: number; handle: number; id: bigint; sector_number: bigint; nr_sectors: bigint;
}
export interface BlkifRequestIndirect {
  operation: number; indirect_op: number; nr_segments: number; id: bigint; sector_number: bigint; handle: number;
  indirect_grefs: number[];
}
export interface BlkifResponse { id: bigint; operation: number; status: number }

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

export function decodeSegment(d: DataView, o: number): BlkifSegment {
  return {
    gref: d.getUint32(o + blkif_request_segment.gref, true),
    first_sect: d.getUint8(o + blkif_request_segment.first_sect),
    last_sect: d.getUint8(o + blkif_request_segment.last_sect),
  };
}

// Encoders without an object per request or segment, for a front end's data
// path (blkfront) and for the object encoders below: the one place that
// writes io/blkif.h's request layout. Numbers for id and sector_number must be
// safe integers (below 2^53); the bigint forms take any u64.

/** A u64 at `o`, from a safe integer or a bigint. */
function setU64(d: DataView, o: number, v: number | bigint): void {
  if (typeof v === 'bigint') { d.setBigUint64(o, v, true); return; }
  d.setUint32(o, v % 0x100000000, true);
  d.setUint32(o + 4, Math.floor(v / 0x100000000), true);
}

/** struct blkif_request_segment at `o`: gref, first_sect, last_sect (and the padding zeroed). */
export function writeSegment(d: DataView, o: number, gref: number, first_sect: number, last_sect: number): void {
  d.setUint32(o + blkif_request_segment.gref, gref >>> 0, true);
  d.setUint8(o + blkif_request_segment.first_sect, first_sect);
  d.setUint8(o + blkif_request_segment.last_sect, last_sect);
  d.setUint16(o + 6, 0, true);
}
export function encodeSegment(d: DataView, o: number, s: BlkifSegment): void {
  writeSegment(d, o, s.gref, s.first_sect, s.last_sect);
}

/**
 * struct blkif_request's fields before seg[] in the slot at `o` (READ, WRITE,
 * FLUSH_DISKCACHE, WRITE_BARRIER); segment i goes at
 * `o + blkif_request.seg + i * blkif_request_segment.SIZE` (writeSegment).
 */
export function writeRequestHead(d: DataView, o: number, operation: number, nr_segments: number, handle: number,
                                 id: number | bigint, sector_number: number | bigint): void {
  d.setUint8(o + blkif_request.operation, operation);
  d.setUint8(o + blkif_request.nr_segments, nr_segments);
  d.setUint16(o + blkif_request.handle, handle, true);
  d.setUint32(o + 4, 0, true); // the padding before the u64 id
  setU64(d, o + blkif_request.id, id);
  setU64(d, o + blkif_request.sector_number, sector_number);
}

/**
 * struct blkif_request_indirect in the slot at `o`, without its
 * indirect_grefs (writeIndirectGref): BLKIF_OP_INDIRECT, the operation it
 * carries, a 16-bit segment count.
 */
export function writeRequestIndirectHead(d: DataView, o: number, indirect_op: number, nr_segments: number, handle: number,
                                         id: number | bigint, sector_number: number | bigint): void {
  d.setUint8(o + blkif_request_indirect.operation, BLKIF_OP_INDIRECT);
  d.setUint8(o + blkif_request_indirect.indirect_op, indirect_op);
  d.setUint16(o + blkif_request_indirect.nr_segments, nr_segments, true);
  d.setUint32(o + 4, 0, true);
  setU64(d, o + blkif_request_indirect.id, id);
  setU64(d, o + blkif_request_indirect.sector_number, sector_number);
  d.setUint16(o + blkif_request_indirect.handle, handle, true);
  d.setUint16(o + blkif_request_indirect.handle + 2, 0, true);
}

/** indirect_grefs[i] of the indirect request in the slot at `o`. */
export function writeIndirectGref(d: DataView, o: number, i: number, gref: number): void {
  d.setUint32(o + blkif_request_indirect.indirect_grefs + i * 4, gref >>> 0, true);
}

/** Decodes a copied request; segments beyond the maximum are not read (the caller refuses nr_segments > 11). */
export function decodeRequest(b: Uint8Array): BlkifRequest {
  const d = dv(b);
  const nr = d.getUint8(blkif_request.nr_segments);
  const seg: BlkifSegment[] = [];
  for (let i = 0; i < Math.min(nr, BLKIF_MAX_SEGMENTS_PER_REQUEST); i++) {
    seg.push(decodeSegment(d, blkif_request.seg + i * blkif_request_segment.SIZE));
  }
  return {
    operation: d.getUint8(blkif_request.operation), nr_segments: nr, handle: d.getUint16(blkif_request.handle, true),
    id: d.getBigUint64(blkif_request.id, true), sector_number: d.getBigUint64(blkif_request.sector_number, true), seg,
  };
}

/** Encodes `r` into a slot; at most 11 descriptors fit it (nr_segments may claim more: a hostile front end's). */
export function encodeRequest(b: Uint8Array, r: BlkifRequest): void {
  const d = dv(b);
  writeRequestHead(d, 0, r.operation, r.nr_segments, r.handle, r.id, r.sector_number);
  r.seg.slice(0, BLKIF_MAX_SEGMENTS_PER_REQUEST)
    .forEach((s, i) => encodeSegment(d, blkif_request.seg + i * blkif_request_segment.SIZE, s));
}

export function decodeRequestDiscard(b: Uint8Array): BlkifRequestDiscard {
  const d = dv(b);
  return {
    operation: d.getUint8(blkif_request_discard.operation), flag: d.getUint8(blkif_request_discard.flag),
    handle: d.getUint16(blkif_request_discard.handle, true), id: d.getBigUint64(blkif_request_discard.id, true),
    sector_number: d.getBigUint64(blkif_request_discard.sector_number, true),
    nr_sectors: d.getBigUint64(blkif_request_discard.nr_sectors, true),
  };
}
export function encodeRequestDiscard(b: Uint8Array, r: BlkifRequestDiscard): void {
  const d = dv(b);
  d.setUint8(blkif_request_discard.operation, r.operation);
  d.setUint8(blkif_request_discard.flag, r.flag);
  d.setUint16(blkif_request_discard.handle, r.handle, true);
  d.setUint32(4, 0, true);
  d.setBigUint64(blkif_request_discard.id, r.id, true);
  d.setBigUint64(blkif_request_discard.sector_number, r.sector_number, true);
  d.setBigUint64(blkif_request_discard.nr_sectors, r.nr_sectors, true);
}

export function decodeRequestIndirect(b: Uint8Array): BlkifRequestIndirect {
  const d = dv(b);
  const indirect_grefs: number[] = [];
  for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) {
    indirect_grefs.push(d.getUint32(blkif_request_indirect.indirect_grefs + i * 4, true));
  }
  return {
    operation: d.getUint8(blkif_request_indirect.operation), indirect_op: d.getUint8(blkif_request_indirect.indirect_op),
    nr_segments: d.getUint16(blkif_request_indirect.nr_segments, true), id: d.getBigUint64(blkif_request_indirect.id, true),
    sector_number: d.getBigUint64(blkif_request_indirect.sector_number, true),
    handle: d.getUint16(blkif_request_indirect.handle, true), indirect_grefs,
  };
}
/** Encodes `r` (its operation is BLKIF_OP_INDIRECT whatever r.operation says); up to 8 indirect_grefs. */
export function encodeRequestIndirect(b: Uint8Array, r: BlkifRequestIndirect): void {
  const d = dv(b);
  writeRequestIndirectHead(d, 0, r.indirect_op, r.nr_segments, r.handle, r.id, r.sector_number);
  r.indirect_grefs.slice(0, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST).forEach((g, i) => writeIndirectGref(d, 0, i, g));
}

/** Indirect pages needed for `segs` segments (INDIRECT_GREFS). */
export function INDIRECT_GREFS(segs: number): number {
  return Math.ceil(segs / SEGS_PER_INDIRECT_FRAME);
}

export function decodeResponse(b: Uint8Array): BlkifResponse {
  const d = dv(b);
  return {
    id: d.getBigUint64(blkif_response.id, true), operation: d.getUint8(blkif_response.operation),
    status: d.getInt16(blkif_response.status, true),
  };
}
/**
 * struct blkif_response in the slot at `o`, the u64 id as the two u32 halves
 * the request carried (a back end echoes it without decoding it).
 */
export function writeResponse(d: DataView, o: number, idLo: number, idHi: number, operation: number, status: number): void {
  d.setUint32(o + blkif_response.id, idLo, true);
  d.setUint32(o + blkif_response.id + 4, idHi, true);
  d.setUint8(o + blkif_response.operation, operation);
  d.setUint8(o + blkif_response.operation + 1, 0);
  d.setInt16(o + blkif_response.status, status, true);
  d.setUint32(o + 12, 0, true);
}
export function encodeResponse(b: Uint8Array, r: BlkifResponse): void {
  const d = dv(b);
  d.setBigUint64(blkif_response.id, r.id, true);
  d.setUint8(blkif_response.operation, r.operation);
  d.setUint8(blkif_response.operation + 1, 0);
  d.setInt16(blkif_response.status, r.status, true);
  d.setUint32(12, 0, true);
}
