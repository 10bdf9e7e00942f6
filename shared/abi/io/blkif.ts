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
/** Segments described by one indirect page (PAGE_SIZE / 8 = 512). */
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
  return { gref: d.getUint32(o, true), first_sect: d.getUint8(o + 4), last_sect: d.getUint8(o + 5) };
}
export function encodeSegment(d: DataView, o: number, s: BlkifSegment): void {
  d.setUint32(o, s.gref >>> 0, true);
  d.setUint8(o + 4, s.first_sect);
  d.setUint8(o + 5, s.last_sect);
  d.setUint16(o + 6, 0, true);
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
    operation: d.getUint8(0), nr_segments: nr, handle: d.getUint16(2, true),
    id: d.getBigUint64(8, true), sector_number: d.getBigUint64(16, true), seg,
  };
}

export function encodeRequest(b: Uint8Array, r: BlkifRequest): void {
  const d = dv(b);
  d.setUint8(0, r.operation);
  d.setUint8(1, r.nr_segments);
  d.setUint16(2, r.handle, true);
  d.setBigUint64(8, r.id, true);
  d.setBigUint64(16, r.sector_number, true);
  r.seg.forEach((s, i) => encodeSegment(d, blkif_request.seg + i * blkif_request_segment.SIZE, s));
}

export function decodeRequestDiscard(b: Uint8Array): BlkifRequestDiscard {
  const d = dv(b);
  return {
    operation: d.getUint8(0), flag: d.getUint8(1), handle: d.getUint16(2, true), id: d.getBigUint64(8, true),
    sector_number: d.getBigUint64(16, true), nr_sectors: d.getBigUint64(24, true),
  };
}
export function encodeRequestDiscard(b: Uint8Array, r: BlkifRequestDiscard): void {
  const d = dv(b);
  d.setUint8(0, r.operation); d.setUint8(1, r.flag); d.setUint16(2, r.handle, true);
  d.setBigUint64(8, r.id, true); d.setBigUint64(16, r.sector_number, true); d.setBigUint64(24, r.nr_sectors, true);
}

export function decodeRequestIndirect(b: Uint8Array): BlkifRequestIndirect {
  const d = dv(b);
  const indirect_grefs: number[] = [];
  for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) indirect_grefs.push(d.getUint32(28 + i * 4, true));
  return {
    operation: d.getUint8(0), indirect_op: d.getUint8(1), nr_segments: d.getUint16(2, true),
    id: d.getBigUint64(8, true), sector_number: d.getBigUint64(16, true), handle: d.getUint16(24, true), indirect_grefs,
  };
}
export function encodeRequestIndirect(b: Uint8Array, r: BlkifRequestIndirect): void {
  const d = dv(b);
  d.setUint8(0, r.operation); d.setUint8(1, r.indirect_op); d.setUint16(2, r.nr_segments, true);
  d.setBigUint64(8, r.id, true); d.setBigUint64(16, r.sector_number, true); d.setUint16(24, r.handle, true);
  r.indirect_grefs.forEach((g, i) => d.setUint32(28 + i * 4, g >>> 0, true));
}

/** Indirect pages needed for `segs` segments (INDIRECT_GREFS). */
export function INDIRECT_GREFS(segs: number): number {
  return Math.ceil(segs / SEGS_PER_INDIRECT_FRAME);
}

export function decodeResponse(b: Uint8Array): BlkifResponse {
  const d = dv(b);
  return { id: d.getBigUint64(0, true), operation: d.getUint8(8), status: d.getInt16(10, true) };
}
export function encodeResponse(b: Uint8Array, r: BlkifResponse): void {
  const d = dv(b);
  d.setBigUint64(0, r.id, true);
  d.setUint8(8, r.operation);
  d.setUint8(9, 0);
  d.setInt16(10, r.status, true);
}
