// Density: 100 idle PV guests on one host (docs/benchmarks.md).
//
// Guests of 16 MB are created one after another with `xl create -c` up to
// their prompt (bench/boot.ts), on a host sized to hold them all. Then, with
// all of them up and idle:
//
//   - the RSS of each guest process (VmRSS counts every thread of the
//     process: the vCPU worker threads included), 10 s after the last
//     creation (IDLE_SETTLE_MS); baseline: an idle `node -e` process;
//   - create-to-prompt of the last guests against the first ones (median of
//     5 each, as single creations are noisy): O(n) work per domain in the
//     hypervisor, xend or xenstored shows up here;
//   - the host is taken down and nothing may be left: no process, no shm
//     segment.
import { readFileSync } from 'node:fs';
import { readHostRecord } from '../shared/host.js';
import { procStatusKb } from './harness.js';
import { createToPrompt } from './boot.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost } from './xen_host.js';

/** The targets. */
const TARGET_RSS_MB = 60;
const TARGET_SLOWDOWN = 2;
const GUESTS = { full: 100, quick: 6 };
const GUEST_MB = 16;
/** How many creations at each end are compared. */
const ENDS = { full: 5, quick: 2 };

const mb = (kb: number) => (kb * 1024) / 1e6;
/** From the last creation to the RSS readings of idle guests. */
const IDLE_SETTLE_MS = 10_000;

/** Proportional set size: shared pages (the node binary, libraries) divided among the processes mapping them. */
function pssKb(pid: number): number {
  return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
}

async function idleNodeRssMB(ctx: SuiteContext): Promise<number> {
  const c = ctx.scope.spawn('node idle', process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1e9)']);
  await c.waitForOutput('up', 10_000);
  const kb = procStatusKb(c.pid, 'VmRSS');
  await c.stop();
  return mb(kb);
}

export const density: Suite = {
  name: 'density',
  description: '100 idle PV guests: RSS per guest process, creation time of the last against the first',
  baseline: 'RSS: an idle `node -e` process; creation: the first guests created on the host',
  async run(ctx) {
    const n = ctx.opts.quick ? GUESTS.quick : GUESTS.full;
    const ends = ctx.opts.quick ? ENDS.quick : ENDS.full;
    const h = await startBenchHost(ctx, { memoryMB: 1024 + n * GUEST_MB, pcpus: 2 });
    const cfg = h.file('density.cfg', `name = "idle"\ntype = "pv"\nmemory = ${GUEST_MB}\nvcpus = 1\n`);
    const created: number[] = [];
    const rss: number[] = [];
    const freshRss: number[] = [];
    const pss: number[] = [];
    const anon: number[] = [];
    const threads: number[] = [];
    let leftovers = -1;
    try {
      for (let i = 0; i < n; i++) {
        created.push(await createToPrompt(ctx, h, cfg, `idle${i}`));
        if ((i + 1) % 10 === 0 || i === 0) ctx.log(`density: guest ${i + 1}/${n}: ${created[i]!.toFixed(0)} ms`);
      }
      const pids = Object.entries(readHostRecord(h.rundir)?.pids.domains ?? {})
        .filter(([domid]) => domid !== '0').map(([, pid]) => pid);
      if (pids.length !== n) throw new Error(`expected ${n} guest processes, host.json lists ${pids.length}`);
      for (const pid of pids) freshRss.push(mb(procStatusKb(pid, 'VmRSS')));
      // Idle means idle: V8's memory reducer gives back a guest's boot-time
      // heap growth a few seconds after its last activity, so the newest
      // guests are read again once that had time to happen.
      ctx.log(`density: ${n} guests up; reading their RSS again in ${IDLE_SETTLE_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
      for (const pid of pids) {
        rss.push(mb(procStatusKb(pid, 'VmRSS')));
        anon.push(mb(procStatusKb(pid, 'RssAnon')));
        pss.push(mb(pssKb(pid)));
        threads.push(Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0));
      }
    } finally {
      const left = await h.stop();
      leftovers = left.pids.length + left.segments.length;
      if (leftovers) ctx.note(`density: LEAK after host down: pids ${left.pids.join(' ')}; segments ${left.segments.join(' ')}`);
    }
    const idle = await idleNodeRssMB(ctx);
    const first = median(created.slice(0, ends));
    const last = median(created.slice(-ends));
    const metrics: Metric[] = [
      { name: 'RSS per guest process (max)', value: Math.max(...rss), unit: 'MB', baseline: idle,
        target: { cmp: '<=', value: TARGET_RSS_MB }, samples: rss,
        details: { guests: n, guestMB: GUEST_MB, median: median(rss), anonMedian: median(anon), pssMedian: median(pss),
                   threads: median(threads), maxRightAfterLastCreate: Math.max(...freshRss) } },
      { name: `create-to-prompt, last ${ends} vs first ${ends}`, value: last, unit: 'ms', baseline: first,
        target: { cmp: '<=', value: TARGET_SLOWDOWN, ratio: true }, samples: created,
        details: { first: Math.round(created[0]!), last: Math.round(created[n - 1]!), median: Math.round(median(created)) } },
      { name: 'processes and segments left after down', value: leftovers, unit: '', target: { cmp: '<=', value: 0 } },
    ];
    return metrics;
  },
};
