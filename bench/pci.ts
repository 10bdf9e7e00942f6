// PCI passthrough of the host's NVMe controller to a PV guest (docs/passthrough.md),
// against blkfront on a copy of the same image and direct file I/O from Node.
//
//   nvme0n1  guest dd / blkbench ─► kernel NVMe driver: SQ entry, tail doorbell (BAR channel,
//              rung on the device's irq line) ─► device process (shared/hw/nvme.ts): PRPs, DMA
//              into the guest's frames through the IOMMU, CQ entry, MSI-X posted: the pirq's
//              port pending in the guest's shared_info, a byte on the irq line (no hypervisor)
//   xvda     guest dd / blkbench ─► blkfront ring ─► blkback (Domain-0) ─► preadv
//   direct   one Node process, fs/promises on the image
//
// One host (`--pci nvme:IMG`), one PV guest with `pci = [ '03:00.0' ]` and
// `disk = [ 'file:IMG2,xvda,r' ]`, IMG2 a copy of IMG; both in the page
// cache (read once before measuring). Each round measures, in an order that
// alternates between rounds so that the load of the moment weighs on each alike:
//   seq read    dd if=/dev/nvme0n1|/dev/xvda of=/dev/null bs=1M   vs 1 MiB awaited reads
//   rand read   blkbench randread qd=32 (4 KiB)                     vs 32 concurrent 4 KiB reads
// and Domain-0's CPU time (utime+stime of its process, /proc/<pid>/stat)
// during each path's runs, per GiB moved. The hypervisor's, the device
// process's and the guest's CPU per GiB are kept in the details:
// passthrough moves the work from Domain-0 to the device process.
import { copyFileSync, mkdirSync, openSync, readFileSync, readdirSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PtyClient } from '../launcher/pty_client.js';
import { readHostRecord } from '../shared/host.js';
import { XsClient } from '../shared/xenstore/client.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost, type BenchHost } from './xen_host.js';
import { formatProfile, summarizeProfile } from './profile.js';
import { CLOCK_TICKS, procCpuTicks } from './harness.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const BDF = '0000:03:00.0';

/** The targets: passthrough / blkfront. */
const TARGET_SPEEDUP = 1.2;
const TARGET_DOM0_CPU = 0.05;

// The direct reference: one Node process, the same sizes and patterns, awaited as dd awaits.
const DIRECT = `
const { open } = require('node:fs/promises');
const [img, mode, arg] = process.argv.slice(1);
const MiB = 1 << 20;
(async () => {
  const fh = await open(img, 'r');
  const size = (await fh.stat()).size;
  const t0 = performance.now();
  let out;
  const n = Number(arg);
  if (mode === 'read') {
    const buf = Buffer.alloc(MiB, 0);
    for (let i = 0; i < n; i++) await fh.read(buf, 0, MiB, i * MiB);
  } else {
    const blocks = Math.floor(size / 4096);
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      const b = Buffer.alloc(4096);
      while (next < n) { next++; await fh.read(b, 0, 4096, Math.floor(Math.random() * blocks) * 4096); }
    }));
  }
  out = n / ((performance.now() - t0) / 1000);
  await fh.close();
  console.log('result ' + out);
})();`;

async function direct(ctx: SuiteContext, img: string, mode: 'read' | 'rand', arg: number): Promise<number> {
  const out = await ctx.scope.run(`direct ${mode}`, process.execPath, ['-e', DIRECT, img, mode, String(arg)]);
  return Number(/result ([\d.e+-]+)/.exec(out)![1]);
}

/** MiB/s from dd's report. */
function ddRate(out: string): number {
  const m = /(\d+) bytes .* copied, ([\d.e+-]+) s/.exec(out);
  if (!m) throw new Error(`no dd report in: ${out}`);
  return Number(m[1]) / MiB / Number(m[2]);
}

function iops(out: string): number {
  const m = /(\d+) IOPS/.exec(out);
  if (!m) throw new Error(`no IOPS in: ${out}`);
  return Number(m[1]);
}

/** Notifications (doorbells or ring kicks sent, interrupts or events received) per I/O of a blkbench run. */
function notifsPerIo(out: string, count: number): number {
  const m = /notify-sent (\d+) notify-received (\d+)/.exec(out);
  return m ? (Number(m[1]) + Number(m[2])) / count : NaN;
}

/** The processes whose CPU time is counted: Domain-0, the hypervisor, the NVMe device process, the guest. */
function pids(h: BenchHost, domid: number): Record<Who, number> {
  const rec = readHostRecord(h.rundir);
  const dom0 = rec?.pids.domains['0'];
  const guest = rec?.pids.domains[String(domid)];
  const dev = rec?.pci?.find((d) => d.bdf === BDF)?.pid;
  if (!rec || !dom0 || !dev || !guest) throw new Error('no Domain-0, guest or device process in the host record');
  return { dom0, hv: rec.pids.hypervisor, dev, guest };
}

type Who = 'dom0' | 'hv' | 'dev' | 'guest';
const WHO: Who[] = ['dom0', 'hv', 'dev', 'guest'];

/** An image of `bytes` with data in every block (not a sparse file: a hole reads as cheaply as nothing). */
function writeImage(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  try {
    const chunk = randomBytes(MiB);
    for (let off = 0; off < bytes; off += MiB) {
      chunk.writeUInt32LE(off / MiB, 0);
      writeSync(fd, chunk, 0, MiB, off);
    }
  } finally {
    closeSync(fd);
  }
}

/** Summaries of the CPU profiles of the processes in the two paths (--profile). */
function profiles(ctx: SuiteContext, dir: string): void {
  let files: string[];
  try { files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')); } catch { return; }
  for (const f of files) {
    const path = join(dir, f);
    const text = readFileSync(path, 'utf8');
    const who = text.includes('pcidev/device') ? 'NVMe device process'
      : text.includes('blkback/requests') ? 'Domain-0 (blkback)'
        : text.includes('drivers/nvme') && text.includes('commands/blk') ? 'guest (NVMe driver, blkfront, dd)'
          : text.includes('hypervisor/main') ? 'hypervisor' : undefined;
    if (!who) continue;
    const s = summarizeProfile(path, ctx.root, 25);
    if (s.busyMs < 200) continue;
    ctx.note(`${formatProfile(`pci: ${who} CPU profile`, s)}\n  (full profile: ${path})`);
  }
}

type Path = 'nvme' | 'xvda';
const DEV: Record<Path, string> = { nvme: '/dev/nvme0n1', xvda: '/dev/xvda' };

export const pci: Suite = {
  name: 'pci',
  description: 'NVMe passthrough to a PV guest (nvme0n1) against blkfront (xvda) on a copy of the image, and Domain-0 CPU per GiB of each',
  baseline: 'blkfront -> blkback on a copy of the same image, in the same guest and round (direct Node I/O on the image in the details)',
  async run(ctx) {
    const diskMiB = ctx.opts.quick ? 64 : 1024;
    const rounds = ctx.opts.quick ? 1 : 5;
    const randCount = ctx.opts.quick ? 2000 : 20_000;
    const hz = CLOCK_TICKS;
    const dir = ctx.scope.tmpdir();
    const img = join(dir, 'nvme.img');
    const img2 = join(dir, 'xvda.img');
    writeImage(img, diskMiB * MiB);
    copyFileSync(img, img2);
    const profDir = ctx.opts.profile ? join(ctx.opts.profileDir, 'pci') : undefined;
    if (profDir) mkdirSync(profDir, { recursive: true });
    const flags = [...ctx.opts.nodeFlags, ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])];
    const h = await startBenchHost(ctx, {
      memoryMB: 1024, pci: [`nvme:${img}`], nodeArgs: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
      env: flags.length ? { XENEMU_DOMAIN_NODE_FLAGS: flags.join(' ') } : {},
    });
    const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
    let con: PtyClient | undefined;
    try {
      await ctx.scope.run('xl pci-assignable-add', process.execPath, [h.cli, 'xl', 'pci-assignable-add', BDF], { env: h.env });
      const cfg = h.file('pci.cfg', `name = "pci"\nmemory = 128\npci = [ '03:00.0' ]\ndisk = [ 'file:${img2},xvda,r' ]\n`);
      await ctx.scope.run('xl create', process.execPath, [h.cli, 'xl', 'create', cfg], { env: h.env });
      const id = Number((await ctx.scope.run('xl domid', process.execPath, [h.cli, 'xl', 'domid', 'pci'], { env: h.env })).trim());
      con = new PtyClient(await xs.readString(`/local/domain/${id}/console/tty`));
      await con.until(/root@[\w-]+:~# $/, 0, 60_000);
      const deadline = Date.now() + 30_000;
      while (!/nvme0n1/.test(await con.run('lsblk'))) {
        if (Date.now() > deadline) throw new Error('no nvme0n1 in the guest');
        await new Promise((r) => setTimeout(r, 200));
      }
      ctx.log(`pci: ${(await con.run('dmesg')).split('\n').find((l) => l.includes('nvme nvme0:')) ?? 'nvme0n1 up'}`);
      const p = pids(h, id);
      // Warm-up: both images in the page cache, the drivers' pools and blkfront's persistent grants filled.
      for (const path of ['nvme', 'xvda'] as Path[]) {
        await con.run(`dd if=${DEV[path]} of=/dev/null bs=1M count=${diskMiB}`, 300_000);
        await con.run(`blkbench randread ${DEV[path]} count=${Math.min(2000, randCount)} qd=32`, 300_000);
      }
      await direct(ctx, img, 'read', diskMiB);

      const seq: Record<Path | 'direct', number[]> = { nvme: [], xvda: [], direct: [] };
      const rand: Record<Path | 'direct', number[]> = { nvme: [], xvda: [], direct: [] };
      const notifs: Record<Path, number[]> = { nvme: [], xvda: [] };
      // CPU ticks of each process during each path's runs, and the bytes those runs moved.
      const cpu: Record<Path, Record<Who | 'bytes', number>> = {
        nvme: { dom0: 0, hv: 0, dev: 0, guest: 0, bytes: 0 }, xvda: { dom0: 0, hv: 0, dev: 0, guest: 0, bytes: 0 },
      };
      const measure = async (path: Path): Promise<void> => {
        const before = Object.fromEntries(WHO.map((w) => [w, procCpuTicks(p[w])])) as Record<Who, number>;
        seq[path].push(ddRate(await con!.run(`dd if=${DEV[path]} of=/dev/null bs=1M count=${diskMiB}`, 300_000)));
        const rr = await con!.run(`blkbench randread ${DEV[path]} count=${randCount} qd=32`, 300_000);
        rand[path].push(iops(rr));
        notifs[path].push(notifsPerIo(rr, randCount));
        const c = cpu[path];
        for (const w of WHO) c[w] += procCpuTicks(p[w]) - before[w];
        c.bytes += diskMiB * MiB + randCount * 4096;
      };
      for (let i = 0; i < rounds; i++) {
        const order: Path[] = i % 2 ? ['xvda', 'nvme'] : ['nvme', 'xvda'];
        for (const path of order) await measure(path);
        seq.direct.push(await direct(ctx, img, 'read', diskMiB));
        rand.direct.push(await direct(ctx, img, 'rand', randCount));
        ctx.log(`pci: round ${i + 1}/${rounds}: seq read nvme ${seq.nvme.at(-1)!.toFixed(0)} / xvda ${seq.xvda.at(-1)!.toFixed(0)} / ` +
          `direct ${seq.direct.at(-1)!.toFixed(0)} MiB/s; randread nvme ${rand.nvme.at(-1)} / xvda ${rand.xvda.at(-1)} / ` +
          `direct ${rand.direct.at(-1)!.toFixed(0)} IOPS`);
      }
      const msPerGiB = (path: Path, who: Who) => (cpu[path][who] / hz) * 1000 / (cpu[path].bytes / GiB);
      const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(',');
      const cpuDetails = (path: Path) => ({
        hypervisorMsPerGiB: Number(msPerGiB(path, 'hv').toFixed(1)),
        deviceProcessMsPerGiB: Number(msPerGiB(path, 'dev').toFixed(1)),
        guestMsPerGiB: Number(msPerGiB(path, 'guest').toFixed(1)),
        GiB: Number((cpu[path].bytes / GiB).toFixed(2)), dom0Ticks: cpu[path].dom0, clkTck: hz,
      });
      const metrics: Metric[] = [
        { name: 'seq read 1 MiB nvme0n1 (dd)', value: median(seq.nvme), unit: 'MiB/s', baseline: median(seq.xvda),
          target: { cmp: '>=', value: TARGET_SPEEDUP, ratio: true }, samples: seq.nvme,
          details: { baselineSamples: fmt(seq.xvda), direct: Number(median(seq.direct).toFixed(0)), directSamples: fmt(seq.direct), MiB: diskMiB } },
        { name: 'rand read 4 KiB qd32 nvme0n1', value: median(rand.nvme), unit: 'IOPS', baseline: median(rand.xvda),
          target: { cmp: '>=', value: TARGET_SPEEDUP, ratio: true }, samples: rand.nvme,
          details: { baselineSamples: fmt(rand.xvda), direct: Number(median(rand.direct).toFixed(0)), directSamples: fmt(rand.direct), count: randCount,
            notificationsPerIo: Number(median(notifs.nvme).toFixed(2)), baselineNotificationsPerIo: Number(median(notifs.xvda).toFixed(2)) } },
        { name: 'seq read 1 MiB xvda vs direct', value: median(seq.xvda), unit: 'MiB/s', baseline: median(seq.direct), samples: seq.xvda,
          details: { baselineSamples: fmt(seq.direct) } },
        { name: 'rand read 4 KiB qd32 xvda vs direct', value: median(rand.xvda), unit: 'IOPS', baseline: median(rand.direct), samples: rand.xvda,
          details: { baselineSamples: fmt(rand.direct) } },
        { name: 'Domain-0 CPU per GiB, nvme0n1 vs xvda', value: msPerGiB('nvme', 'dom0'), unit: 'ms/GiB', baseline: msPerGiB('xvda', 'dom0'),
          target: { cmp: '<=', value: TARGET_DOM0_CPU, ratio: true },
          details: { nvme: JSON.stringify(cpuDetails('nvme')), xvda: JSON.stringify(cpuDetails('xvda')) } },
      ];
      return metrics;
    } finally {
      con?.close();
      xs.close();
      const left = await h.stop();
      if (left.pids.length || left.segments.length) ctx.note(`pci: left behind ${JSON.stringify(left)}`);
      if (profDir) profiles(ctx, profDir);
    }
  },
};
