// Log-dirty for live migration (docs/saverestore.md): which pages of a
// guest's memory hold data, and which the guest wrote since the last look.
//
// The native addon (shared/native/dirty.cc) does the system calls:
// lseek(SEEK_DATA/SEEK_HOLE) on the segment, and userfaultfd's asynchronous
// write-protection (UFFD_FEATURE_WP_ASYNC) read and re-armed with
// PAGEMAP_SCAN. Write-protection belongs to a mapping, so the process that
// writes the guest's memory (its domain process) registers its own mapping
// at start (registerWriteProtect), and the tracker (xend) scans that
// process's page tables (WriteLog) from outside.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { PAGE_SIZE } from './abi/xen.js';

interface DirtyAddon {
  dataExtents(name: string): number[];
  wpRegister(sab: SharedArrayBuffer): number;
  wpScan(pid: number, addr: number, len: number, out: Uint32Array): number;
}

const here = dirname(fileURLToPath(import.meta.url));
let addon: DirtyAddon | null = null;
let addonError = '';
try {
  addon = createRequire(import.meta.url)(join(here, '..', '..', 'shared', 'native', 'build', 'Release', 'xenemu_dirty.node')) as DirtyAddon;
} catch (e) {
  addonError = `the xenemu_dirty addon is not built (${(e as Error).message.split('\n')[0]})`;
}

/**
 * The pfns of segment `name` that hold pages, as [first, end) runs; null
 * without the addon. A frame in none was never written: it reads as zeros
 * (an unpopulated frame, XEN_DOMCTL_PFINFO_XTAB in libxc's stream).
 */
export function populatedRuns(name: string): Array<[number, number]> | null {
  if (!addon) return null;
  const b = addon.dataExtents(name);
  const out: Array<[number, number]> = [];
  for (let i = 0; i + 1 < b.length; i += 2) out.push([Math.floor(b[i]! / PAGE_SIZE), Math.ceil(b[i + 1]! / PAGE_SIZE)]);
  return out;
}

/**
 * In the domain process: its mapping of the guest's memory registered for
 * asynchronous write-protection (nothing is protected until a tracker
 * asks). The reason when the kernel or the addon cannot.
 */
export function registerWriteProtect(sab: SharedArrayBuffer): { ok: true } | { ok: false; error: string } {
  if (!addon) return { ok: false, error: addonError };
  try {
    addon.wpRegister(sab);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/**
 * XEN_DOMCTL_SHADOW_OP_CLEAN by write-protection: the pages process `pid`
 * wrote through its mapping of segment `segment` since the last clean(),
 * protected again as they are reported. The first clean() arms every page.
 */
export class WriteLog {
  private readonly out: Uint32Array;

  private constructor(readonly pid: number, private readonly addr: number, private readonly bytes: number) {
    this.out = new Uint32Array(bytes / PAGE_SIZE);
  }

  /**
   * The tracker for domain process `pid`'s mapping of `segment` (`bytes`
   * long), or why there is none: no addon, no such mapping, or a mapping
   * the process did not register (smaps VmFlags "uw").
   */
  static open(pid: number, segment: string, bytes: number): WriteLog | string {
    if (!addon) return addonError;
    let smaps: string;
    try { smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8'); } catch (e) { return `cannot read /proc/${pid}/smaps: ${(e as NodeJS.ErrnoException).code}`; }
    const path = `/dev/shm${segment.startsWith('/') ? '' : '/'}${segment}`;
    let found: { addr: number; wp: boolean } | null = null;
    let cur: { addr: number; len: number; off: number; path: string } | null = null;
    for (const line of smaps.split('\n')) {
      const h = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s*(.*)$/.exec(line);
      if (h) {
        const start = parseInt(h[1]!, 16);
        cur = { addr: start, len: parseInt(h[2]!, 16) - start, off: parseInt(h[3]!, 16), path: h[4]!.replace(/ \(deleted\)$/, '') };
        continue;
      }
      if (cur && line.startsWith('VmFlags:') && cur.path === path && cur.off === 0 && cur.len === bytes) {
        const wp = line.split(/\s+/).includes('uw');
        if (!found || (wp && !found.wp)) found = { addr: cur.addr, wp };
      }
    }
    if (!found) return `no mapping of ${path} (${bytes} bytes) in process ${pid}`;
    if (!found.wp) return `process ${pid}'s mapping of ${path} is not registered for write-protection (userfaultfd)`;
    const log = new WriteLog(pid, found.addr, bytes);
    try { log.clean(); } catch (e) { return (e as Error).message; }
    return log;
  }

  /** The pfns written since the last clean (a view, valid until the next call). */
  clean(): Uint32Array {
    const n = addon!.wpScan(this.pid, this.addr, this.bytes, this.out);
    return this.out.subarray(0, n);
  }
}
