// Block I/O through blkfront and blkback (docs/blk.md), against a Node
// process doing the same I/O directly on the same image file.
//
//   guest dd / blkbench ─► blkfront ring (persistent grants, indirect) ─► blkback (Dom0)
//        ─► one preadv/pwritev per request on the raw image ─► page cache
//
// A host with one guest of 64 MB and one 1 GiB raw disk (in the page
// cache: it is written once before measuring). Each round measures the guest,
// then the baseline right after it, so the load of the moment weighs on both:
//   seq write   dd if=/dev/zero of=/dev/xvda bs=1M conv=fsync   vs 1 MiB awaited writes + fdatasync
//   seq read    dd if=/dev/xvda of=/dev/null bs=1M              vs 1 MiB awaited reads
//   rand read   blkbench randread qd=32 (4 KiB)                 vs 32 concurrent 4 KiB reads
// and the notifications (sent + received by the front end) per MiB moved.
import { PtyClient } from '../launcher/pty_client.js';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { XsClient } from '../shared/xenstore/client.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost } from './xen_host.js';
import { formatProfile, summarizeProfile } from './profile.js';

const MiB = 1 << 20;


// The baseline: one Node process, the same sizes and patterns, awaited as dd awaits.
const DIRECT = `
const { open } = require('node:fs/promises');
const [img, mode, arg] = process.argv.slice(1);
const MiB = 1 << 20;
(async () => {
  const fh = await open(img, 'r+');
  const size = (await fh.stat()).size;
  const t0 = performance.now();
  let out;
  if (mode === 'write' || mode === 'read') {
    const buf = Buffer.alloc(MiB, 0);
    const n = Number(arg);
    for (let i = 0; i < n; i++) await (mode === 'write' ? fh.write(buf, 0, MiB, i * MiB) : fh.read(buf, 0, MiB, i * MiB));
    if (mode === 'write') await fh.datasync();
    out = n / ((performance.now() - t0) / 1000);
  } else {
    const n = Number(arg), blocks = Math.floor(size / 4096);
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      const b = Buffer.alloc(4096);
      while (next < n) { next++; await fh.read(b, 0, 4096, Math.floor(Math.random() * blocks) * 4096); }
    }));
    out = n / ((performance.now() - t0) / 1000);
  }
  await fh.close();
  console.log('result ' + out);
})();`;

async function direct(ctx: SuiteContext, img: string, mode: 'write' | 'read' | 'rand', arg: number): Promise<number> {
  const out = await ctx.scope.run(`direct ${mode}`, process.execPath, ['-e', DIRECT, img, mode, String(arg)]);
  return Number(/result ([\d.e+-]+)/.exec(out)![1]);
}

/** MiB/s from dd's report. */
function ddRate(out: string): number {
  const m = /(\d+) bytes .* copied, ([\d.e+-]+) s/.exec(out);
  if (!m) throw new Error(`no dd report in: ${out}`);
  return Number(m[1]) / MiB / Number(m[2]);
}

async function notifications(c: PtyClient): Promise<number> {
  const m = /notify-sent (\d+) notify-received (\d+)/.exec(await c.run('blkstat'));
  if (!m) throw new Error('no blkstat line');
  return Number(m[1]) + Number(m[2]);
}

/** Summaries of the guest's and Domain-0's CPU profiles (the processes that ran blkfront and blkback). */
function profiles(ctx: SuiteContext, dir: string): void {
  let files: string[];
  try { files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')); } catch { return; }
  for (const f of files) {
    const path = join(dir, f);
    const text = fs.readFileSync(path, 'utf8');
    const who = text.includes('blkback/requests') ? 'Domain-0 (blkback)'
      : text.includes('drivers/blkfront') && text.includes('commands/blk') ? 'guest (blkfront, dd)'
        : text.includes('hypervisor/main') ? 'hypervisor' : undefined;
    if (!who) continue;
    const s = summarizeProfile(path, ctx.root, 20);
    if (s.busyMs < 200) continue; // a spare guest, or a process that did not take part
    ctx.note(`${formatProfile(`blk: ${who} CPU profile`, s)}\n  (full profile: ${path})`);
  }
}

export const blk: Suite = {
  name: 'blk',
  description: 'PV block I/O (blkfront -> blkback -> raw image) against direct Node I/O on the same file',
  baseline: 'one Node process doing the same I/O on the same image file (fs/promises, awaited as dd awaits)',
  async run(ctx) {
    // Reads go over the whole disk, writes over its first quarter: a read of
    // 256 MiB took ~40 ms, short enough for one scheduling hiccup to move the
    // ratio by 0.1; writes end in an fdatasync to the host's real disk.
    const diskMiB = ctx.opts.quick ? 64 : 1024;
    const writeMiB = ctx.opts.quick ? 64 : 256;
    const rounds = ctx.opts.quick ? 1 : 5;
    const randCount = ctx.opts.quick ? 2000 : 20_000;
    const profDir = ctx.opts.profile ? join(ctx.opts.profileDir, 'blk') : undefined;
    if (profDir) fs.mkdirSync(profDir, { recursive: true });
    const flags = [...ctx.opts.nodeFlags, ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])];
    const h = await startBenchHost(ctx, {
      memoryMB: 1024, env: flags.length ? { XENEMU_DOMAIN_NODE_FLAGS: flags.join(' ') } : {},
    });
    const img = join(h.root, 'disk.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, diskMiB * MiB);
    const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
    let con: PtyClient | undefined;
    try {
      const cfg = h.file('blk.cfg', `name = "blk"\nmemory = 64\ndisk = [ 'file:${img},xvda,w' ]\n`);
      await ctx.scope.run('xl create', process.execPath, [h.cli, 'xl', 'create', cfg], { env: h.env });
      const id = Number((await ctx.scope.run('xl domid', process.execPath, [h.cli, 'xl', 'domid', 'blk'], { env: h.env })).trim());
      con = new PtyClient(await xs.readString(`/local/domain/${id}/console/tty`));
      await con.until(/root@[\w-]+:~# $/, 0, 60_000);
      // Warm-up: the image in the page cache, the persistent grants mapped.
      await con.run(`dd if=/dev/zero of=/dev/xvda bs=1M count=${diskMiB} conv=fsync`);
      await con.run(`dd if=/dev/xvda of=/dev/null bs=1M count=${diskMiB}`);

      const gw: number[] = []; const dw: number[] = [];
      const gr: number[] = []; const dr: number[] = [];
      const gi: number[] = []; const di: number[] = [];
      const perMiB: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const n0 = await notifications(con);
        gw.push(ddRate(await con.run(`dd if=/dev/zero of=/dev/xvda bs=1M count=${writeMiB} conv=fsync`)));
        dw.push(await direct(ctx, img, 'write', writeMiB));
        gr.push(ddRate(await con.run(`dd if=/dev/xvda of=/dev/null bs=1M count=${diskMiB}`)));
        dr.push(await direct(ctx, img, 'read', diskMiB));
        perMiB.push(((await notifications(con)) - n0) / (writeMiB + diskMiB));
        const rr = await con.run(`blkbench randread /dev/xvda count=${randCount} qd=32`);
        const m = /(\d+) IOPS/.exec(rr);
        if (!m) throw new Error(`no IOPS in: ${rr}`);
        gi.push(Number(m[1]));
        di.push(await direct(ctx, img, 'rand', randCount));
        ctx.log(`round ${i + 1}: write ${gw.at(-1)!.toFixed(0)}/${dw.at(-1)!.toFixed(0)} MiB/s, ` +
          `read ${gr.at(-1)!.toFixed(0)}/${dr.at(-1)!.toFixed(0)} MiB/s, randread ${gi.at(-1)}/${di.at(-1)!.toFixed(0)} IOPS`);
      }
      const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(',');
      const metrics: Metric[] = [
        { name: 'seq write 1 MiB (dd conv=fsync)', value: median(gw), unit: 'MiB/s', baseline: median(dw),
          target: { cmp: '>=', value: 0.7, ratio: true }, samples: gw, details: { baselineSamples: fmt(dw), MiB: writeMiB } },
        { name: 'seq read 1 MiB (dd)', value: median(gr), unit: 'MiB/s', baseline: median(dr),
          target: { cmp: '>=', value: 0.7, ratio: true }, samples: gr, details: { baselineSamples: fmt(dr), MiB: diskMiB } },
        { name: 'rand read 4 KiB qd32', value: median(gi), unit: 'IOPS', baseline: median(di),
          target: { cmp: '>=', value: 0.3, ratio: true }, samples: gi, details: { baselineSamples: fmt(di), count: randCount } },
        { name: 'notifications per MiB (seq)', value: median(perMiB), unit: 'notif/MiB', samples: perMiB },
      ];
      return metrics;
    } finally {
      con?.close();
      xs.close();
      const left = await h.stop();
      if (left.pids.length || left.segments.length) ctx.note(`blk: left behind ${JSON.stringify(left)}`);
      if (profDir) profiles(ctx, profDir);
    }
  },
};
