// Suspend and resume of the PV kernel (Linux drivers/xen/manage.c
// do_suspend, xen_resume): what xl save and migration carry of a guest.
//
// A Xen PV kernel lives in its memory, so a saved image of its pages is the
// whole guest. xenemu's PV kernel is a program whose own state (its uptime,
// kernel log, the addresses its interfaces were given, the memory its
// programs hold) lives in the process, so at suspend the kernel writes that
// state into its own pages: the suspend record, a few pages reserved at
// boot at a place every boot of the same kernel finds again (the first
// frames above the rings). The toolstack then saves the domain's pages as
// Xen's does, knowing nothing of the record. A kernel that boots finds a
// record there only when its pages were restored: it resumes from it
// instead of booting afresh, reconnects its front ends to the new domain's
// back ends, and clears the record.
//
//   control/shutdown = "suspend"      toolstack
//     quiesce: vCPUs idle, disks' in-flight requests done, console drained
//     record -> pages [recordPfn, +SUSPEND_RECORD_PAGES)
//     SCHEDOP_shutdown(SHUTDOWN_suspend)   ... returns 1 when resumed in place
//                                          (xl save -c): the record is cleared,
//                                          the guest runs on
//   restore: a new domain with the same pages -> boot finds the record -> resume
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import type { GuestMemory } from '../../shared/xen/memory.js';

export const SUSPEND_RECORD_PAGES = 16;
const MAGIC = 'XENEMU-PV-SUSPEND-1\0';
const HEADER = MAGIC.length + 4;

/**
 * Pages `memfill`/`membusy` hold: the first `upto` (all when absent) carry
 * the pattern of `seed`, the rest that of seed - 1 (a membusy pass in the
 * middle).
 */
export interface MemRegion { pfn: number; pages: number; seed: number; upto?: number }

/** What the kernel carries across a save: JSON, at most SUSPEND_RECORD_PAGES pages. */
export interface SuspendRecord {
  hostname: string;
  /** Seconds of uptime when suspended: the restored kernel's clock goes on from here. */
  uptimeS: number;
  /** The kernel log (dmesg), most recent last. */
  klog: string[];
  /** Addresses of the interfaces by vif devid, as `ifconfig` left them. */
  net: Record<string, { ip: number; prefixLen: number }>;
  /** The pages `memfill` wrote (its pattern's seed), so `memcheck` finds them after a restore. */
  mem: MemRegion | null;
  /** vCPUs online. */
  vcpus: number;
}

function region(memory: GuestMemory, pfn: number): Uint8Array {
  return new Uint8Array(memory.sab, pfn * PAGE_SIZE, SUSPEND_RECORD_PAGES * PAGE_SIZE);
}

export function writeSuspendRecord(memory: GuestMemory, pfn: number, rec: SuspendRecord): void {
  const r = region(memory, pfn);
  let body = Buffer.from(JSON.stringify(rec), 'utf8');
  if (HEADER + body.length > r.length) {
    // The log is what may be dropped: the oldest lines first.
    const trimmed = { ...rec, klog: rec.klog.slice(-50) };
    body = Buffer.from(JSON.stringify(trimmed), 'utf8');
    if (HEADER + body.length > r.length) throw new Error(`suspend record of ${body.length} bytes does not fit ${r.length}`);
  }
  r.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(r.buffer, r.byteOffset).setUint32(MAGIC.length, body.length, true);
  r.set(body, HEADER);
}

/** The record a restore brought back, or null for a fresh boot (or one that is not whole). */
export function readSuspendRecord(memory: GuestMemory, pfn: number): SuspendRecord | null {
  const r = region(memory, pfn);
  if (Buffer.from(r.subarray(0, MAGIC.length)).toString('latin1') !== MAGIC) return null;
  const len = new DataView(r.buffer, r.byteOffset).getUint32(MAGIC.length, true);
  if (len > r.length - HEADER) return null;
  try {
    const rec = JSON.parse(Buffer.from(r.subarray(HEADER, HEADER + len)).toString('utf8')) as SuspendRecord;
    return typeof rec.hostname === 'string' && Array.isArray(rec.klog) ? rec : null;
  } catch {
    return null;
  }
}

export function clearSuspendRecord(memory: GuestMemory, pfn: number): void {
  region(memory, pfn).fill(0, 0, HEADER);
}

/** memfill/memcheck's pattern: a 32-bit xorshift per page, seeded by (seed, page index). */
export function fillPattern(page: Uint8Array, seed: number, index: number): void {
  const v = new DataView(page.buffer, page.byteOffset, page.byteLength);
  let x = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0 || 1;
  for (let o = 0; o < page.byteLength; o += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    v.setUint32(o, x, true);
  }
}

export function checkPattern(page: Uint8Array, seed: number, index: number, scratch: Uint8Array): boolean {
  fillPattern(scratch, seed, index);
  return Buffer.compare(Buffer.from(page.buffer, page.byteOffset, page.byteLength), Buffer.from(scratch.buffer, scratch.byteOffset, scratch.byteLength)) === 0;
}
