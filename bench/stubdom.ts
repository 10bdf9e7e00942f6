// Stub domains (docs/benchmarks.md, stubdom; docs/stubdom.md): the same HVM
// guest with its qemu-dm in Domain-0 (the default placement) and in a stub
// domain `<guest>-dm` (device_model_stubdomain_override = 1), both on one
// host, taking turns in every round so that the load of the moment weighs on
// each alike. Every metric is the stub placement's, its baseline Domain-0's.
//
//   Domain-0 CPU per GiB   utime+stime (/proc/<pid>/stat) over the guest's
//                          `dd if=/dev/sda of=/dev/null bs=1M` (Debian's
//                          Linux, caches dropped): the Domain-0 process plus
//                          qemu-dm for the Domain-0 placement (both are
//                          Domain-0's), the Domain-0 process alone (blkback,
//                          xenconsoled) for the stub placement
//   disk                   that dd's rate
//   ioreq round trip       bench/asm/ioreq_rt.asm (as bench/hvm.ts runs it):
//                          COM1's scratch register, qemu-dm's UART, in the
//                          stub's ioreq thread or in Domain-0's qemu-dm
//   boot                   `xl create -c` to the first byte a boot sector
//                          (bench/asm/first_byte.asm) writes to COM1
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildHvmImage } from '../launcher/hvm_image.js';
import { readHostRecord } from '../shared/host.js';
import { XsClient } from '../shared/xenstore/client.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost, type BenchHost } from './xen_host.js';
import { SEABIOS, VGABIOS, startXenemu, type MachineSpec } from './hvm_platforms.js';
import { PROMPT, bootDisk, nasm, rtRound, shell, timedRate, type RtRound } from './hvm.js';
import { CLOCK_TICKS, procCpuTicks } from './harness.js';

const MiB = 1 << 20;

/** The targets, as ratios stub / Domain-0 placement. */
const TARGET_DOM0_CPU = 0.5; // Domain-0's CPU per GiB read <= 0.5x
const TARGET_DISK = 0.7; // dd's rate >= 0.7x
const TARGET_RT_RATE = 0.7; // ioreq round trips per second >= 0.7x

/** The stub placement's config lines (stubdomain_memory left at xl.cfg's 128 MiB). */
const STUB = ['device_model_stubdomain_override = 1'];
const LINUX_BOOT_TIMEOUT_MS = 240_000;

type Placement = 'dom0' | 'stub';
const PLACEMENTS: Placement[] = ['dom0', 'stub'];
const extra = (p: Placement) => (p === 'stub' ? STUB : []);

function domainPid(h: BenchHost, domid: number): number {
  const pid = readHostRecord(h.rundir)?.pids.domains[String(domid)];
  if (!pid) throw new Error(`no process of d${domid} in the host record`);
  return pid;
}

// ---- ioreq round trip ---------------------------------------------------------

async function ioreqRoundTrip(ctx: SuiteContext, h: BenchHost, dir: string): Promise<Metric[]> {
  const n = ctx.opts.quick ? 2000 : 20_000;
  const warm = ctx.opts.quick ? 500 : 2000;
  const rounds = ctx.opts.quick ? 1 : 5;
  const hda = bootDisk(join(dir, 'ioreq_rt.img'), nasm(ctx, 'ioreq_rt.asm', join(dir, 'ioreq_rt.bin'), [`N=${n}`, `WARM=${warm}`]));
  const out: Record<Placement, RtRound[]> = { dom0: [], stub: [] };
  const g0 = await startXenemu(ctx, h, { name: 'rtdom0', ramMiB: 32, hda }, /R\r\n/, 60_000);
  try {
    const gs = await startXenemu(ctx, h, { name: 'rtstub', ramMiB: 32, hda }, /R\r\n/, 60_000, STUB);
    try {
      if (gs.dmDomid === undefined) throw new Error('rtstub has no stub domain');
      for (let i = 0; i < rounds; i++) {
        out.dom0.push(await rtRound(g0.console, n));
        out.stub.push(await rtRound(gs.console, n));
        ctx.log(`stubdom: ioreq round trip ${i + 1}/${rounds}: ${PLACEMENTS.map((p) =>
          `${p} p50 ${(out[p].at(-1)!.p50Ns / 1000).toFixed(1)} us, ${out[p].at(-1)!.perSec.toFixed(0)}/s`).join('; ')}`);
      }
    } finally {
      await gs.stop();
    }
  } finally {
    await g0.stop();
  }
  const us = (r: RtRound) => r.p50Ns / 1000;
  const p50 = { dom0: median(out.dom0.map(us)), stub: median(out.stub.map(us)) };
  return [
    { name: 'ioreq round trips', value: median(out.stub.map((r) => r.perSec)), unit: 'rt/s', baseline: median(out.dom0.map((r) => r.perSec)),
      target: { cmp: '>=', value: TARGET_RT_RATE, ratio: true }, samples: out.stub.map((r) => Math.round(r.perSec)),
      details: { n, rounds, baselineSamples: out.dom0.map((r) => Math.round(r.perSec)).join(',') } },
    { name: 'ioreq round trip p50', value: p50.stub, unit: 'us', baseline: p50.dom0, samples: out.stub.map(us),
      details: { dom0OverStub: Number((p50.dom0 / p50.stub).toFixed(2)), p90: median(out.stub.map((r) => r.p90Ns / 1000)),
        baselineP90: median(out.dom0.map((r) => r.p90Ns / 1000)), baselineSamples: out.dom0.map((r) => us(r).toFixed(1)).join(',') } },
  ];
}

// ---- boot to the first serial byte ------------------------------------------------

async function firstByte(ctx: SuiteContext, h: BenchHost, dir: string): Promise<Metric> {
  const rounds = ctx.opts.quick ? 1 : 5;
  const hda = bootDisk(join(dir, 'first_byte.img'), nasm(ctx, 'first_byte.asm', join(dir, 'first_byte.bin')));
  const ms: Record<Placement, number[]> = { dom0: [], stub: [] };
  for (let i = 0; i < rounds; i++) {
    for (const p of PLACEMENTS) {
      const g = await startXenemu(ctx, h, { name: `fb${p}${i}`, ramMiB: 32, hda }, /!/, 60_000, extra(p));
      await g.stop();
      ms[p].push(g.readyMs);
    }
    ctx.log(`stubdom: xl create to the first serial byte ${i + 1}/${rounds}: ${PLACEMENTS.map((p) => `${p} ${ms[p].at(-1)!.toFixed(0)} ms`).join(', ')}`);
  }
  return { name: 'xl create to first serial byte', value: median(ms.stub), unit: 'ms', baseline: median(ms.dom0), samples: ms.stub,
    details: { rounds, baselineSamples: ms.dom0.map((x) => x.toFixed(0)).join(',') } };
}

// ---- Linux's dd: rate and Domain-0's CPU ---------------------------------------------

interface DdSample {
  rate: number;
  /** CPU ms per GiB read: Domain-0's (as counted for the placement), the Domain-0 process's, qemu-dm's or the stub's, the guest's. */
  dom0: number; dom0Process: number; dm: number; guest: number;
}

async function linuxDd(ctx: SuiteContext, h: BenchHost, dir: string, iso: string): Promise<Metric[]> {
  const rounds = ctx.opts.quick ? 1 : 5;
  const diskMiB = ctx.opts.quick ? 32 : 256; // 256 MiB: the 10 ms ticks of /proc/<pid>/stat are ~40 ms/GiB
  const hz = CLOCK_TICKS;
  const dom0Pid = domainPid(h, 0);
  const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
  const started: Array<Awaited<ReturnType<typeof startXenemu>>> = [];
  const out: Record<Placement, DdSample[]> = { dom0: [], stub: [] };
  try {
    const guests = {} as Record<Placement, { g: (typeof started)[number]; dmPid: number; guestPid: number }>;
    for (const p of PLACEMENTS) {
      const hda = join(dir, `sda-${p}.img`);
      writeFileSync(hda, randomBytes(diskMiB * MiB));
      const m: MachineSpec = { name: `l${p}`, ramMiB: 128, hda, cdrom: iso, bootCd: true };
      const g = await startXenemu(ctx, h, m, /xenemu HVM busybox[^]*\/ # /, LINUX_BOOT_TIMEOUT_MS, extra(p));
      started.push(g);
      if ((p === 'stub') !== (g.dmDomid !== undefined)) throw new Error(`${m.name}: device model placement is not ${p}`);
      const dmPid = p === 'stub' ? domainPid(h, g.dmDomid!) : Number(await xs.readString(`/local/domain/${g.domid}/image/device-model-pid`));
      guests[p] = { g, dmPid, guestPid: domainPid(h, g.domid) };
      ctx.log(`stubdom: Linux (${p} placement) at its prompt after ${(g.readyMs / 1000).toFixed(1)} s`);
      const c = g.console;
      const from = c.text.length;
      c.write('\r');
      await c.until(PROMPT, from, 30_000);
      const size = Number((await shell(c, 'cat /sys/block/sda/size')).trim()) * 512;
      if (size !== diskMiB * MiB) throw new Error(`${m.name}: /dev/sda holds ${size} bytes, not ${diskMiB} MiB`);
    }
    const perGiB = (ticks: number) => (ticks / hz) * 1000 / (diskMiB / 1024);
    for (let i = 0; i < rounds; i++) {
      for (const p of PLACEMENTS) {
        const { g, dmPid, guestPid } = guests[p];
        await shell(g.console, 'echo 3 > /proc/sys/vm/drop_caches');
        const before = [procCpuTicks(dom0Pid), procCpuTicks(dmPid), procCpuTicks(guestPid)];
        const dd = await shell(g.console, 'time dd if=/dev/sda of=/dev/null bs=1M', 300_000);
        const after = [procCpuTicks(dom0Pid), procCpuTicks(dmPid), procCpuTicks(guestPid)];
        const d = after.map((a, k) => perGiB(a - before[k]!));
        out[p].push({ rate: timedRate(dd, diskMiB), dom0: p === 'dom0' ? d[0]! + d[1]! : d[0]!, dom0Process: d[0]!, dm: d[1]!, guest: d[2]! });
      }
      ctx.log(`stubdom: dd ${diskMiB} MiB ${i + 1}/${rounds}: ${PLACEMENTS.map((p) => {
        const s = out[p].at(-1)!;
        return `${p} ${s.rate.toFixed(1)} MiB/s, Domain-0 CPU ${s.dom0.toFixed(0)} ms/GiB (process ${s.dom0Process.toFixed(0)}, ` +
          `${p === 'stub' ? 'stub' : 'qemu-dm'} ${s.dm.toFixed(0)}, guest ${s.guest.toFixed(0)})`;
      }).join('; ')}`);
    }
  } finally {
    xs.close();
    for (const g of started.reverse()) await g.stop();
  }
  const med = (p: Placement, k: keyof DdSample) => median(out[p].map((s) => s[k]));
  const fix = (p: Placement, k: keyof DdSample) => out[p].map((s) => s[k].toFixed(0)).join(',');
  return [
    { name: 'Domain-0 CPU per GiB read (dd)', value: med('stub', 'dom0'), unit: 'ms/GiB', baseline: med('dom0', 'dom0'),
      target: { cmp: '<=', value: TARGET_DOM0_CPU, ratio: true }, samples: out.stub.map((s) => s.dom0),
      details: { diskMiB, rounds, baselineSamples: fix('dom0', 'dom0'),
        baselineDom0Process: med('dom0', 'dom0Process'), baselineQemuDm: med('dom0', 'dm'), baselineGuest: med('dom0', 'guest'),
        stubDomain: med('stub', 'dm'), guest: med('stub', 'guest') } },
    { name: `IDE seq read ${diskMiB} MiB (dd bs=1M)`, value: med('stub', 'rate'), unit: 'MiB/s', baseline: med('dom0', 'rate'),
      target: { cmp: '>=', value: TARGET_DISK, ratio: true }, samples: out.stub.map((s) => s.rate),
      details: { baselineSamples: out.dom0.map((s) => s.rate.toFixed(1)).join(',') } },
  ];
}

// ---- the suite ----------------------------------------------------------------

export const stubdom: Suite = {
  name: 'stubdom',
  description: 'qemu-dm in a stub domain vs in Domain-0: Domain-0\'s CPU per GiB an HVM guest reads, its disk rate, ioreq round trips, boot',
  baseline: 'the same guest with its qemu-dm in Domain-0 (the default placement), the two taking turns in every round',
  async run(ctx) {
    for (const f of [SEABIOS, VGABIOS]) if (!existsSync(f)) throw new Error(`${f} missing: install the Debian package seabios (.ci/setup does)`);
    if (spawnSync('nasm', ['-v']).status !== 0) throw new Error('nasm not found: install the Debian package nasm (.ci/setup does)');
    let iso: string | undefined;
    try {
      iso = (await buildHvmImage({ log: (m) => ctx.log(`hvm-image: ${m}`) })).iso;
    } catch (e) {
      ctx.note(`stubdom: Linux SKIPPED: cannot build the HVM Linux image: ${(e as Error).message}`);
    }
    const dir = ctx.scope.tmpdir();
    const h = await startBenchHost(ctx, {
      memoryMB: 1024, env: ctx.opts.nodeFlags.length ? { XENEMU_DOMAIN_NODE_FLAGS: ctx.opts.nodeFlags.join(' ') } : {},
    });
    const metrics: Metric[] = [];
    try {
      if (iso) metrics.push(...await linuxDd(ctx, h, dir, iso));
      metrics.push(...await ioreqRoundTrip(ctx, h, dir));
      metrics.push(await firstByte(ctx, h, dir));
    } finally {
      const left = await h.stop();
      if (left.pids.length || left.segments.length) ctx.note(`stubdom: LEAK after host down: ${JSON.stringify(left)}`);
    }
    return metrics;
  },
};
