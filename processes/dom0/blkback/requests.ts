// One blkif request, from its copied bytes to a status (Linux xen-blkback
// blkback.c: dispatch_rw_block_io, dispatch_discard_io, xen_vbd_translate).
//
// The request was copied out of the ring once (BackRing.takeRequests); only
// the copy is decoded and validated here, so a front end that rewrites the
// slot afterwards changes nothing (XSA-155). Indirect segment pages are
// copied the same way before their descriptors are read. Every failure is a
// status (BLKIF_RSP_ERROR / BLKIF_RSP_EOPNOTSUPP), never an exception out of
// the backend.
import {
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, INDIRECT_GREFS, SECTORS_PER_PAGE, SEGS_PER_INDIRECT_FRAME,
  XEN_BLKIF_SECTOR_SIZE, blkif_request_segment, decodeRequest, decodeRequestDiscard, decodeRequestIndirect,
  decodeSegment, type BlkifSegment,
} from '../../../shared/abi/io/blkif.js';
import type { DiskImage } from './disk.js';
import type { MappedGrant, VbdGrants } from './grants.js';

/** feature-max-indirect-segments we offer (Linux MAX_INDIRECT_SEGMENTS). */
export const MAX_INDIRECT_SEGMENTS = 256;

export interface BlkStats {
  reads: number; writes: number; flushes: number; discards: number; errors: number; bytes: number;
}

export interface RequestContext {
  disk: DiskImage;
  grants: VbdGrants;
  /** Disk size in 512-byte sectors. */
  sectors: bigint;
  discard: boolean;
  stats: BlkStats;
  /** Writes not yet completed: a flush waits for them. */
  inflightWrites: Set<Promise<unknown>>;
  log(msg: string): void;
}

export interface Outcome { id: bigint; operation: number; status: number }

/** Handles one copied request; resolves with the response to give. */
export async function handleRequest(ctx: RequestContext, bytes: Uint8Array): Promise<Outcome> {
  const operation = bytes[0]!;
  const id = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(8, true);
  const fail = (status: number, why: string): Outcome => {
    ctx.stats.errors++;
    ctx.log(why);
    return { id, operation, status };
  };
  try {
    switch (operation) {
      case BLKIF_OP_READ: case BLKIF_OP_WRITE: {
        const r = decodeRequest(bytes);
        if (r.nr_segments === 0 || r.nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
          return fail(BLKIF_RSP_ERROR, `bad number of segments in request (${r.nr_segments})`);
        }
        return { id, operation, status: await rw(ctx, operation, r.sector_number, r.seg) };
      }
      case BLKIF_OP_INDIRECT: {
        const r = decodeRequestIndirect(bytes);
        if (r.indirect_op !== BLKIF_OP_READ && r.indirect_op !== BLKIF_OP_WRITE) {
          return fail(BLKIF_RSP_ERROR, `invalid indirect operation (${r.indirect_op})`);
        }
        if (r.nr_segments === 0 || r.nr_segments > MAX_INDIRECT_SEGMENTS) {
          return fail(BLKIF_RSP_ERROR, `bad number of indirect segments (${r.nr_segments})`);
        }
        const pages = INDIRECT_GREFS(r.nr_segments);
        if (pages > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST) return fail(BLKIF_RSP_ERROR, 'too many indirect pages');
        const segs: BlkifSegment[] = [];
        for (let p = 0; p < pages; p++) {
          const m = await ctx.grants.map(r.indirect_grefs[p]!, false);
          // Copy the descriptors once, then release the page.
          const n = Math.min(SEGS_PER_INDIRECT_FRAME, r.nr_segments - p * SEGS_PER_INDIRECT_FRAME);
          const copy = m.page.slice(0, n * blkif_request_segment.SIZE);
          m.release();
          const d = new DataView(copy.buffer);
          for (let i = 0; i < n; i++) segs.push(decodeSegment(d, i * blkif_request_segment.SIZE));
        }
        return { id, operation, status: await rw(ctx, r.indirect_op, r.sector_number, segs) };
      }
      case BLKIF_OP_FLUSH_DISKCACHE: {
        // Writes completed before the flush reach the disk with it.
        await Promise.allSettled([...ctx.inflightWrites]);
        await ctx.disk.flush();
        ctx.stats.flushes++;
        return { id, operation, status: BLKIF_RSP_OKAY };
      }
      case BLKIF_OP_DISCARD: {
        if (!ctx.discard || ctx.disk.readonly) return fail(BLKIF_RSP_EOPNOTSUPP, 'discard not supported');
        const r = decodeRequestDiscard(bytes);
        if (r.nr_sectors === 0n || r.sector_number + r.nr_sectors > ctx.sectors) {
          return fail(BLKIF_RSP_ERROR, `discard beyond the end (${r.sector_number}+${r.nr_sectors} > ${ctx.sectors})`);
        }
        await Promise.allSettled([...ctx.inflightWrites]);
        await ctx.disk.discard(Number(r.sector_number) * XEN_BLKIF_SECTOR_SIZE, Number(r.nr_sectors) * XEN_BLKIF_SECTOR_SIZE);
        ctx.stats.discards++;
        return { id, operation, status: BLKIF_RSP_OKAY };
      }
      default:
        return fail(BLKIF_RSP_EOPNOTSUPP, `unknown operation ${operation}`);
    }
  } catch (e) {
    return fail(BLKIF_RSP_ERROR, `operation ${operation} failed: ${(e as Error).message}`);
  }
}

async function rw(ctx: RequestContext, op: number, sector: bigint, segs: BlkifSegment[]): Promise<number> {
  const write = op === BLKIF_OP_WRITE;
  let nsec = 0n;
  for (const s of segs) {
    if (s.last_sect >= SECTORS_PER_PAGE || s.last_sect < s.first_sect) {
      ctx.stats.errors++;
      ctx.log(`bad segment sectors ${s.first_sect}..${s.last_sect}`);
      return BLKIF_RSP_ERROR;
    }
    nsec += BigInt(s.last_sect - s.first_sect + 1);
  }
  if (write && ctx.disk.readonly) { ctx.stats.errors++; ctx.log('write to a read-only vbd'); return BLKIF_RSP_ERROR; }
  if (sector + nsec > ctx.sectors) {
    ctx.stats.errors++;
    ctx.log(`access beyond the end of the device (${sector}+${nsec} > ${ctx.sectors})`);
    return BLKIF_RSP_ERROR;
  }
  // A disk read writes into guest pages: map writable; a disk write only reads them.
  const maps = await Promise.allSettled(segs.map((s) => ctx.grants.map(s.gref, !write)));
  const ok = maps.filter((m): m is PromiseFulfilledResult<MappedGrant> => m.status === 'fulfilled').map((m) => m.value);
  try {
    if (ok.length !== maps.length) {
      const why = maps.find((m): m is PromiseRejectedResult => m.status === 'rejected')!.reason as Error;
      ctx.stats.errors++;
      ctx.log(`grant map failed: ${why.message}`);
      return BLKIF_RSP_ERROR;
    }
    const iov = segs.map((s, i) => ok[i]!.page.subarray(s.first_sect * XEN_BLKIF_SECTOR_SIZE, (s.last_sect + 1) * XEN_BLKIF_SECTOR_SIZE));
    const pos = Number(sector) * XEN_BLKIF_SECTOR_SIZE;
    if (write) {
      const p = ctx.disk.writev(iov, pos);
      ctx.inflightWrites.add(p);
      try { await p; } finally { ctx.inflightWrites.delete(p); }
      ctx.stats.writes++;
    } else {
      await ctx.disk.readv(iov, pos);
      ctx.stats.reads++;
    }
    ctx.stats.bytes += Number(nsec) * XEN_BLKIF_SECTOR_SIZE;
    return BLKIF_RSP_OKAY;
  } finally {
    for (const m of ok) m.release();
  }
}
