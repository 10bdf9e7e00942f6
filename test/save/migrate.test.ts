// xl migrate between two hosts over ZeroMQ TCP (docs/saverestore.md): the
// target host listens (xenemu up --listen), a PV guest moves to it with
// pre-copy rounds while it writes memory, keeps its memory (memcheck), its
// disk's file and its network (a peer on the target host pings it); it is
// gone from the source. A target that is not there leaves the guest
// running on the source.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pty from 'node-pty';
import { startHost, XENEMU_CLI } from '../helpers/host.js';
import { list, xl } from '../host/xl.js';
import { attachGuest, netGuest } from '../net/guests.js';

// A port per run, from the pid: parallel test files must not collide.
const PORT = 20000 + (process.pid % 20000);

t.test('xl migrate --live of a PV guest to another host', async (t) => {
  const src = await startHost(t, { memory: 512, pcpus: 2 });
  const dst = await startHost(t, { memory: 512, pcpus: 2, listen: `127.0.0.1:${PORT}` });
  const peer = await netGuest(t, dst, 'peer', "vif = ['bridge=xenbr0,ip=10.0.0.2']");
  const disk = join(src.root, 'mg.img');
  writeFileSync(disk, Buffer.alloc(16 << 20));
  const g = await netGuest(t, src, 'mg', `disk = ['file:${disk},xvda,w']\nvif = ['bridge=xenbr0,ip=10.0.0.7']`, 64);
  await g.run('mkfs /dev/xvda');
  await g.run('write notes travels');
  t.match(await g.run('memfill 16 5'), /seed 5/, 'memfill 16 MiB');
  // The guest rewrites those 16 MiB all the time while it moves.
  const from = g.pty.text.length;
  g.pty.write('membusy 16 120\r');
  await g.pty.until(/membusy: rewriting 16 MiB/, from + 16, 30_000);
  await new Promise((r) => setTimeout(r, 200));

  const r = await xl(src, ['migrate', '--live', '-l', 'mg', `127.0.0.1:${PORT}`]);
  t.equal(r.code, 0, `xl migrate --live ${r.stderr.trim()}`);
  const s = JSON.parse(r.stdout) as { rounds: Array<{ pages: number }>; downtimeMs: number; sentBytes: number; targetDomid: number; logDirty: string;
                                      stopPages: string; commitSteps: Record<string, number> };
  // This kernel has userfaultfd's asynchronous write-protection (Linux 6.7+,
  // CONFIG_PTE_MARKER_UFFD_WP): the rounds after the first took the pages
  // the guest's process wrote, found by write-protection, not by comparing.
  t.equal(s.logDirty, 'write-protect', 'log-dirty by write-protection of the guest\'s mapping');
  t.equal(s.stopPages, 'log-dirty', "the stop took the pages the log-dirty of every writer reported (the guest's, the hypervisor's grant log, the rings)");
  // The target built what needs no page while the pages came (ports, grant
  // table, vCPU context, xenstore nodes, back ends): its commit only finished it.
  t.same(Object.keys(s.commitSteps).sort(), ['console', 'disks', 'introduce', 'rename', 'start_info'], `the target's commit steps (${JSON.stringify(s.commitSteps)})`);
  t.ok(s.rounds.length >= 3, `pre-copy rounds then the final one (${s.rounds.map((x) => x.pages).join(', ')} pages)`);
  t.ok(s.rounds[0]!.pages >= 4096, 'the first round carried the 16 MiB written');
  // membusy rewrites the 16 MiB until the suspend freezes it: pages it
  // wrote after the first round read them go again in later rounds (how
  // many depends on how far the throttled guest got; a page rewritten before
  // the first round read it needs nothing more). memcheck on the target
  // below holds the sum of it: every page as the guest last wrote it.
  t.ok(s.rounds[1]!.pages > 0, `the second round resent pages the guest wrote during the first (${s.rounds[1]!.pages})`);
  t.comment(`downtime ${s.downtimeMs.toFixed(0)} ms, ${(s.sentBytes / 1048576).toFixed(1)} MiB sent`);
  t.notOk((await list(src)).some((x) => x.name === 'mg'), 'mg is gone from the source');
  const row = (await list(dst)).find((x) => x.name === 'mg');
  t.equal(row?.id, s.targetDomid, `mg runs on the target as d${row?.id}`);

  const { run } = await attachGuest(t, dst, 'mg', row!.id);
  t.match(await run('memcheck'), /4096 pages, seed \d+: ok/, 'its memory came along as the guest last wrote it, every page');
  t.notMatch(await run('memcheck'), /seed 5:/, 'which is not the first pattern: what was dirtied was sent again');
  t.match(await run('cat notes'), /travels/, 'its disk (the same image path) has the file');
  t.match(await run('ping -c 2 10.0.0.2'), /2 packets received|2 received/, "it pings a guest of the target host's bridge");
  t.match(await peer.run('ping -c 1 10.0.0.7'), /1 packets received|1 received/, 'and is pinged back');
});

t.test('xl migrate --live comparing pages (XENEMU_LOGDIRTY=compare): what the guest wrote during a round is sent again', async (t) => {
  const src = await startHost(t, { memory: 256, pcpus: 2, env: { XENEMU_LOGDIRTY: 'compare' } });
  const dst = await startHost(t, { memory: 256, pcpus: 2, listen: `127.0.0.1:${PORT + 3}` });
  const g = await netGuest(t, src, 'cmp', '', 32);
  t.match(await g.run('memfill 8 4'), /seed 4/, 'memfill 8 MiB');
  const from = g.pty.text.length;
  g.pty.write('membusy 8 120\r');
  await g.pty.until(/rewriting 8 MiB/, from, 30_000);
  const r = await xl(src, ['migrate', '--live', '-l', 'cmp', `127.0.0.1:${PORT + 3}`]);
  t.equal(r.code, 0, `xl migrate --live ${r.stderr.trim()}`);
  const s = JSON.parse(r.stdout) as { rounds: Array<{ pages: number }>; logDirty: string; stopPages: string };
  t.equal(s.logDirty, 'compare', 'log-dirty by comparing pages');
  t.equal(s.stopPages, 'compare', 'the stop compares every populated frame too');
  t.ok(s.rounds[0]!.pages >= 2048, `the first round carried the 8 MiB written (${s.rounds[0]!.pages})`);
  t.ok(s.rounds[1]!.pages > 0, `the second round resent pages the guest wrote during the first (${s.rounds.map((x) => x.pages).join(', ')})`);
  const row = (await list(dst)).find((x) => x.name === 'cmp');
  const { run } = await attachGuest(t, dst, 'cmp', row!.id);
  t.match(await run('memcheck'), /2048 pages, seed \d+: ok/, 'its memory came along as the guest last wrote it');
  t.notMatch(await run('memcheck'), /seed 4:/, 'which is not the first pattern');
});

t.test('xl migrate to a host that is not listening leaves the guest running', async (t) => {
  const src = await startHost(t, { memory: 256, pcpus: 1 });
  const g = await netGuest(t, src, 'stay', '');
  await g.run('memfill 4 9');
  const r = await xl(src, ['migrate', 'stay', `127.0.0.1:${PORT + 1}`]);
  t.not(r.code, 0, 'xl migrate fails');
  t.match(r.stderr, /migration of domain \d+ to 127\.0\.0\.1:\d+ failed/, r.stderr.trim());
  const row = (await list(src)).find((x) => x.name === 'stay');
  t.equal(row?.id, g.id, 'the guest is still on the source under its domid');
  t.match(await g.run('memcheck'), /seed 9: ok/, 'and runs on');
});

t.test('xl migrate on a terminal draws a progress bar: round, MB sent, dirty rate, estimated downtime', async (t) => {
  // 96 MiB rewritten without pause: every round carries tens of MiB, so the
  // migration lasts long enough for several redraws (100 ms apart).
  const src = await startHost(t, { memory: 512, pcpus: 2 });
  const dst = await startHost(t, { memory: 512, pcpus: 2, listen: `127.0.0.1:${PORT + 2}` });
  const g = await netGuest(t, src, 'pb', '', 128);
  await g.run('memfill 96 3');
  const from = g.pty.text.length;
  g.pty.write('membusy 96 120\r');
  await g.pty.until(/membusy: rewriting/, from + 16, 30_000);
  const term = pty.spawn(process.execPath, [XENEMU_CLI, 'xl', 'migrate', '--live', 'pb', `127.0.0.1:${PORT + 2}`], {
    cols: 120, rows: 30, env: { ...src.env, XENEMU_HOST: src.name } as Record<string, string> });
  let screen = '';
  term.onData((d) => { screen += d; });
  t.teardown(() => { try { term.kill(); } catch { /* gone */ } });
  const code = await new Promise<number>((res) => term.onExit((e) => res(e.exitCode)));
  t.equal(code, 0, 'xl migrate succeeds');
  const frames = screen.split('\r').filter((l) => /^\[[#.]{24}\] /.test(l));
  // How many redraws a migration of a second or less gets depends on the
  // machine; each one must come after a carriage return, never on a new line.
  t.ok(frames.length >= 1, `the bar was drawn (${frames.length} frames)`);
  t.notMatch(screen, /\n\[[#.]{24}\] /, 'each frame redrawn in place (after a carriage return, not a new line)');
  t.match(frames.join('\n'), /(round \d+|stop-and-copy|target restoring|target starting) +[\d.]+ MB sent +dirty +[\d.]+ MB\/s +est\. downtime +\d+ ms/, frames.at(-1) ?? 'no frame');
  // From the third pre-copy round on, the rate measured over the rounds before
  // shows the guest's rewriting. (Stop-and-copy and the target's phases may
  // show almost nothing: auto-converge has capped the guest by then.)
  const late = frames.filter((f) => /\] round ([3-9]|[1-9]\d+) /.test(f));
  if (late.length) t.ok(late.some((f) => /dirty +[1-9][\d.]* MB\/s/.test(f)), 'a dirty rate once the guest had rewritten pages during a round');
  else t.comment(`no frame of a third pre-copy round was drawn (${frames.length} frames): the dirty rate is not checked`);
  t.match(screen, /Target reports successful startup/, 'and the summary follows');
  t.ok((await list(dst)).some((x) => x.name === 'pb'), 'the guest moved');
});
