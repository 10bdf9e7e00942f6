// BLKIF_OP_FLUSH_DISKCACHE reaches the disk before its reply, observed from
// outside: Domain-0 runs under `strace -f -y -ttt -T` with every fdatasync
// held 300 ms on its way back (inject=fdatasync:delay_exit), while the
// hostile front end (test/fixtures/hostile_blkfront.ts) drives the ring by
// hand and stamps when each response shows up. For each flush the trace must
// show: the earlier writes' pwrite/pwritev on the image returned before the
// fdatasync on the image began, and that fdatasync returned (plus the
// injected hold) before the flush's response was seen. A reply sent before
// fdatasync came back would arrive ~300 ms early.
//
// Cases: a write and a flush pushed together on a vbd without persistent
// grants (the write's grant is mapped through the hypervisor first, so a
// flush that did not wait for it would overtake it); a flush carrying a data
// segment (Linux blkfront sends REQ_FUA/REQ_PREFLUSH writes so): the data is
// written, then synced, then answered.
import t from 'tap';
import * as fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DIST, readHostRecord, startHost, waitFor } from '../helpers/host.js';
import { probe } from '../helpers/probe.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_WRITE, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } from '../../shared/abi/io/blkif.js';

const HOSTILE = join(DIST, 'test', 'fixtures', 'hostile_blkfront.js');
const HOLD_US = 300_000;

interface Call { pid: number; name: string; path: string; enterUs: number; exitUs: number }
interface Rsp { id: number; operation: number; status: number; atUs: number }

/** Completed calls of an `strace -f -y -ttt -T -o` file (whole lines and unfinished/resumed pairs). */
function parseStrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, { name: string; path: string; enterUs: number }>();
  const us = (s: string) => Math.round(Number(s) * 1e6);
  for (const line of text.split('\n')) {
    let m = /^(\d+)\s+([\d.]+) (\w+)\((\d+)<([^>]*)>.*<unfinished \.\.\.>$/.exec(line);
    if (m) { open.set(`${m[1]}`, { name: m[3]!, path: m[5]!, enterUs: us(m[2]!) }); continue; }
    m = /^(\d+)\s+([\d.]+) <\.\.\. (\w+) resumed>.*= (-?\d+).*<([\d.]+)>$/.exec(line);
    if (m) {
      const o = open.get(m[1]!);
      open.delete(m[1]!);
      if (o) calls.push({ pid: Number(m[1]), ...o, exitUs: o.enterUs + us(m[5]!) });
      continue;
    }
    m = /^(\d+)\s+([\d.]+) (\w+)\((\d+)<([^>]*)>.*= (-?\d+).*<([\d.]+)>$/.exec(line);
    if (m) calls.push({ pid: Number(m[1]), name: m[3]!, path: m[5]!, enterUs: us(m[2]!), exitUs: us(m[2]!) + us(m[7]!) });
  }
  return calls;
}

const haveStrace = spawnSync('strace', ['-V']).status === 0;

t.test('a flush is answered after fdatasync on the image returned', { skip: haveStrace ? false : 'strace not installed (Debian package strace; .ci/setup installs it)' }, async (t) => {
  const h = await startHost(t, { memory: 256, pcpus: 2 });
  const img = join(h.root, 'flush.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 4 * 1024 * 1024);
  const cfg = writeCfg(h, 'fl.cfg', `name = "fl"\nmemory = 32\nkernel = "${HOSTILE}"\ndisk = [ '${img},raw,xvda,rw' ]\n`);
  await xlOk(h, 'create', cfg);
  const domid = (await list(h)).find((r) => r.name === 'fl')!.id;
  const p = probe(h.rundir, domid, 30_000);
  t.teardown(() => p.close());
  const info = (await waitFor(async () => p.call('info').catch(() => null), 20_000, 'fixture info'))!;
  await p.call('connect', { devid: 51712, persistent: false });
  const ref = (i: number): number => info.data[i].ref;

  // Trace Domain-0 (blkback runs in it), every thread.
  const dom0 = readHostRecord(h.rundir)!.pids.domains[0]!;
  const out = join(h.root, 'strace.out');
  const st = spawn('strace', ['-f', '-y', '-ttt', '-T', '-o', out, '-e', 'trace=fdatasync,fsync,pwrite64,pwritev,pwritev2',
    '-e', `inject=fdatasync:delay_exit=${HOLD_US}`, '-p', String(dom0)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  st.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const stExit = new Promise<void>((res) => st.once('exit', () => res()));
  t.teardown(async () => { if (st.exitCode === null) { st.kill('SIGINT'); await stExit; } });
  // strace -p on a threaded process attaches every thread before it says so ("attached with N threads").
  await waitFor(() => /Process \d+ attached/.test(stderr), 15_000, 'strace attached');

  await p.call('fill', { i: 0, seed: 3 });
  await p.call('fill', { i: 1, seed: 4 });
  const a = await p.call<{ atUs: number; responses: Rsp[] }>('submit', { devid: 51712, reqs: [
    { operation: BLKIF_OP_WRITE, id: 1, sector: 16, segs: [{ gref: ref(0), first_sect: 0, last_sect: 7 }] },
    { operation: BLKIF_OP_FLUSH_DISKCACHE, id: 2, sector: 0, nr_segments: 0 },
  ] });
  const b = await p.call<{ atUs: number; responses: Rsp[] }>('submit', { devid: 51712, reqs: [
    { operation: BLKIF_OP_FLUSH_DISKCACHE, id: 3, sector: 64, segs: [{ gref: ref(1), first_sect: 0, last_sect: 7 }] },
  ] });
  const c = await p.call<{ atUs: number; responses: Rsp[] }>('submit', { devid: 51712, reqs: [
    { operation: BLKIF_OP_FLUSH_DISKCACHE, id: 4, sector: 0, nr_segments: 12,
      segs: Array.from({ length: 11 }, (_, i) => ({ gref: ref(i), first_sect: 0, last_sect: 7 })) },
  ] });
  st.kill('SIGINT');
  await stExit;
  const calls = parseStrace(fs.readFileSync(out, 'utf8')).filter((x) => x.path === img);
  t.comment(calls.map((x) => `${x.name} ${x.enterUs}..${x.exitUs}`).join('\n'));

  const status = (r: { responses: Rsp[] }) => r.responses.map((x) => [x.id, x.status]);
  t.same(status(a), [[1, BLKIF_RSP_OKAY], [2, BLKIF_RSP_OKAY]], 'write and flush OKAY');
  t.same(status(b), [[3, BLKIF_RSP_OKAY]], 'a flush with a data segment is OKAY');
  t.same(status(c), [[4, BLKIF_RSP_ERROR]], 'a flush with 12 segments is refused');

  const check = (what: string, from: number, rsp: Rsp, writesBefore: number) => {
    const syncs = calls.filter((x) => (x.name === 'fdatasync' || x.name === 'fsync') && x.enterUs >= from - 1000 && x.enterUs <= rsp.atUs);
    t.equal(syncs.length, 1, `${what}: one fdatasync on the image between the push and the response`);
    const s = syncs[0];
    if (!s) return;
    const writes = calls.filter((x) => x.name.startsWith('pwrite') && x.enterUs >= from - 1000 && x.enterUs <= rsp.atUs);
    t.equal(writes.length, writesBefore, `${what}: ${writesBefore} data write(s) on the image`);
    for (const w of writes) t.ok(w.exitUs <= s.enterUs, `${what}: the data write returned before fdatasync began`);
    t.ok(rsp.atUs >= s.exitUs + HOLD_US - 5000,
      `${what}: response seen ${((rsp.atUs - s.exitUs) / 1000).toFixed(1)} ms after fdatasync's exit (held ${HOLD_US / 1000} ms)`);
  };
  check('write then flush', a.atUs, a.responses[1]!, 1);
  check('flush with data', b.atUs, b.responses[0]!, 1);
  const bytes = fs.readFileSync(img);
  t.ok(bytes.subarray(16 * 512, 24 * 512).equals(Buffer.from(await p.call<string>('page', { i: 0 }), 'hex')), 'the write is in the image');
  t.ok(bytes.subarray(64 * 512, 72 * 512).equals(Buffer.from(await p.call<string>('page', { i: 1 }), 'hex')), 'the flush\'s data is in the image');
});
