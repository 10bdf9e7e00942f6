// One blkif request, from its copied bytes to a status (Linux xen-blkback
// blkback.c: dispatch_rw_block_io, dispatch_discard_io, xen_vbd_translate).
//
// The request was copied out of the ring once (vbd.ts, RING_COPY_REQUEST);
// only the copy is decoded and validated here, so a front end that rewrites
// the slot afterwards changes nothing (XSA-155). Indirect segment pages are
// copied the same way before their descriptors are read. Every failure is a
// status (BLKIF_RSP_ERROR / BLKIF_RSP_EOPNOTSUPP), never an exception out of
// the backend, and each refusal of the front end's input is counted and
// logged under its name (reject.ts: BlkifReject), one per request.
//
// The data path. A READ/WRITE (or INDIRECT) whose pages are all persistent
// grants already mapped is done on the spot: the descriptors go into
// reusable typed arrays (no object per segment), the mapped pages into a
// reusable iovec, and the whole request is one preadv/pwritev between the
// image and the guest's pages (a request's segments are one contiguous
// sector range). Nothing is allocated per request on that path but the
// subarray of a partial page. Otherwise (first use of a grant, a front end
// without feature-persistent, beyond the persistent budget) the grants are
// mapped first, through the hypervisor, and the request completes later.
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, INDIRECT_GREFS, SECTORS_PER_PAGE, SEGS_PER_INDIRECT_FRAME,
  XEN_BLKIF_SECTOR_SIZE, blkif_request, blkif_request_indirect, blkif_request_segment, decodeRequestDiscard,
} from '../../../shared/abi/io/blkif.js';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { DiskImage } from './disk.js';
import type { MappedGrant, VbdGrants } from './grants.js';
import { BlkifReject } from './reject.js';

/** feature-max-indirect-segments we offer (Linux MAX_INDIRECT_SEGMENTS). */
export const MAX_INDIRECT_SEGMENTS = 256;

/**
 * Linux blkback's per-vbd statistics (sysfs .../statistics/), and I/O errors
 * of the image. oo_req (requests that waited for a free request slot) stays
 * 0: blkback takes each request off the ring as it serves it.
 */
export interface BlkStats {
  oo_req: number; rd_req: number; wr_req: number; f_req: number; ds_req: number; rd_sect: number; wr_sect: number; io_errors: number;
}

export interface RequestContext {
  disk: DiskImage;
  grants: VbdGrants;
  /** Disk size in 512-byte sectors. */
  sectors: number;
  stats: BlkStats;
  /** Writes not yet completed: a flush waits for them. */
  inflightWrites: Set<Promise<unknown>>;
  /** The front end's input is refused: counted and logged under `reason`. */
  reject(reason: BlkifReject, detail: string): void;
  /** A line through the device's log limit (I/O errors of the image). */
  log(msg: string): void;
  /**
   * Test hook (XENEMU_TEST_HOOKS=blkback-pause-after-copy, test_hooks.ts):
   * a promise to wait for once an indirect request's descriptor pages are
   * copied, or undefined (always, unless a test armed it for this id).
   */
  descriptorsCopied?(idLo: number, idHi: number): Promise<void> | undefined;
}

/** The segments of one request, decoded from the private copy (no object per segment). */
export class Segments {
  readonly gref = new Uint32Array(MAX_INDIRECT_SEGMENTS);
  readonly first = new Uint8Array(MAX_INDIRECT_SEGMENTS);
  readonly last = new Uint8Array(MAX_INDIRECT_SEGMENTS);
  n = 0;
  /** Where the indirect pages' descriptors are copied to before decoding. */
  readonly descriptors = new Uint8Array(INDIRECT_GREFS(MAX_INDIRECT_SEGMENTS) * PAGE_SIZE);
  /** The iovec of the request's one preadv/pwritev. */
  readonly iov: Uint8Array[] = [];
}

/** What a request's response carries: the id as the two halves of the u64 the front end gave. */
export interface Outcome { idLo: number; idHi: number; operation: number; status: number }

/**
 * Handles one copied request: the outcome now when it could be done on the
 * spot, else a promise of it. `bytes` and `segs` are only read before this
 * returns (a caller may reuse them right after), or, when the test hook
 * paused it, before the promise's first step; a pending request has copied
 * what it needs.
 */
export function handleRequest(ctx: RequestContext, bytes: Uint8Array, segs: Segments): Outcome | Promise<Outcome> {
  const d = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const operation = bytes[blkif_request.operation]!;
  const out: Outcome = { idLo: d.getUint32(blkif_request.id, true), idHi: d.getUint32(blkif_request.id + 4, true), operation, status: BLKIF_RSP_OKAY };
  const refuse = (reason: BlkifReject, detail: string, status = BLKIF_RSP_ERROR): Outcome => {
    ctx.reject(reason, `${describe(out)}: ${detail}`);
    out.status = status;
    return out;
  };
  const ioFailed = (e: Error): Outcome => {
    ctx.stats.io_errors++;
    ctx.log(`${describe(out)}: ${e.message}`);
    out.status = BLKIF_RSP_ERROR;
    return out;
  };
  const settle = (s: Status | Promise<Status>): Outcome | Promise<Outcome> => {
    const done = (st: Status): Outcome => {
      if (typeof st === 'number') { out.status = st; return out; }
      return refuse(st.reason, st.detail);
    };
    return s instanceof Promise ? s.then(done) : done(s);
  };
  try {
    switch (operation) {
      case BLKIF_OP_READ: case BLKIF_OP_WRITE: {
        const nr = d.getUint8(blkif_request.nr_segments);
        if (nr === 0 || nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) return refuse(BlkifReject.bad_nr_segments, `nr_segments ${nr}`);
        decodeSegments(d, blkif_request.seg, nr, segs, 0);
        segs.n = nr;
        return settle(rw(ctx, operation, Number(d.getBigUint64(blkif_request.sector_number, true)), segs));
      }
      case BLKIF_OP_INDIRECT: {
        const op = d.getUint8(blkif_request_indirect.indirect_op);
        const nr = d.getUint16(blkif_request_indirect.nr_segments, true);
        if (op !== BLKIF_OP_READ && op !== BLKIF_OP_WRITE) return refuse(BlkifReject.bad_indirect_op, `indirect_op ${op}`);
        if (nr === 0 || nr > MAX_INDIRECT_SEGMENTS) return refuse(BlkifReject.bad_nr_segments, `indirect nr_segments ${nr}`);
        const pages = INDIRECT_GREFS(nr); // 1: MAX_INDIRECT_SEGMENTS fit one page
        const sector = Number(d.getBigUint64(blkif_request_indirect.sector_number, true));
        const grefs: number[] = [];
        let mapped = true;
        for (let p = 0; p < pages; p++) {
          const g = d.getUint32(blkif_request_indirect.indirect_grefs + p * 4, true);
          grefs.push(g);
          if (!ctx.grants.mapped(g)) mapped = false;
        }
        if (mapped) {
          for (let p = 0; p < pages; p++) copyDescriptors(ctx.grants.mapped(grefs[p]!)!, p, nr, segs);
          const gate = ctx.descriptorsCopied?.(out.idLo, out.idHi);
          if (gate) return gate.then(() => { decodeIndirect(segs, nr); return settle(rw(ctx, op, sector, segs)); });
          decodeIndirect(segs, nr);
          return settle(rw(ctx, op, sector, segs));
        }
        // Descriptor pages not mapped yet: map them, then go on with a request of our own.
        const own = new Segments();
        const later = (async () => {
          for (let p = 0; p < pages; p++) {
            let m: MappedGrant;
            try {
              m = await ctx.grants.map(grefs[p]!, false);
            } catch (e) {
              return refuse(BlkifReject.bad_indirect_page, `indirect_grefs[${p}] ${grefs[p]}: ${(e as Error).message}`);
            }
            copyDescriptors(m.page, p, nr, own);
            m.release();
          }
          await ctx.descriptorsCopied?.(out.idLo, out.idHi);
          decodeIndirect(own, nr);
          return settle(rw(ctx, op, sector, own));
        })().catch(ioFailed);
        // A flush behind this write waits for it from now, not from when its descriptors are mapped.
        if (op === BLKIF_OP_WRITE) {
          ctx.inflightWrites.add(later);
          void later.finally(() => ctx.inflightWrites.delete(later));
        }
        return later;
      }
      case BLKIF_OP_FLUSH_DISKCACHE: {
        // Linux blkfront sends a REQ_PREFLUSH/REQ_FUA write as a flush that
        // carries segments (Linux blkback: a write with REQ_PREFLUSH); an
        // empty flush has none. Earlier writes and this one's data (started
        // now, while its segments are decoded: like Linux, nothing orders it
        // against writes still in flight), then fdatasync, then the reply:
        // what the reply acknowledges is on the disk.
        const nr = d.getUint8(blkif_request.nr_segments);
        if (nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) return refuse(BlkifReject.bad_nr_segments, `flush nr_segments ${nr}`);
        const earlier = [...ctx.inflightWrites];
        let data: Status | Promise<Status> = BLKIF_RSP_OKAY;
        if (nr > 0) {
          decodeSegments(d, blkif_request.seg, nr, segs, 0);
          segs.n = nr;
          data = rw(ctx, BLKIF_OP_WRITE, Number(d.getBigUint64(blkif_request.sector_number, true)), segs);
        }
        return (async () => {
          await Promise.allSettled(earlier);
          const st = await data;
          if (st !== BLKIF_RSP_OKAY) return settle(st);
          await ctx.disk.flush();
          ctx.stats.f_req++;
          return out;
        })().catch(ioFailed);
      }
      case BLKIF_OP_DISCARD: {
        if (ctx.disk.readonly) return refuse(BlkifReject.discard_unsupported, 'read-only vbd', BLKIF_RSP_EOPNOTSUPP);
        const r = decodeRequestDiscard(bytes);
        if (r.nr_sectors === 0n || r.sector_number + r.nr_sectors > BigInt(ctx.sectors)) {
          return refuse(BlkifReject.sector_out_of_range, `discard ${r.sector_number}+${r.nr_sectors} of ${ctx.sectors}`);
        }
        return (async () => {
          await Promise.allSettled([...ctx.inflightWrites]);
          await ctx.disk.discard(Number(r.sector_number) * XEN_BLKIF_SECTOR_SIZE, Number(r.nr_sectors) * XEN_BLKIF_SECTOR_SIZE);
          ctx.stats.ds_req++;
          return out;
        })().catch(ioFailed);
      }
      default:
        return refuse(BlkifReject.bad_operation, `operation ${operation}`, BLKIF_RSP_EOPNOTSUPP);
    }
  } catch (e) {
    return ioFailed(e as Error);
  }
}

/** A request in the log: its id and operation. */
function describe(o: Outcome): string {
  const id = o.idHi === 0 ? String(o.idLo) : String((BigInt(o.idHi) << 32n) | BigInt(o.idLo));
  return `request id ${id} op ${o.operation}`;
}

/** A status, or a refusal the caller counts (once per request) before answering BLKIF_RSP_ERROR. */
type Status = number | { reason: BlkifReject; detail: string };

function decodeSegments(d: DataView, at: number, n: number, segs: Segments, into: number): void {
  for (let i = 0; i < n; i++) {
    const o = at + i * blkif_request_segment.SIZE;
    segs.gref[into + i] = d.getUint32(o + blkif_request_segment.gref, true);
    segs.first[into + i] = d.getUint8(o + blkif_request_segment.first_sect);
    segs.last[into + i] = d.getUint8(o + blkif_request_segment.last_sect);
  }
}

/** Copies indirect page `p`'s descriptors once (the page stays guest-writable). */
function copyDescriptors(page: Uint8Array, p: number, nr: number, segs: Segments): void {
  const n = Math.min(SEGS_PER_INDIRECT_FRAME, nr - p * SEGS_PER_INDIRECT_FRAME);
  segs.descriptors.set(page.subarray(0, n * blkif_request_segment.SIZE), p * PAGE_SIZE);
}

function decodeIndirect(segs: Segments, nr: number): void {
  const d = new DataView(segs.descriptors.buffer);
  for (let p = 0; p * SEGS_PER_INDIRECT_FRAME < nr; p++) {
    const n = Math.min(SEGS_PER_INDIRECT_FRAME, nr - p * SEGS_PER_INDIRECT_FRAME);
    decodeSegments(d, p * PAGE_SIZE, n, segs, p * SEGS_PER_INDIRECT_FRAME);
  }
  segs.n = nr;
}

/** Validates the segments, then does the I/O: a status now, or later if grants must be mapped first. */
function rw(ctx: RequestContext, op: number, sector: number, segs: Segments): Status | Promise<Status> {
  const write = op === BLKIF_OP_WRITE;
  let nsec = 0;
  for (let i = 0; i < segs.n; i++) {
    const f = segs.first[i]!;
    const l = segs.last[i]!;
    if (l >= SECTORS_PER_PAGE || l < f) return { reason: BlkifReject.bad_first_last_sect, detail: `segment ${i}: first_sect ${f} last_sect ${l}` };
    nsec += l - f + 1;
  }
  if (write && ctx.disk.readonly) return { reason: BlkifReject.write_to_readonly, detail: `write of ${nsec} sectors at ${sector}` };
  if (!Number.isSafeInteger(sector) || sector + nsec > ctx.sectors) {
    return { reason: BlkifReject.sector_out_of_range, detail: `sectors ${sector}+${nsec} of ${ctx.sectors}` };
  }
  const pos = sector * XEN_BLKIF_SECTOR_SIZE;
  const iov = segs.iov;
  iov.length = segs.n;
  let all = true;
  for (let i = 0; i < segs.n; i++) {
    const page = ctx.grants.mapped(segs.gref[i]!);
    if (!page) { all = false; break; }
    iov[i] = segView(page, segs.first[i]!, segs.last[i]!);
  }
  if (all) {
    try {
      if (write) ctx.disk.writevSync(iov, pos, nsec * XEN_BLKIF_SECTOR_SIZE); else ctx.disk.readvSync(iov, pos, nsec * XEN_BLKIF_SECTOR_SIZE);
    } finally {
      iov.length = 0; // hold no guest page between requests
    }
    count(ctx, write, nsec);
    return BLKIF_RSP_OKAY;
  }
  iov.length = 0;
  const own = { gref: segs.gref.slice(0, segs.n), first: segs.first.slice(0, segs.n), last: segs.last.slice(0, segs.n) };
  const p = mapThenIo(ctx, write, own, pos, nsec);
  if (write) {
    ctx.inflightWrites.add(p);
    void p.finally(() => ctx.inflightWrites.delete(p));
  }
  return p;
}

function segView(page: Uint8Array, f: number, l: number): Uint8Array {
  return f === 0 && l === SECTORS_PER_PAGE - 1 ? page : page.subarray(f * XEN_BLKIF_SECTOR_SIZE, (l + 1) * XEN_BLKIF_SECTOR_SIZE);
}

function count(ctx: RequestContext, write: boolean, nsec: number): void {
  if (write) { ctx.stats.wr_req++; ctx.stats.wr_sect += nsec; } else { ctx.stats.rd_req++; ctx.stats.rd_sect += nsec; }
}

async function mapThenIo(ctx: RequestContext, write: boolean, s: { gref: Uint32Array; first: Uint8Array; last: Uint8Array },
                         pos: number, nsec: number): Promise<Status> {
  // A disk read writes into guest pages: map writable; a disk write only reads them.
  const maps = await Promise.allSettled(Array.from(s.gref, (g) => ctx.grants.map(g, !write)));
  const ok = maps.filter((m): m is PromiseFulfilledResult<MappedGrant> => m.status === 'fulfilled').map((m) => m.value);
  try {
    if (ok.length !== maps.length) {
      const i = maps.findIndex((m) => m.status === 'rejected');
      const why = (maps[i] as PromiseRejectedResult).reason as Error;
      const gref = s.gref[i]!;
      return { reason: await ctx.grants.refusal(gref), detail: `segment ${i}: gref ${gref}: ${why.message}` };
    }
    // Off the data path (grants mapped for this request): the I/O goes through libuv's pool as well.
    const iov = ok.map((m, i) => segView(m.page, s.first[i]!, s.last[i]!));
    if (write) await ctx.disk.writev(iov, pos); else await ctx.disk.readv(iov, pos);
    count(ctx, write, nsec);
    return BLKIF_RSP_OKAY;
  } catch (e) {
    ctx.stats.io_errors++;
    ctx.log(`${write ? 'write' : 'read'} of ${nsec} sectors at ${pos / XEN_BLKIF_SECTOR_SIZE} failed: ${(e as Error).message}`);
    return BLKIF_RSP_ERROR;
  } finally {
    for (const m of ok) m.release();
  }
}
