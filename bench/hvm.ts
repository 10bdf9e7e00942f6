// HVM guests (docs/benchmarks.md, HVM): what an access to an emulated
// device costs, how long SeaBIOS and Debian's i386 Linux take to boot, and
// how fast Linux reads its IDE disk, each next to a reference measured in
// the same run.
//
//   ioreq round trip   bench/asm/ioreq_rt.asm in an xenemu HVM guest: `in`
//                      from COM1's scratch register (qemu-dm's UART), timed
//                      with rdtsc around each one, and back to back for the
//                      rate; vs the same hand-off between two Node
//                      processes over a futex (bench/futex_pingpong.ts),
//                      sampled alternately
//   boot               `xl create -c` to the first byte a boot sector writes
//                      to COM1 (bench/asm/first_byte.asm), and to Debian's
//                      busybox prompt (launcher/hvm_image.ts's CD); vs v86
//                      alone in one Node process on the same files
//                      (bench/hvm_v86.ts); QEMU's TCG beside them
//   disk               `dd if=/dev/sda of=/dev/null bs=1M` in that Linux,
//                      caches dropped, vs the same in v86 alone (and QEMU);
//                      a PV guest's blkfront reading the same image beside it
//
// The three machines take turns in every round, so the load of the moment
// weighs on each alike.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { buildHvmImage } from '../launcher/hvm_image.js';
import { PtyClient } from '../launcher/pty_client.js';
import { shmSweep } from '../shared/shm.js';
import { XsClient } from '../shared/xenstore/client.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost, type BenchHost } from './xen_host.js';
import {
  SEABIOS, VGABIOS, qemuMissing, startQemu, startV86, startXenemu, type MachineSpec, type Platform, type Running,
  type SerialConsole,
} from './hvm_platforms.js';

const MiB = 1 << 20;

/** The issue's targets. */
const TARGET_RT_P50 = 1.5; // ioreq round trip p50 <= 1.5x the futex ping-pong's
const TARGET_LINUX = 1.3; // Linux boot <= 1.3x v86 alone
const TARGET_DISK = 0.7; // sequential read >= 0.7x v86 alone

/**
 * v86's TSC: its read_tsc (src/rust/cpu/cpu.rs) is performance.now() times
 * TSC_RATE = 10^6 per millisecond, one tick per nanosecond of the host's
 * monotonic clock.
 */
const TSC_PER_NS = 1;
/** bench/asm/ioreq_rt.asm's histogram buckets: 2^5 TSC ticks. */
const BUCKET_TICKS = 32;

/** busybox sh's prompt on ttyS0 (it then asks the terminal where its cursor is: ESC [ 6 n). */
export const PROMPT = /\/ # (\x1b\[6n)?$/;
const LINUX_BOOT_TIMEOUT_MS = 240_000;

export function nasm(ctx: SuiteContext, src: string, out: string, defines: string[] = []): Buffer {
  const r = spawnSync('nasm', ['-f', 'bin', ...defines.map((d) => `-D${d}`), join(ctx.root, 'bench', 'asm', src), '-o', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nasm ${src}: ${r.error?.message ?? r.stderr}`);
  return readFileSync(out);
}

/** A disk image of `bytes` with `sector` as its boot sector. */
export function bootDisk(path: string, sector: Buffer, bytes = MiB): string {
  const img = Buffer.alloc(bytes);
  sector.copy(img, 0);
  writeFileSync(path, img);
  return path;
}

/** Types a command at busybox's prompt; resolves with its output once the prompt is back. */
export async function shell(c: SerialConsole, cmd: string, timeoutMs = 120_000): Promise<string> {
  const from = c.text.length;
  c.write(`${cmd}\r`);
  await c.until(PROMPT, from + cmd.length, timeoutMs);
  const out = c.text.slice(from).replace(/\r/g, '');
  return out.slice(out.indexOf('\n') + 1).replace(PROMPT, '');
}

/** MiB/s of `time dd ...` in busybox: dd says nothing of time, busybox's time says "real 0m 1.23s". */
export function timedRate(out: string, MiBs: number): number {
  const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(out);
  if (!m || !/(\d+)\+0 records in/.test(out)) throw new Error(`no dd and time report in: ${out}`);
  return MiBs / (Number(m[1]) * 60 + Number(m[2]));
}

/** MiB/s from xenemu's PV dd: "N bytes (...) copied, S s". */
function ddRate(out: string): number {
  const m = /(\d+) bytes .*copied, ([\d.e+-]+) s/.exec(out);
  if (!m) throw new Error(`no dd report in: ${out}`);
  return Number(m[1]) / MiB / Number(m[2]);
}

// ---- ioreq round trip ---------------------------------------------------------

export interface RtRound { p50Ns: number; p90Ns: number; p99Ns: number; perSec: number; wallNs: number; tscNs: number }

/** One round of the guest program: a byte on COM1 starts it; its histogram and times come back. */
export async function rtRound(c: SerialConsole, n: number): Promise<RtRound> {
  const from = c.text.length;
  const t0 = performance.now();
  c.write('g');
  const t = await c.until(/T ([0-9a-f]{8}) ([0-9a-f]{8})\r\n/, from, 60_000);
  const wallNs = (performance.now() - t0) * 1e6;
  const report = c.text.slice(from, from + t.index + t[0].length);
  const hist: Array<[number, number]> = [];
  for (const m of report.matchAll(/H ([0-9a-f]{4}) ([0-9a-f]{4})\r\n/g)) hist.push([parseInt(m[1]!, 16), parseInt(m[2]!, 16)]);
  const total = hist.reduce((s, [, k]) => s + k, 0);
  if (total !== n) throw new Error(`ioreq_rt: histogram holds ${total} samples, not ${n}:\n${report.slice(0, 2000)}`);
  const pick = (p: number): number => {
    const rank = Math.ceil((p / 100) * n);
    let seen = 0;
    for (const [b, k] of hist) { seen += k; if (seen >= rank) return (b * BUCKET_TICKS + BUCKET_TICKS / 2) / TSC_PER_NS; }
    return NaN;
  };
  const rateNs = parseInt(t[2]!, 16) / TSC_PER_NS;
  return { p50Ns: pick(50), p90Ns: pick(90), p99Ns: pick(99), perSec: n / (rateNs / 1e9), wallNs,
    tscNs: parseInt(t[1]!, 16) / TSC_PER_NS + rateNs };
}

interface PingPong { n: number; p50Ns: number; p90Ns: number; p99Ns: number; timedNs: number; rateNs: number }

async function pingPong(ctx: SuiteContext, n: number, warm: number): Promise<PingPong> {
  const c = ctx.scope.spawn('futex ping-pong', process.execPath, [join(ctx.dist, 'bench', 'futex_pingpong.js'), 'client', String(n), String(warm)],
    { lifeline: true });
  const e = await c.exited;
  shmSweep(`/xenemu.bench-${c.pid}-`); // what a killed client could not unlink
  if (e.code !== 0) throw new Error(c.describeExit(e));
  return JSON.parse(c.stdout()) as PingPong;
}

async function ioreqRoundTrip(ctx: SuiteContext, h: BenchHost, dir: string): Promise<Metric[]> {
  const n = ctx.opts.quick ? 2000 : 20_000;
  const warm = ctx.opts.quick ? 500 : 2000;
  const rounds = ctx.opts.quick ? 1 : 5;
  const hda = bootDisk(join(dir, 'ioreq_rt.img'), nasm(ctx, 'ioreq_rt.asm', join(dir, 'ioreq_rt.bin'), [`N=${n}`, `WARM=${warm}`]));
  const g = await startXenemu(ctx, h, { name: 'ioreqrt', ramMiB: 32, hda }, /R\r\n/, 60_000);
  const guest: RtRound[] = [];
  const base: PingPong[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      guest.push(await rtRound(g.console, n));
      base.push(await pingPong(ctx, n, warm));
      const gr = guest.at(-1)!, br = base.at(-1)!;
      ctx.log(`hvm: ioreq round trip ${i + 1}/${rounds}: guest p50 ${(gr.p50Ns / 1000).toFixed(1)} us, ${gr.perSec.toFixed(0)}/s; ` +
        `futex p50 ${(br.p50Ns / 1000).toFixed(1)} us, ${(n / (br.rateNs / 1e9)).toFixed(0)}/s`);
    }
  } finally {
    await g.stop();
  }
  const us = (ns: number) => ns / 1000;
  // The guest's loops cannot have lasted longer than the round did on the host's clock.
  const fast = guest.filter((r) => r.tscNs > r.wallNs);
  if (fast.length) throw new Error(`ioreq_rt: the guest's TSC counted more than the host's clock (${fast.map((r) => `${r.tscNs} > ${r.wallNs} ns`).join(', ')})`);
  const fix = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(',');
  return [
    { name: 'ioreq round trip p50', value: median(guest.map((r) => us(r.p50Ns))), unit: 'us', baseline: median(base.map((r) => us(r.p50Ns))),
      target: { cmp: '<=', value: TARGET_RT_P50, ratio: true }, samples: guest.map((r) => us(r.p50Ns)),
      details: { n, rounds, p90: median(guest.map((r) => us(r.p90Ns))), p99: median(guest.map((r) => us(r.p99Ns))),
        baselineP90: median(base.map((r) => us(r.p90Ns))), baselineP99: median(base.map((r) => us(r.p99Ns))),
        baselineSamples: fix(base.map((r) => us(r.p50Ns))) } },
    { name: 'ioreq round trips', value: median(guest.map((r) => r.perSec)), unit: 'rt/s', baseline: median(base.map((r) => r.n / (r.rateNs / 1e9))),
      samples: guest.map((r) => Math.round(r.perSec)), details: { baselineSamples: base.map((r) => Math.round(r.n / (r.rateNs / 1e9))).join(',') } },
  ];
}

// ---- boots --------------------------------------------------------------------

type Timings = Record<Platform, number[]>;

async function startOn(ctx: SuiteContext, h: BenchHost, p: Platform, m: MachineSpec, ready: RegExp, timeoutMs: number)
  : Promise<{ run: Running; ms: number }> {
  if (p === 'xenemu') {
    const g = await startXenemu(ctx, h, m, ready, timeoutMs);
    return { run: g, ms: g.readyMs };
  }
  const run = p === 'v86' ? startV86(ctx, m) : startQemu(ctx, m);
  try {
    await run.console.until(ready, 0, timeoutMs);
  } catch (e) {
    await run.stop();
    throw e;
  }
  return { run, ms: performance.now() - run.t0 };
}

async function firstByte(ctx: SuiteContext, h: BenchHost, dir: string, platforms: Platform[], rounds: number): Promise<Timings> {
  const hda = bootDisk(join(dir, 'first_byte.img'), nasm(ctx, 'first_byte.asm', join(dir, 'first_byte.bin')));
  const out: Timings = { xenemu: [], v86: [], qemu: [] };
  for (let i = 0; i < rounds; i++) {
    for (const p of platforms) {
      const { run, ms } = await startOn(ctx, h, p, { name: `firstbyte${i}`, ramMiB: 32, hda }, /!/, 60_000);
      await run.stop();
      out[p].push(ms);
    }
    ctx.log(`hvm: to the first serial byte ${i + 1}/${rounds}: ${platforms.map((p) => `${p} ${out[p].at(-1)!.toFixed(0)} ms`).join(', ')}`);
  }
  return out;
}

/**
 * Debian's Linux to its prompt, then the disk read with the guest's caches
 * dropped before each dd (the image fits in its RAM), on every platform in
 * turn, `rounds` times.
 */
async function linux(ctx: SuiteContext, h: BenchHost, iso: string, hda: string, diskMiB: number, platforms: Platform[], rounds: number)
  : Promise<{ boot: Timings; read: Timings }> {
  const boot: Timings = { xenemu: [], v86: [], qemu: [] };
  const read: Timings = { xenemu: [], v86: [], qemu: [] };
  for (let i = 0; i < rounds; i++) {
    for (const p of platforms) {
      const { run, ms } = await startOn(ctx, h, p, { name: `linux${i}`, ramMiB: 128, hda, cdrom: iso, bootCd: true },
        /xenemu HVM busybox[^]*\/ # /, LINUX_BOOT_TIMEOUT_MS);
      try {
        boot[p].push(ms);
        const c = run.console;
        // A fresh prompt on the console now in use (xenemu's came on xl's).
        const from = c.text.length;
        c.write('\r');
        await c.until(PROMPT, from, 30_000);
        const size = Number((await shell(c, 'cat /sys/block/sda/size')).trim()) * 512;
        if (size !== diskMiB * MiB) throw new Error(`${p}: /dev/sda holds ${size} bytes, not ${diskMiB} MiB`);
        await shell(c, 'echo 3 > /proc/sys/vm/drop_caches');
        read[p].push(timedRate(await shell(c, 'time dd if=/dev/sda of=/dev/null bs=1M', 300_000), diskMiB));
      } finally {
        await run.stop();
      }
      ctx.log(`hvm: Linux on ${p} ${i + 1}/${rounds}: prompt after ${(boot[p].at(-1)! / 1000).toFixed(1)} s, dd ${read[p].at(-1)!.toFixed(1)} MiB/s`);
    }
  }
  return { boot, read };
}

/** A PV guest's blkfront reading the same image (blk suite's way), `rounds` times. */
async function pvRead(ctx: SuiteContext, h: BenchHost, img: string, diskMiB: number, rounds: number): Promise<number[]> {
  const cfg = h.file('pvread.cfg', `name = "pvread"\nmemory = 64\ndisk = [ 'file:${img},xvda,w' ]\n`);
  await ctx.scope.run('xl create pvread', process.execPath, [h.cli, 'xl', 'create', cfg], { env: h.env });
  const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
  let con: PtyClient | undefined;
  try {
    const id = Number((await ctx.scope.run('xl domid', process.execPath, [h.cli, 'xl', 'domid', 'pvread'], { env: h.env })).trim());
    con = new PtyClient(await xs.readString(`/local/domain/${id}/console/tty`));
    await con.until(/root@[\w-]+:~# $/, 0, 60_000);
    const rates: number[] = [];
    for (let i = 0; i < rounds; i++) rates.push(ddRate(await con.run(`dd if=/dev/xvda of=/dev/null bs=1M count=${diskMiB}`)));
    return rates;
  } finally {
    await con?.close();
    xs.close();
    await ctx.scope.run('xl destroy pvread', process.execPath, [h.cli, 'xl', 'destroy', 'pvread'], { env: h.env }).catch(() => undefined);
  }
}

// ---- the suite ----------------------------------------------------------------

export const hvm: Suite = {
  name: 'hvm',
  description: 'HVM guests: ioreq round trip, boot to the first serial byte and to Debian\'s shell, IDE reads',
  baseline: 'ioreq: a futex ping-pong between two Node processes on a /dev/shm segment (bench/futex_pingpong.ts); '
    + 'boot and disk: v86 alone in one Node process on the same BIOS, images and memory (bench/hvm_v86.ts)',
  async run(ctx) {
    for (const f of [SEABIOS, VGABIOS]) if (!existsSync(f)) throw new Error(`${f} missing: install the Debian package seabios (.ci/setup does)`);
    if (spawnSync('nasm', ['-v']).status !== 0) throw new Error('nasm not found: install the Debian package nasm (.ci/setup does)');
    const noQemu = qemuMissing();
    if (noQemu) ctx.note(`hvm: QEMU SKIPPED: ${noQemu}; its column is left out`);
    const platforms: Platform[] = noQemu ? ['xenemu', 'v86'] : ['xenemu', 'v86', 'qemu'];
    let iso: string | undefined;
    try {
      iso = (await buildHvmImage({ log: (m) => ctx.log(`hvm-image: ${m}`) })).iso;
    } catch (e) {
      ctx.note(`hvm: Linux SKIPPED: cannot build the HVM Linux image: ${(e as Error).message}`);
    }
    const rounds = ctx.opts.quick ? 1 : 3;
    const diskMiB = ctx.opts.quick ? 16 : 64;
    const dir = ctx.scope.tmpdir();
    const h = await startBenchHost(ctx, {
      memoryMB: 1024, env: ctx.opts.nodeFlags.length ? { XENEMU_DOMAIN_NODE_FLAGS: ctx.opts.nodeFlags.join(' ') } : {},
    });
    const metrics: Metric[] = [];
    const s = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(',');
    /** QEMU's row beside one of xenemu's: the same quantity, no target, the same baseline. */
    const anchor = (m: Metric, samples: number[]): Metric[] => (samples.length
      ? [{ name: `${m.name}, QEMU TCG`, value: median(samples), unit: m.unit, baseline: m.baseline, samples }] : []);
    try {
      metrics.push(...await ioreqRoundTrip(ctx, h, dir));

      const fb = await firstByte(ctx, h, dir, platforms, rounds);
      const fbm: Metric = { name: 'boot to first serial byte', value: median(fb.xenemu), unit: 'ms', baseline: median(fb.v86),
        samples: fb.xenemu, details: { baselineSamples: s(fb.v86) } };
      metrics.push(fbm, ...anchor(fbm, fb.qemu));

      if (iso) {
        mkdirSync(dir, { recursive: true });
        const hda = join(dir, 'sda.img');
        writeFileSync(hda, randomBytes(diskMiB * MiB));
        const l = await linux(ctx, h, iso, hda, diskMiB, platforms, rounds);
        const sec = (xs: number[]) => xs.map((x) => x / 1000);
        const lb: Metric = { name: 'Debian Linux boot to prompt', value: median(sec(l.boot.xenemu)), unit: 's', baseline: median(sec(l.boot.v86)),
          target: { cmp: '<=', value: TARGET_LINUX, ratio: true }, samples: sec(l.boot.xenemu),
          details: { baselineSamples: sec(l.boot.v86).map((x) => x.toFixed(1)).join(',') } };
        metrics.push(lb, ...anchor(lb, sec(l.boot.qemu)));
        const pv = await pvRead(ctx, h, hda, diskMiB, rounds);
        const rd: Metric = { name: `IDE seq read ${diskMiB} MiB (dd bs=1M)`, value: median(l.read.xenemu), unit: 'MiB/s', baseline: median(l.read.v86),
          target: { cmp: '>=', value: TARGET_DISK, ratio: true }, samples: l.read.xenemu, details: { baselineSamples: s(l.read.v86) } };
        metrics.push(rd, ...anchor(rd, l.read.qemu));
        metrics.push({ name: `PV blkfront seq read ${diskMiB} MiB`, value: median(pv), unit: 'MiB/s', samples: pv });
      }
    } finally {
      const left = await h.stop();
      if (left.pids.length || left.segments.length) ctx.note(`hvm: LEAK after host down: ${JSON.stringify(left)}`);
    }
    return metrics;
  },
};
