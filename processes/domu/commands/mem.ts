// memfill / memcheck: programs that hold memory, as a guest's processes do,
// so that what save, restore and migration carry of a guest's pages can be
// seen from inside it. memfill writes a seeded pattern into MiB of the
// guest's own frames (reserved from the balloon, never given back);
// memcheck verifies every page of it, after a restore too (the region and
// seed travel in the suspend record).
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { Command } from '../services.js';
import { checkPattern, fillPattern } from '../suspend.js';

const PAGES_PER_MIB = (1 << 20) / PAGE_SIZE;
/** membusy yields every this many pages (1 MiB). */
const MEMBUSY_CHUNK = PAGES_PER_MIB;

/** The guest's memory as the commands see it: its frames through the kernel's map. */
export interface MemAccess { page(pfn: number): Uint8Array }
let access: MemAccess | null = null;
export function setMemAccess(m: MemAccess): void { access = m; }

export const memCommands: Command[] = [
  {
    name: 'memfill', help: 'memfill MiB [SEED]: write a pattern into MiB of memory (again: rewrite it, SEED+1 by default)',
    run(argv, io, k) {
      const mib = Number(argv[1]);
      if (!access || !Number.isInteger(mib) || mib <= 0) { io.out('usage: memfill MiB [SEED]\n'); return 1; }
      const pages = mib * PAGES_PER_MIB;
      if (k.mem && k.mem.pages !== pages) { io.out(`memfill: ${k.mem.pages / PAGES_PER_MIB} MiB already held; give the same size\n`); return 1; }
      let pfn = k.mem?.pfn ?? -1;
      if (pfn < 0) pfn = k.balloon.reserve(pages);
      if (pfn < 0) { io.out(`memfill: cannot get ${mib} MiB\n`); return 1; }
      const seed = argv[2] !== undefined ? Number(argv[2]) >>> 0 : ((k.mem?.seed ?? 0) + 1) >>> 0;
      for (let i = 0; i < pages; i++) fillPattern(access.page(pfn + i), seed, i);
      k.mem = { pfn, pages, seed };
      io.out(`memfill: ${mib} MiB at pfn 0x${pfn.toString(16)}, seed ${seed}\n`);
      return 0;
    },
  },
  {
    name: 'membusy', help: 'membusy MiB SECONDS: rewrite memfill\'s pages over and over, a new seed each pass (Ctrl-C stops it)',
    async run(argv, io, k) {
      const mib = Number(argv[1]);
      const seconds = Number(argv[2]);
      if (!access || !Number.isInteger(mib) || mib <= 0 || !Number.isFinite(seconds) || seconds < 0) { io.out('usage: membusy MiB SECONDS\n'); return 1; }
      const pages = mib * PAGES_PER_MIB;
      if (k.mem && k.mem.pages !== pages) { io.out(`membusy: ${k.mem.pages / PAGES_PER_MIB} MiB already held; give the same size\n`); return 1; }
      const pfn = k.mem?.pfn ?? k.balloon.reserve(pages);
      if (pfn < 0) { io.out(`membusy: cannot get ${mib} MiB\n`); return 1; }
      const end = Date.now() + seconds * 1000;
      io.out(`membusy: rewriting ${mib} MiB at pfn 0x${pfn.toString(16)}\n`);
      let passes = 0;
      let seed = k.mem?.seed ?? 0;
      // A pass yields to the event loop every MEMBUSY_CHUNK pages, as a
      // process is preemptible at any point: a suspend request is seen and
      // freezes it within a chunk, not after a pass over all of its memory.
      // k.mem says how far the pass got (upto), so memcheck and a suspend
      // record know which pages hold which seed.
      let from = k.mem?.upto ?? pages; // a pass a suspend interrupted is finished first
      while (Date.now() < end && !io.signal.aborted) {
        if (from >= pages) { seed = (seed + 1) >>> 0; from = 0; }
        for (let i = from; i < pages; i++) {
          fillPattern(access.page(pfn + i), seed, i);
          if ((i + 1) % MEMBUSY_CHUNK === 0 && i + 1 < pages) {
            k.mem = { pfn, pages, seed, upto: i + 1 };
            await new Promise((r) => setImmediate(r));
            if (io.signal.aborted) break;
          }
          from = i + 1;
        }
        if (io.signal.aborted && from < pages) break;
        k.mem = { pfn, pages, seed };
        from = pages;
        passes++;
        await new Promise((r) => setTimeout(r, 1));
      }
      io.out(`membusy: ${passes} passes over ${mib} MiB, seed ${seed}\n`);
      return 0;
    },
  },
  {
    name: 'memcheck', help: "memcheck: verify memfill's pattern, page by page",
    run(_argv, io, k) {
      if (!access || !k.mem) { io.out('memcheck: nothing filled\n'); return 1; }
      const scratch = new Uint8Array(PAGE_SIZE);
      let bad = 0;
      const { pfn, pages, seed, upto = pages } = k.mem;
      for (let i = 0; i < pages; i++) if (!checkPattern(access.page(pfn + i), i < upto ? seed : (seed - 1) >>> 0, i, scratch)) bad++;
      io.out(`memcheck: ${k.mem.pages} pages, seed ${k.mem.seed}: ${bad === 0 ? 'ok' : `${bad} bad`}\n`);
      return bad === 0 ? 0 : 1;
    },
  },
];
