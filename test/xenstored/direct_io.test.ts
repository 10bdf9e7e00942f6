// The busy poll's direct socket I/O (processes/dom0/xenstored/index.ts,
// serveDirect; shared/sockio.ts): a client answered a moment ago has its next
// request read, handled and answered on the descriptor, outside libuv. These
// tests drive it with C clients that are fast enough to land in the window:
// our xs_bench linked with Debian's libxenstore (header and payload in two
// writes, so frames arrive split), close_peer (closes microseconds after
// its reply, so the end of file is read directly too) and split_peer (pieces
// of a request up to 2 ms apart, past the spin's wait for the rest). The
// spin's frame completion itself is tested in spin_recv.test.ts. How often
// the spin catches requests, and how often a read ends inside a frame, are
// speed matters: bench/xenstored.ts reports them.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startXenstored, DIST } from '../helpers/xenstored.js';
import { waitFor } from '../helpers/host.js';
import { ccBuild, ccMissing } from '../helpers/cc.js';

const ROOT = join(DIST, '..');
const XS_BENCH = join(ROOT, 'bench', 'c', 'xs_bench.c');
const CLOSE_PEER = join(ROOT, 'test', 'xenstored', 'c', 'close_peer.c');
const SPLIT_PEER = join(ROOT, 'test', 'xenstored', 'c', 'split_peer.c');

/** Why the C peers cannot be built here (a tap skip), or false. */
const noLibxenstore = ccMissing(['xenstore.h']) ?? false;
const noCc = ccMissing() ?? false;

/** Builds `src` into a private directory; undefined when it fails (asserted). */
function build(t: Tap, src: string, libs: string[]): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-cc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'a.out');
  return ccBuild(t, src, exe, ['-O2', '-Wall'], libs) ? exe : undefined;
}
interface Tap {
  teardown(fn: () => void): void; equal(a: unknown, b: unknown, m: string): void;
}

function stats(text: string): Record<string, number> {
  return Object.fromEntries(text.split('\n').map((l) => l.split(' ')).map(([k, v]) => [k!, Number(v)]));
}

for (const direct of [true, false]) {
  t.test(`libxenstore clients: write+read, transactions, watches are exact ${direct ? 'with' : 'without (XENSTORED_DIRECT_IO=0)'} direct I/O`, { skip: noLibxenstore }, async (t) => {
    const exe = build(t, XS_BENCH, ['-lxenstore']);
    if (!exe) return;
    const xs = await startXenstored(t, [], direct ? {} : { XENSTORED_DIRECT_IO: '0' });
    // xs_bench exits 1 on any failed operation: a value read back that is not
    // the one written, a transaction that fails for anything but EAGAIN, a
    // watch event for another path.
    for (const mode of ['rw', 'tx', 'watch']) {
      const r = spawnSync(exe, [mode, '100', '300', '1'], { env: xs.env, encoding: 'utf8', timeout: 30_000 });
      t.equal(r.status, 0, `xs_bench ${mode}: ${r.stdout.trim() || r.stderr.trim()}`);
    }
    const c = await xs.connect();
    const s = stats(await c.control('stats'));
    if (direct) {
      // The path under test was taken (how often is the benchmark's business).
      t.ok(s['direct-reads']! > 0, `requests read on the descriptor: ${s['direct-reads']}`);
      t.ok(s['direct-writes']! > 0, `replies written on the descriptor: ${s['direct-writes']}`);
      t.comment(`reads that ended inside a frame: ${s['direct-partial']} of ${s['direct-reads']}`);
    } else {
      t.equal(s['direct-reads'], 0, 'no direct reads when turned off');
      t.equal(s['direct-writes'], 0, 'no direct writes when turned off');
    }
    t.equal(await c.control('check'), 'OK', 'tree consistent');
    await waitFor(async () => stats(await c.control('stats')).sockets === 1, 5000, 'only our own connection is left');
  });
}

/** Builds one of the raw test peers (test/xenstored/c), runs it against a fresh daemon and checks it ended well. */
async function runPeer(t: Tap & { match(a: string, re: RegExp): void }, src: string, n: number, done: string) {
  const exe = build(t, src, []);
  if (!exe) return undefined;
  const xs = await startXenstored(t);
  const r = spawnSync(exe, [xs.socketPath, String(n)], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `${src.split('/').pop()}: ${r.stdout.trim() || r.stderr.trim()}`);
  t.match(r.stdout, new RegExp(`${done} ${n}`));
  return xs;
}

t.test('clients that close at once after their reply: every connection goes away', { skip: noCc }, async (t) => {
  const xs = await runPeer(t, CLOSE_PEER, 500, 'closed');
  if (!xs) return;
  const c = await xs.connect();
  await waitFor(async () => stats(await c.control('stats')).sockets === 1, 5000, 'all 500 connections closed');
  const s = stats(await c.control('stats'));
  t.comment(`ends of file read on the descriptor: ${s['direct-ends']} of 500`);
  t.equal(s.sockets, 1, 'no connection left behind');
  // The daemon still serves: a new client, a write and a read.
  await c.write('/after', 'yes');
  t.equal((await c.read('/after')).toString(), 'yes');
});

t.test('requests written in pieces far apart: the spin leaves the rest to libuv and every reply is exact', { skip: noCc }, async (t) => {
  const xs = await runPeer(t, SPLIT_PEER, 400, 'split');
  if (!xs) return;
  const c = await xs.connect();
  const s = stats(await c.control('stats'));
  // Gaps of 200 us and 2 ms outlast the spin's 50 us wait for the rest of a
  // frame whenever the header lands in the spin.
  t.ok(s['direct-partial']! > 0, `reads that ended inside a frame, finished by libuv: ${s['direct-partial']} of ${s['direct-reads']}`);
  t.equal(await c.control('check'), 'OK', 'tree consistent');
  t.equal((await c.read('/split/k0')).toString(), 'value-392-0', 'the last value written to k0, read by another client');
});
