// Save, restore and migration of a 128 MiB PV guest (docs/saverestore.md),
// each next to a reference measured in the same run:
//
//   downtime             xl migrate --live between two hosts of this machine
//                        (ZeroMQ TCP on 127.0.0.1), from the suspend to the
//                        target's answer; an idle guest and one rewriting 64
//                        MiB of its memory without pause (membusy); target 50 ms
//   migration time       the whole xl migrate of the idle guest, against 128 MiB
//                        sent over a ZeroMQ TCP link between two sockets of this
//                        process with nothing else to do; target 1.5x
//   save / restore       xl save and xl restore of the guest holding 64 MiB of
//                        pattern, against writing (fsync) and reading a 128 MiB
//                        file on the same disk
import { execFile } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { PtyClient } from '../launcher/pty_client.js';
import { XsClient } from '../shared/xenstore/client.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost, type BenchHost } from './xen_host.js';

const MiB = 1 << 20;
const GUEST_MIB = 128;
const TARGET_DOWNTIME_MS = 50;
const TARGET_TOTAL = 1.5;

interface Run { code: number; stdout: string; stderr: string }

function xl(h: BenchHost, args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [h.cli, 'xl', ...args], { env: h.env, timeout: timeoutMs, maxBuffer: 16 * MiB }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function xlOk(h: BenchHost, args: string[]): Promise<string> {
  const r = await xl(h, args);
  if (r.code !== 0) throw new Error(`xl ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The guest's console on host `h`, driven like a terminal. */
async function consoleOf(h: BenchHost, name: string): Promise<{ run(cmd: string, timeoutMs?: number): Promise<string>; write(s: string): void; close(): Promise<void>; pty: PtyClient }> {
  const xs = await XsClient.connect(join(h.rundir, 'xenstored.sock'));
  try {
    const list = await xlOk(h, ['domid', name]);
    const pty = new PtyClient(await xs.readString(`/local/domain/${list.trim()}/console/tty`));
    const prompt = new RegExp(`root@${name}:~# $`);
    const run = async (cmd: string, timeoutMs = 60_000) => {
      const from = pty.text.length;
      pty.write(`${cmd}\r`);
      await pty.until(prompt, from + cmd.length, timeoutMs);
      return pty.text.slice(from);
    };
    pty.write('\r');
    await pty.until(prompt, 0, 30_000);
    return { run, write: (s) => pty.write(s), close: () => pty.close(), pty };
  } finally {
    xs.close();
  }
}

interface Summary { downtimeMs: number; totalMs: number; sentBytes: number; rounds: Array<{ pages: number; ms: number; scanMs?: number }>; downtimeParts: Record<string, number>; beforeParts: Record<string, number>; commitSteps?: Record<string, number> }

/** Each round: pages, its ms, of which finding and copying them (the rest waits to send). */
const roundsOf = (s: Summary) => s.rounds.map((r) => `${r.pages}p ${r.ms.toFixed(0)}/${(r.scanMs ?? 0).toFixed(0)}ms`).join(' ');
const parts = (s: Summary) => Object.entries({ ...s.beforeParts, ...s.downtimeParts }).map(([k, v]) => `${k.replace(/Ms$/, '')} ${v.toFixed(0)}`).join(', ') +
  `; commit steps ${Object.entries(s.commitSteps ?? {}).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`;

async function migrate(from: BenchHost, name: string, to: string): Promise<Summary> {
  return JSON.parse(await xlOk(from, ['migrate', '--live', '-l', name, to])) as Summary;
}

/** 128 MiB in 1 MiB messages over ZeroMQ TCP between two sockets of this process, the last one answered. */
async function rawTransfer(port: number): Promise<number> {
  const rx = new zmq.Router({ linger: 0 });
  const tx = new zmq.Dealer({ linger: 0, sendHighWaterMark: 64 });
  await rx.bind(`tcp://127.0.0.1:${port}`);
  tx.connect(`tcp://127.0.0.1:${port}`);
  const chunk = randomBytes(MiB);
  try {
    const t0 = performance.now();
    const recv = (async () => {
      let n = 0;
      for await (const [id, body] of rx) {
        n += body!.length;
        if (n >= GUEST_MIB * MiB) { await rx.send([id!, Buffer.from('ok')]); return; }
      }
    })();
    for (let i = 0; i < GUEST_MIB; i++) await tx.send(chunk);
    await recv;
    await tx.receive();
    return performance.now() - t0;
  } finally {
    tx.close();
    rx.close();
  }
}

function fileIo(dir: string): { writeMs: number; readMs: number } {
  const p = join(dir, 'io-reference');
  const buf = randomBytes(GUEST_MIB * MiB);
  const t0 = performance.now();
  const fd = openSync(p, 'w');
  writeSync(fd, buf);
  fsyncSync(fd);
  closeSync(fd);
  const t1 = performance.now();
  readFileSync(p);
  const t2 = performance.now();
  rmSync(p, { force: true });
  return { writeMs: t1 - t0, readMs: t2 - t1 };
}

async function run(ctx: SuiteContext): Promise<Metric[]> {
  const rounds = ctx.opts.quick ? 1 : 3;
  const base = 30000 + (process.pid % 10000) * 2;
  const a = await startBenchHost(ctx, { memoryMB: 1024, pcpus: 2, listen: `127.0.0.1:${base}` });
  const b = await startBenchHost(ctx, { memoryMB: 1024, pcpus: 2, listen: `127.0.0.1:${base + 1}` });
  const addr = (h: BenchHost) => `127.0.0.1:${h === a ? base : base + 1}`;
  try {
    await xlOk(a, ['create', a.file('mg.cfg', `name = "mg"\nmemory = ${GUEST_MIB}\n`)]);
    let at = a;
    const idle: Summary[] = [];
    const raw: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const to = at === a ? b : a;
      idle.push(await migrate(at, 'mg', addr(to)));
      at = to;
      raw.push(await rawTransfer(base + 2));
      ctx.log(`migrate: idle ${i + 1}/${rounds}: downtime ${idle[i]!.downtimeMs.toFixed(0)} ms (${parts(idle[i]!)}), total ${idle[i]!.totalMs.toFixed(0)} ms; raw 128 MiB ${raw[i]!.toFixed(0)} ms; rounds ${roundsOf(idle[i]!)}`);
    }
    // Busy: membusy rewrites 64 MiB all the time.
    const busy: Summary[] = [];
    for (let i = 0; i < rounds; i++) {
      const c = await consoleOf(at, 'mg');
      const from = c.pty.text.length;
      c.write('membusy 64 600\r');
      await c.pty.until(/membusy: rewriting 64 MiB/, from + 10, 30_000);
      await c.close();
      const to = at === a ? b : a;
      busy.push(await migrate(at, 'mg', addr(to)));
      at = to;
      ctx.log(`migrate: busy ${i + 1}/${rounds}: downtime ${busy[i]!.downtimeMs.toFixed(0)} ms (${parts(busy[i]!)}), rounds ${roundsOf(busy[i]!)}`);
    }
    // Save and restore of the guest holding 64 MiB of pattern.
    const saves: number[] = [];
    const restores: number[] = [];
    const io: Array<{ writeMs: number; readMs: number }> = [];
    const file = join(at.root, 'mg.save');
    for (let i = 0; i < rounds; i++) {
      let t0 = performance.now();
      await xlOk(at, ['save', 'mg', file]);
      saves.push(performance.now() - t0);
      t0 = performance.now();
      await xlOk(at, ['restore', file]);
      restores.push(performance.now() - t0);
      io.push(fileIo(at.root));
      ctx.log(`migrate: save ${saves[i]!.toFixed(0)} ms, restore ${restores[i]!.toFixed(0)} ms; file write ${io[i]!.writeMs.toFixed(0)} ms, read ${io[i]!.readMs.toFixed(0)} ms`);
    }
    rmSync(file, { force: true });
    await xl(at, ['destroy', 'mg']);
    const rawMed = median(raw);
    return [
      { name: 'downtime, idle 128 MiB guest', value: median(idle.map((s) => s.downtimeMs)), unit: 'ms', samples: idle.map((s) => s.downtimeMs),
        target: { cmp: '<=', value: TARGET_DOWNTIME_MS } },
      { name: 'downtime, guest rewriting 64 MiB', value: median(busy.map((s) => s.downtimeMs)), unit: 'ms', samples: busy.map((s) => s.downtimeMs),
        target: { cmp: '<=', value: TARGET_DOWNTIME_MS },
        details: { rounds: busy.map((s) => s.rounds.map((r) => r.pages).join('/')).join(' '), sentMiB: median(busy.map((s) => s.sentBytes / MiB)) } },
      { name: 'migration time, idle 128 MiB guest', value: median(idle.map((s) => s.totalMs)), unit: 'ms', baseline: rawMed,
        samples: idle.map((s) => s.totalMs), target: { cmp: '<=', value: TARGET_TOTAL, ratio: true },
        details: { sentMiB: median(idle.map((s) => s.sentBytes / MiB)), baselineSamples: raw.map((x) => x.toFixed(0)).join(',') } },
      { name: 'xl save, 128 MiB guest (64 MiB written)', value: median(saves), unit: 'ms', baseline: median(io.map((x) => x.writeMs)), samples: saves },
      { name: 'xl restore, 128 MiB guest (64 MiB written)', value: median(restores), unit: 'ms', baseline: median(io.map((x) => x.readMs)), samples: restores },
    ];
  } finally {
    await a.stop();
    await b.stop();
  }
}

export const migrateSuite: Suite = {
  name: 'migrate',
  description: 'PV guests: live migration downtime and time between two hosts over ZeroMQ TCP, xl save and xl restore',
  baseline: 'migration time: 128 MiB over a ZeroMQ TCP link between two sockets of one process; save and restore: writing (fsync) and reading a 128 MiB file on the same disk',
  run,
};
