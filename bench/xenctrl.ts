// A hypercall of Xen's C tools through xenemu's privcmd library
// (docs/xenctrl.md): xc_domain_getinfo of one domain, timed call by call in
// a C program linked with Debian's libxenctrl (bench/c/xc_rt.c), against
// the raw round trip of a frame of the same size (a domctl's HYPERCALL frame
// with its struct) on the same privcmd socket to the same hypervisor:
//
//   xc_rt getinfo ──libxenctrl──► library ──HYPERCALL──► hypervisor (decode, dispatch, encode)
//                                         ◄──WRITE+RET──
//   xc_rt raw ──────────────────────────────PING──────► hypervisor (echo)
//                                         ◄──PONG──────
//
// Same run, interleaved rounds (the order alternates), the client on CPU 0
// and the hypervisor on CPU 1 where there are two; the medians of the
// rounds' p50 are reported. Target: the library's p50 at most 2x the raw one.
import { cpus } from 'node:os';
import { spawnSync } from 'node:child_process';
import { buildC } from './cbuild.js';
import { startBenchHost } from './xen_host.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { privcmdEnv, privcmdSocket } from '../shared/xenctrl.js';

interface Rt { mode: string; count: number; p50_us: number; p90_us: number; p99_us: number; mean_us: number }

/** HYPERCALL frame of a domctl: header, op, 5 args, one block of struct xen_domctl (144 bytes). */
const DOMCTL_FRAME_BYTES = 8 + 48 + 4 + 12 + 144;

async function run(ctx: SuiteContext): Promise<Metric[]> {
  const bin = await buildC(ctx.root, {
    name: 'xc_rt', libs: ['-lxenctrl'],
    hint: 'needs a C compiler and libxen-dev for <xenctrl.h> and libxenctrl: bash .ci/setup',
  });
  const quick = ctx.opts.quick;
  const rounds = quick ? 1 : 7;
  const calls = quick ? 300 : 3000;
  const h = await startBenchHost(ctx, { memoryMB: 512, pcpus: 2 });
  try {
    const two = ctx.opts.cpu === undefined && cpus().length > 1;
    const clientCpu = ctx.opts.cpu ?? (two ? 0 : undefined);
    if (two) spawnSync('taskset', ['-a', '-p', '-c', '1', String(h.hypervisor.pid)]);
    const env = privcmdEnv(h.rundir);
    const one = async (mode: 'getinfo' | 'raw'): Promise<Rt> => {
      const args = mode === 'getinfo' ? ['getinfo', '0', String(calls)] : ['raw', privcmdSocket(h.rundir), String(DOMCTL_FRAME_BYTES), String(calls)];
      const out = await ctx.scope.run(`xc_rt ${mode}`, bin, args, { env: mode === 'getinfo' ? env : process.env,
        ...(clientCpu !== undefined ? { cpu: clientCpu } : {}) });
      return JSON.parse(out.trim().split('\n').pop()!) as Rt;
    };
    const lib: Rt[] = [];
    const raw: Rt[] = [];
    for (let r = 0; r < rounds; r++) {
      ctx.log(`xenctrl: round ${r + 1}/${rounds}`);
      if (r % 2 === 0) { lib.push(await one('getinfo')); raw.push(await one('raw')); } else { raw.push(await one('raw')); lib.push(await one('getinfo')); }
    }
    const p50 = (xs: Rt[]) => median(xs.map((x) => x.p50_us));
    const rawP50 = p50(raw);
    const placement = two ? 'client on CPU 0, hypervisor on CPU 1' : clientCpu !== undefined ? `all on CPU ${clientCpu}` : 'unpinned';
    return [
      { name: 'raw round trip on the privcmd socket (p50)', value: rawP50, unit: 'us', samples: raw.map((x) => x.p50_us),
        details: { p99us: median(raw.map((x) => x.p99_us)), frameBytes: DOMCTL_FRAME_BYTES, placement } },
      { name: 'xc_domain_getinfo through the library (p50)', value: p50(lib), unit: 'us', baseline: rawP50,
        target: { cmp: '<=', value: 2, ratio: true }, samples: lib.map((x) => x.p50_us),
        details: { p90us: median(lib.map((x) => x.p90_us)), p99us: median(lib.map((x) => x.p99_us)), callsPerRound: calls, rounds, placement } },
    ];
  } finally {
    const left = await h.stop();
    if (left.pids.length || left.segments.length) ctx.note(`xenctrl: the host left ${left.pids.length} processes, ${left.segments.length} segments`);
  }
}

export const xenctrl: Suite = {
  name: 'xenctrl',
  baseline: 'a raw round trip of a frame of the same size on the same privcmd socket, same hypervisor',
  description: "a hypercall of Xen's libxenctrl through xenemu's privcmd library",
  run,
};
