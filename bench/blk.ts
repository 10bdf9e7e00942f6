// Block I/O through blkfront/blkback against a Node process doing the same
// I/O on the same image file directly. Standalone: `node dist/bench/blk.js`
// starts a private host (xenemu up), a guest with one 256 MiB raw disk, and
// reports:
//   seq-write  1 MiB dd writes (guest) vs awaited 1 MiB positioned writes (direct)   target >= 70%
//   seq-read   1 MiB dd reads  (guest) vs awaited 1 MiB positioned reads  (direct)   target >= 70%
//   rand-read  4 KiB random reads at queue depth 32, IOPS                             target >= 30%
//   notifications per MiB moved (front end's sent + received), showing suppression
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { open } from 'node:fs/promises';
import * as tty from 'node:tty';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { shmPrefix, shmSweep } from '../shared/shm.js';
import { reapHost } from '../shared/host.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'launcher', 'cli.js');
const MiB = 1 << 20;
const DISK_MIB = 256;

function console_(path: string) {
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  const s = new tty.ReadStream(fd);
  let text = '';
  const waiters: Array<() => void> = [];
  s.on('data', (d: Buffer) => { text += d.toString(); waiters.splice(0).forEach((w) => w()); });
  s.on('error', () => undefined);
  const until = (re: RegExp, from: number) => new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re}: ${text.slice(from)}`)), 120_000);
    const check = () => { const m = re.exec(text.slice(from)); if (m) { clearTimeout(timer); resolve(m); } else waiters.push(check); };
    check();
  });
  return {
    async run(line: string): Promise<string> {
      const from = text.length;
      fs.writeSync(fd, `${line}\r`);
      return (await until(/\r?\n([\s\S]*?)root@[\w-]+:~# $/, from))[1]!.replace(/\r/g, '');
    },
    ready: () => { fs.writeSync(fd, '\r'); return until(/root@[\w-]+:~# $/, 0); },
    close: () => s.destroy(),
  };
}

async function direct(img: string) {
  const fh = await open(img, 'r+');
  const buf = Buffer.alloc(MiB, 0);
  let t0 = performance.now();
  for (let i = 0; i < DISK_MIB; i++) await fh.write(buf, 0, MiB, i * MiB);
  await fh.datasync();
  const w = DISK_MIB / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < DISK_MIB; i++) await fh.read(buf, 0, MiB, i * MiB);
  const r = DISK_MIB / ((performance.now() - t0) / 1000);
  const n = 20000;
  const blocks = (DISK_MIB * MiB) / 4096;
  let next = 0;
  t0 = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    const b = Buffer.alloc(4096);
    while (next < n) { next++; await fh.read(b, 0, 4096, Math.floor(Math.random() * blocks) * 4096); }
  }));
  const iops = n / ((performance.now() - t0) / 1000);
  await fh.close();
  return { w, r, iops };
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(join(tmpdir(), 'xenemu-bench-blk-'));
  const name = `b${randomBytes(4).toString('hex')}`;
  const env = { ...process.env, XENEMU_RUN_DIR: root };
  const x = (...a: string[]) => execFileSync(process.execPath, [CLI, ...a], { env, encoding: 'utf8' });
  const img = join(root, 'disk.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, DISK_MIB * MiB);
  try {
    x('up', '--name', name, '--memory', '1024', '--pcpus', '2');
    fs.writeFileSync(join(root, 'g.cfg'), `name = "bench"\nmemory = 64\ndisk = [ 'file:${img},xvda,w' ]\n`);
    x('xl', '--host', name, 'create', join(root, 'g.cfg'));
    const log = fs.readFileSync(join(root, name, 'logs', 'dom0.log'), 'utf8');
    const pty = /console (\/dev\/pts\/\d+)/.exec(log)![1]!;
    const c = console_(pty);
    await c.ready();
    const stat = async () => { const m = /notify-sent (\d+) notify-received (\d+)/.exec(await c.run('blkstat'))!; return Number(m[1]) + Number(m[2]); };
    const rate = (out: string) => { const m = /(\d+) bytes .* copied, ([\d.e+-]+) s/.exec(out)!; return Number(m[1]) / MiB / Number(m[2]); };
    await c.run(`dd if=/dev/zero of=/dev/xvda bs=1M count=${DISK_MIB}`); // warm: persistent grants mapped
    const n0 = await stat();
    const gw = rate(await c.run(`dd if=/dev/zero of=/dev/xvda bs=1M count=${DISK_MIB} conv=fsync`));
    const gr = rate(await c.run(`dd if=/dev/xvda of=/dev/null bs=1M count=${DISK_MIB}`));
    const n1 = await stat();
    const rr = await c.run('blkbench randread /dev/xvda count=20000 qd=32');
    const giops = Number(/(\d+) IOPS/.exec(rr)![1]);
    c.close();
    const d = await direct(img);
    const rows: Array<[string, number, number, string, number]> = [
      ['seq-write 1 MiB (MiB/s)', gw, d.w, '>= 70%', 0.7],
      ['seq-read 1 MiB (MiB/s)', gr, d.r, '>= 70%', 0.7],
      ['rand-read 4 KiB qd32 (IOPS)', giops, d.iops, '>= 30%', 0.3],
    ];
    process.stdout.write(`${'metric'.padEnd(30)} ${'guest'.padStart(10)} ${'direct'.padStart(10)} ${'ratio'.padStart(7)}  target\n`);
    for (const [m, g, b, tgt, want] of rows) {
      process.stdout.write(`${m.padEnd(30)} ${g.toFixed(0).padStart(10)} ${b.toFixed(0).padStart(10)} ${(g / b * 100).toFixed(0).padStart(6)}%  ${tgt} ${g / b >= want ? 'ok' : 'MISSED'}\n`);
    }
    process.stdout.write(`notifications per MiB moved (seq write+read, sent+received): ${((n1 - n0) / (2 * DISK_MIB)).toFixed(2)}\n`);
    process.stdout.write(`${rr}`);
  } finally {
    try { x('down', name); } catch { /* swept below */ }
    reapHost(join(root, name), name);
    shmSweep(shmPrefix(name));
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e: Error) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
