// Create-to-prompt: how long a user waits between `xl create -c g.cfg` and
// the guest's shell prompt on the console, for guests created one after
// another on a running host (docs/benchmarks.md).
//
//   xl create -c ──XML-RPC──► xend: build (hypervisor domctls, xenstore), console,
//        │                          unpause ──► hypervisor spawns processes/domu
//        │                                         boot: xenbus, vCPUs, watches
//        ◄── console backlog + PTY ─────────────── "root@<name>:~# "
//
// The clock runs from the spawn of `xl` to the prompt on its stdout, so it
// holds the start of the xl process itself, as a user's does. Baseline:
// `node -e` to its first output, the floor of starting any Node process on
// this machine at that moment (sampled alternately with the creations).
import { performance } from 'node:perf_hooks';
import { median, percentile, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost, type BenchHost } from './xen_host.js';

/** The target: p50 create-to-prompt. */
const TARGET_P50_MS = 250;
const GUESTS = { full: 20, quick: 3 };
const GUEST_MB = 32;
const PROMPT_TIMEOUT_MS = 30_000;

/** Spawns `node -e` and times it to its first byte of output. */
export async function nodeFloorMs(ctx: SuiteContext): Promise<number> {
  const t0 = performance.now();
  const c = ctx.scope.spawn('node -e', process.execPath, ['-e', 'process.stdout.write("up\\n")']);
  await c.waitForOutput('up', 10_000);
  const ms = performance.now() - t0;
  await c.exited;
  return ms;
}

/** `xl create -c cfg name=<name>` until the prompt shows; the console client is then stopped. */
export async function createToPrompt(ctx: SuiteContext, h: BenchHost, cfg: string, name: string): Promise<number> {
  const t0 = performance.now();
  const xl = ctx.scope.spawn(`xl create ${name}`, process.execPath, [h.cli, 'xl', 'create', '-c', cfg, `name=${name}`],
    { env: h.env });
  try {
    await xl.waitForOutput(`root@${name}:~# `, PROMPT_TIMEOUT_MS);
    return performance.now() - t0;
  } catch (e) {
    throw new Error(`${(e as Error).message}\nconsole:\n${xl.stdout().slice(-2000)}`);
  } finally {
    await xl.stop(1000); // detaches the console; the guest keeps running
  }
}

/**
 * Medians of where a creation's time goes, from the hypervisor's console
 * (timestamped lines, the same wall clock as ours): the start of `xl` to
 * createdomain (the xl process's start, its XML-RPC call, xend's checks),
 * createdomain to the spawn or take of the guest process (xend's build and
 * console wiring), that to the guest's "booted" line (Node start and module
 * loading unless it was a spare, hello, kernel boot), the kernel's own boot
 * as it reports it, and "booted" to the prompt on xl's stdout (xenconsoled,
 * the PTY, xl's console attach).
 */
export function bootPhases(log: string, walls = new Map<string, { start: number; end: number }>()): Record<string, number> {
  const at = new Map<string, { created?: number; started?: number; booted?: number; kernel?: number; name?: string }>();
  const get = (d: string) => at.get(d) ?? at.set(d, {}).get(d)!;
  for (const line of log.split('\n')) {
    const m = /^\[([^\]]+)\] \((XEN|d\d+)\) (.*)$/.exec(line);
    if (!m) continue;
    const t = Date.parse(m[1]!);
    const ev = /^(d\d+): (created|started)/.exec(m[3]!);
    if (m[2] === 'XEN' && ev) get(ev[1]!)[ev[2] as 'created' | 'started'] = t;
    const b = /^(\S+): booted to the shell in (\d+) ms/.exec(m[3]!);
    if (m[2] !== 'XEN' && b) { const e = get(m[2]!); e.booted = t; e.kernel = Number(b[2]); e.name = b[1]; }
  }
  const build: number[] = [];
  const proc: number[] = [];
  const kernel: number[] = [];
  const xlToCreated: number[] = [];
  const bootedToPrompt: number[] = [];
  for (const [d, e] of at) {
    if (d === 'd0' || e.created === undefined || e.started === undefined || e.booted === undefined) continue;
    build.push(e.started - e.created);
    proc.push(e.booted - e.started);
    kernel.push(e.kernel!);
    const w = walls.get(e.name!);
    if (w) { xlToCreated.push(e.created - w.start); bootedToPrompt.push(w.end - e.booted); }
  }
  if (build.length === 0) return {};
  return {
    ...(xlToCreated.length ? { xlToCreatedMs: median(xlToCreated) } : {}),
    createdToSpawnMs: median(build), spawnToBootedMs: median(proc), kernelBootMs: median(kernel),
    ...(bootedToPrompt.length ? { bootedToPromptMs: median(bootedToPrompt) } : {}),
  };
}

export const boot: Suite = {
  name: 'boot',
  description: 'xl create -c to the shell prompt, guests created one after another',
  baseline: '`node -e` to its first output (starting any Node process), sampled between the creations',
  async run(ctx) {
    const n = ctx.opts.quick ? GUESTS.quick : GUESTS.full;
    const h = await startBenchHost(ctx, { memoryMB: 1024 + n * GUEST_MB, pcpus: 2 });
    const cfg = h.file('boot.cfg', `name = "boot"\ntype = "pv"\nmemory = ${GUEST_MB}\nvcpus = 1\n`);
    const created: number[] = [];
    const floor: number[] = [];
    /** Wall-clock start and prompt of each creation, to place the hypervisor's timestamps. */
    const walls = new Map<string, { start: number; end: number }>();
    try {
      for (let i = 0; i < n; i++) {
        floor.push(await nodeFloorMs(ctx));
        const start = Date.now();
        created.push(await createToPrompt(ctx, h, cfg, `boot${i}`));
        walls.set(`boot${i}`, { start, end: start + created[i]! });
        ctx.log(`boot: guest ${i + 1}/${n}: ${created[i]!.toFixed(0)} ms (node -e ${floor[i]!.toFixed(0)} ms)`);
      }
    } finally {
      const left = await h.stop();
      if (left.pids.length || left.segments.length) {
        ctx.note(`boot: LEAK after host down: pids ${left.pids.join(' ')}; segments ${left.segments.join(' ')}`);
      }
    }
    const floorP50 = median(floor);
    const phases = bootPhases(h.hypervisor.stdout(), walls);
    const metrics: Metric[] = [
      { name: 'create-to-prompt p50', value: percentile(created, 50), unit: 'ms', baseline: floorP50,
        target: { cmp: '<=', value: TARGET_P50_MS }, samples: created,
        details: { guests: n, guestMB: GUEST_MB, first: Math.round(created[0]!), last: Math.round(created[n - 1]!), ...phases } },
      { name: 'create-to-prompt p95', value: percentile(created, 95), unit: 'ms', baseline: percentile(floor, 95) },
      { name: 'node -e to first output (baseline)', value: floorP50, unit: 'ms', samples: floor },
    ];
    return metrics;
  },
};
