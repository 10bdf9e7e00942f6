// xl migrate when something fails (docs/saverestore.md "Exactly one"): the
// target killed in the middle of the rounds; a target that sits on go
// (fault injection), loses its answer to go, or whose host dies before it
// acted on go; the source killed once the target runs the guest; and a
// target that can no longer take the guest at the commit (its disk gone). Whatever happens, the guest runs
// on exactly one host afterwards, and on the source when the target did not
// take it; the test checks both hosts' domain lists every time.
import t from 'tap';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHost, waitFor, type TestHost } from '../helpers/host.js';
import { list, xl } from '../host/xl.js';
import { attachGuest, netGuest, type Guest } from '../net/guests.js';

const PORT = 21000 + (process.pid % 20000);
let nextPort = PORT;

function dom0Log(h: TestHost): string {
  try { return readFileSync(join(h.rundir, 'logs', 'dom0.log'), 'utf8'); } catch { return ''; }
}

/** The two hosts' rows for `name` (and its --migratedaway copy): where it is. */
async function whereIs(src: TestHost, dst: TestHost, name: string) {
  const s = (await list(src)).filter((r) => r.name.startsWith(name));
  const d = (await list(dst)).filter((r) => r.name.startsWith(name));
  return { s, d };
}

/** Two hosts, the target listening, and a guest on the source rewriting `busyMiB` of its memory. */
async function pair(t: Tap, name: string, memory: number, busyMiB: number, fault?: string) {
  const addr = `127.0.0.1:${nextPort++}`;
  const src = await startHost(t, { memory: 512, pcpus: 2 });
  const dst = await startHost(t, { memory: 512, pcpus: 2, listen: addr, env: fault ? { XENEMU_FAULT_MIGRATE: fault } : {} });
  const g = await netGuest(t, src, name, '', memory);
  await g.run(`memfill ${busyMiB} 4`);
  const from = g.pty.text.length;
  g.pty.write(`membusy ${busyMiB} 300\r`);
  await g.pty.until(/membusy: rewriting/, from + 10, 30_000);
  return { addr, src, dst, g };
}

interface Tap { teardown(fn: () => unknown): void }
type Asserts = Pick<typeof t, 'match'>;

/** Stops membusy (Ctrl-C) and checks that the memory holds one whole pattern. */
async function memoryIntact(t: Asserts, g: Guest, where: string): Promise<void> {
  g.pty.write('\x03');
  await new Promise((r) => setTimeout(r, 300));
  t.match(await g.run('memcheck', 60_000), /pages, seed \d+: ok/, `the guest runs on ${where} with its memory whole`);
}

t.test('the target killed in the middle of the rounds: the guest runs on at the source', async (t) => {
  const { addr, src, dst, g } = await pair(t, 'mk', 96, 32);
  const mig = xl(src, ['migrate', '--live', 'mk', addr]);
  await waitFor(() => /migration: 'mk' begins/.test(dom0Log(dst)), 30_000, 'the target staging pages');
  process.kill(dst.hypervisorPid, 'SIGKILL');
  const t0 = Date.now();
  const r = await mig;
  t.not(r.code, 0, 'xl migrate fails');
  t.match(r.stderr, /migration of domain \d+ to 127\.0\.0\.1:\d+ failed/, r.stderr.trim());
  t.ok(Date.now() - t0 < 15_000, `and says so in ${Date.now() - t0} ms, not after a reply timeout`);
  const rows = (await list(src)).filter((x) => x.name.startsWith('mk'));
  t.same(rows.map((x) => [x.name, x.id]), [['mk', g.id]], 'the guest is on the source, under its name and domid');
  await memoryIntact(t, g, 'the source');
});

t.test('the source killed in the middle of the rounds: the target destroys the domain it was filling', async (t) => {
  const { addr, src, dst } = await pair(t, 'mq', 96, 32);
  const mig = xl(src, ['migrate', '--live', 'mq', addr]);
  // Killed as soon as the target begins: a pre-copy takes a few hundred
  // milliseconds, which an `xl list` here first could outlast on a loaded machine.
  await waitFor(() => /migration: 'mq' begins: d\d+ takes its pages/.test(dom0Log(dst)), 30_000, 'the target taking pages');
  for (const pid of src.pids()) process.kill(pid, 'SIGKILL');
  t.match(dom0Log(dst), /xend: d\d+ 'mq--incoming' prepared/, 'the target made the incoming domain');
  t.notMatch(dom0Log(dst), /migration: 'mq' runs here/, 'and the source died before it said go');
  await mig;
  await waitFor(async () => (await list(dst)).length === 1, 40_000, 'the incoming domain destroyed');
  // Killed in the rounds the session goes quiet; a pre-copy that converged
  // before the kill leaves a paused copy, which no go comes for.
  t.match(dom0Log(dst), /migration: 'mq': the source went quiet, dropped|migration: 'mq' \(d\d+\): no go from the source within 15 s; the paused copy is destroyed/,
    'the target dropped the session, or the paused copy nobody said go for');
  t.same((await list(dst)).map((x) => x.name), ['Domain-0'], 'nothing of the guest is left on the target');
  const again = await xl(dst, ['create', '/dev/null', 'name=mq', 'memory=32']);
  t.notMatch(again.stderr, /already exists/, 'and its name is free again');
});

t.test('a target that sits on go: the source asks, aborts it there and resumes the guest', async (t) => {
  const { addr, src, dst, g } = await pair(t, 'mh', 64, 8, 'hold-go:60000');
  const r = await xl(src, ['migrate', '--live', 'mh', addr]);
  t.not(r.code, 0, 'xl migrate fails');
  t.match(r.stderr, /the target did not start it; the domain runs on here/, r.stderr.trim());
  t.match(dom0Log(dst), /migration: 'mh' \(d\d+\): the source aborted; the paused copy is destroyed/, 'the target destroyed its paused copy');
  const { s, d } = await whereIs(src, dst, 'mh');
  t.same(d, [], 'nothing of it on the target');
  t.same(s.map((x) => [x.name, x.id]), [['mh', g.id]], 'it runs on at the source under its name and domid');
  await memoryIntact(t, g, 'the source');
});

t.test('the answer to go lost: the source asks, finds it running there, and destroys its copy', async (t) => {
  const { addr, src, dst } = await pair(t, 'ml', 64, 8, 'lose-go-answer');
  const r = await xl(src, ['migrate', '--live', 'ml', addr]);
  t.equal(r.code, 0, `xl migrate succeeds ${r.stderr.trim()}`);
  const { s, d } = await whereIs(src, dst, 'ml');
  t.same(s, [], 'nothing of it on the source, not even a --migratedaway copy');
  t.same(d.map((x) => x.name), ['ml'], 'it runs on the target');
  await memoryIntact(t, await attachGuest(t, dst, 'ml', d[0]!.id), 'the target');
});

t.test('the target host killed after the commit, before it acted on go: the guest comes back on the source', async (t) => {
  const { addr, src, dst, g } = await pair(t, 'mr', 64, 8, 'hold-go:60000');
  const mig = xl(src, ['migrate', '--live', 'mr', addr]);
  await waitFor(() => /migration: fault injection: holding go/.test(dom0Log(dst)), 60_000, 'the target holding a paused copy');
  // The target host crashes: every process of it.
  for (const pid of dst.pids()) process.kill(pid, 'SIGKILL');
  const r = await mig;
  t.not(r.code, 0, 'xl migrate fails');
  t.match(r.stderr, /nothing listens at 127\.0\.0\.1:\d+ any more \(its host is down\); the domain runs on here/, r.stderr.trim());
  const rows = (await list(src)).filter((x) => x.name.startsWith('mr'));
  t.same(rows.map((x) => [x.name, x.id]), [['mr', g.id]], 'the guest is back on the source under its name and domid');
  await memoryIntact(t, g, 'the source');
});

t.test('the source killed once the target runs the guest: it runs on at the target', async (t) => {
  const { addr, src, dst } = await pair(t, 'ms', 64, 8);
  const mig = xl(src, ['migrate', '--live', 'ms', addr]);
  await waitFor(() => /migration: 'ms' runs here/.test(dom0Log(dst)), 60_000, 'the target running the guest');
  process.kill(src.hypervisorPid, 'SIGKILL');
  await mig;
  const row = (await list(dst)).find((x) => x.name === 'ms');
  t.ok(row, 'the guest is on the target');
  await memoryIntact(t, await attachGuest(t, dst, 'ms', row!.id), 'the target');
});

t.test('a target that can no longer take the guest at the commit (its disk image gone): it runs on at the source, nothing left there', async (t) => {
  const addr = `127.0.0.1:${nextPort++}`;
  const src = await startHost(t, { memory: 512, pcpus: 2 });
  const dst = await startHost(t, { memory: 512, pcpus: 2, listen: addr });
  const disk = join(src.root, 'mf.img');
  writeFileSync(disk, Buffer.alloc(8 << 20));
  const g = await netGuest(t, src, 'mf', `disk = ['file:${disk},xvda,w']`, 96);
  await g.run('memfill 32 4');
  const from = g.pty.text.length;
  g.pty.write('membusy 32 300\r');
  await g.pty.until(/membusy: rewriting/, from + 10, 30_000);
  const mig = xl(src, ['migrate', '--live', 'mf', addr]);
  await waitFor(() => /migration: 'mf' begins/.test(dom0Log(dst)), 30_000, 'the target taking pages');
  // The source's back end holds the image open; the target, which opens it at the commit, finds it gone.
  renameSync(disk, `${disk}.moved`);
  const r = await mig;
  t.not(r.code, 0, 'xl migrate fails');
  t.match(r.stderr, /migration of domain \d+ to 127\.0\.0\.1:\d+ failed: .*mf\.img/, r.stderr.trim());
  t.same((await list(dst)).filter((x) => x.name !== 'Domain-0').map((x) => x.name), [], 'nothing of the guest on the target');
  const rows = (await list(src)).filter((x) => x.name.startsWith('mf'));
  t.same(rows.map((x) => [x.name, x.id]), [['mf', g.id]], 'the guest is on the source under its name and domid');
  await memoryIntact(t, g, 'the source');
});
