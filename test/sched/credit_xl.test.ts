// The credit scheduler through the tools on a real host with real PV
// guests: xl.cfg cpu_weight/cap/cpus at create, xl sched-credit (table,
// -d/-w/-c, -s/-t/-r), xl vcpu-pin and xl vcpu-list while guests `burn`,
// xl vcpu-set changing the online vCPUs, xm top in batch mode and under a
// terminal (node-pty), quitting on `q`.
import t from 'tap';
import * as pty from 'node-pty';
import { startHost, XENEMU_CLI, waitFor } from '../helpers/host.js';
import { PtyClient, list, xenstore, xl, xlOk, writeCfg } from '../host/xl.js';

const PROMPT = /root@\w+:~# $/;

t.test('xl sched-credit, vcpu-pin, vcpu-list, vcpu-set and top on running PV guests', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const xs = await xenstore(t, h);
  await xlOk(h, 'create', writeCfg(h, 'a.cfg', 'name = "ga"\nmemory = 32\nvcpus = 2\ncpu_weight = 512\ncap = 80\ncpus = "1"\n'));
  await xlOk(h, 'create', writeCfg(h, 'b.cfg', 'name = "gb"\nmemory = 32\n'));
  const rows = await list(h);
  const ga = rows.find((r) => r.name === 'ga')!.id;

  // The table, in xl's format, with what xl.cfg asked for.
  const table = await xlOk(h, 'sched-credit');
  t.match(table, /^Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us\nName +ID Weight  Cap\n/, 'pool line and header');
  t.match(table, /^Domain-0 +0 +256 +0$/m, 'Domain-0 256/0');
  t.match(table, new RegExp(`^ga +${ga} +512 +80$`, 'm'), 'ga: cpu_weight 512, cap 80 from its xl.cfg');
  t.match(table, /^gb +\d+ +256 +0$/m, 'gb: defaults');

  t.equal((await xl(h, ['sched-credit', '-d', 'gb', '-w', '128', '-c', '50'])).code, 0, 'sched-credit -d gb -w 128 -c 50');
  t.match(await xlOk(h, 'sched-credit', '-d', 'gb'), /^gb +\d+ +128 +50$/m, 'read back');
  const bad = await xl(h, ['sched-credit', '-d', 'gb', '-w', '70000']);
  t.not(bad.code, 0, `weight 70000 refused: ${bad.stderr.trim()}`);
  t.equal((await xl(h, ['sched-credit', '-s', '-t', '20', '-r', '500'])).code, 0, 'sched-credit -s -t 20 -r 500');
  t.match(await xlOk(h, 'sched-credit', '-s'), /tslice=20ms ratelimit=500us/, 'pool parameters read back');
  t.not((await xl(h, ['sched-credit', '-s', '-t', '0'])).code, 0, 'tslice 0 refused');
  await xlOk(h, 'sched-credit', '-s', '-t', '30', '-r', '1000');

  // vCPU list: ga's two vCPUs pinned to CPU 1 by `cpus = "1"`.
  let vl = await xlOk(h, 'vcpu-list', 'ga');
  t.match(vl, /^Name +ID +VCPU +CPU +State +Time\(s\) Affinity \(Hard \/ Soft\)\n/, 'vcpu-list header');
  t.match(vl, new RegExp(`^ga +${ga} +0 +\\d+ +[-r][-b]- +[\\d.]+  1 / all$`, 'm'), 'vCPU 0 pinned to 1');
  t.match(vl, new RegExp(`^ga +${ga} +1 +\\d+ +[-r][-b]- +[\\d.]+  1 / all$`, 'm'), 'vCPU 1 pinned to 1');

  // Make ga busy on its console, then watch where its vCPUs run.
  const ptyPath = await xs.readString(`/local/domain/${ga}/console/tty`);
  const c = new PtyClient(ptyPath);
  t.teardown(() => c.close());
  await c.until(PROMPT);
  const from = c.text.length;
  // Long enough to outlast every check below on a loaded machine (2 vCPUs
  // under cap 80 need 2.5 s of wall time per second asked); Ctrl-C ends it.
  c.write('burn 60\r');
  await waitFor(async () => / r-- /.test(await xlOk(h, 'vcpu-list', 'ga')), 10_000, 'ga running');
  const cpus = new Set<string>();
  for (let i = 0; i < 8; i++) {
    vl = await xlOk(h, 'vcpu-list', 'ga');
    for (const m of vl.matchAll(/^ga +\d+ +\d+ +(\d+) +r/gm)) cpus.add(m[1]!);
  }
  t.same([...cpus], ['1'], `running vCPUs seen only on CPU 1 (${[...cpus].join(',') || 'none seen'})`);
  t.equal((await xl(h, ['vcpu-pin', 'ga', 'all', '0'])).code, 0, 'vcpu-pin ga all 0');
  // Either vCPU may be the one caught running: they share CPU 0 under cap 80
  // with Domain-0 and gb, and each `xl vcpu-list` takes a while on a loaded
  // machine, so the wait is generous and any vCPU of ga will do.
  await waitFor(async () => /^ga +\d+ +\d +0 +r/m.test(await xlOk(h, 'vcpu-list', 'ga')), 30_000, 'a vCPU of ga running on CPU 0');
  const after = new Set<string>();
  for (let i = 0; i < 4; i++) {
    for (const m of (await xlOk(h, 'vcpu-list', 'ga')).matchAll(/^ga +\d+ +\d+ +(\d+) +r/gm)) after.add(m[1]!);
  }
  t.notOk(after.has('1'), `after the pin no vCPU of ga runs on CPU 1 (${[...after].join(',') || 'none seen'})`);
  t.match(await xlOk(h, 'vcpu-list', 'ga'), /^ga +\d+ +0 +\d+ +\S+ +[\d.]+  0 \/ all$/m, 'hard affinity 0');
  t.not((await xl(h, ['vcpu-pin', 'ga', '0', '7'])).code, 0, 'a CPU the host does not have is refused');
  c.write('\x03');
  await c.until(/burn: .* \(interrupted\)/, from);
  await c.until(PROMPT, from);

  // vcpu-set: the guest really takes vCPU 1 offline, and back.
  t.equal((await xl(h, ['vcpu-set', 'ga', '1'])).code, 0, 'vcpu-set ga 1');
  await waitFor(async () => /^ga +\d+ +1 +- +--p/m.test(await xlOk(h, 'vcpu-list', 'ga')), 10_000, 'vCPU 1 offline in vcpu-list');
  t.equal((await list(h)).find((r) => r.name === 'ga')!.vcpus, 1, 'xl list shows 1 vCPU');
  t.equal((await xl(h, ['vcpu-set', 'ga', '2'])).code, 0, 'vcpu-set ga 2');
  await waitFor(async () => (await list(h)).find((r) => r.name === 'ga')!.vcpus === 2, 10_000, 'back to 2 vCPUs');

  // top, batch mode: two screens.
  const top = await xlOk(h, 'top', '-b', '-i', '2', '-d', '0.3');
  t.equal(top.match(/^xentop - /gm)?.length, 2, 'two screens');
  t.match(top, /NAME +STATE +CPU\(sec\) CPU\(%\) +MEM\(k\) MEM\(%\) +MAXMEM\(k\) MAXMEM\(%\) VCPUS/, 'xentop columns');
  t.match(top, /^ +ga +--[b-]--[r-] +\d+ +[\d.]+ +32768 /m, 'ga with 32 MiB');

  // top in a terminal: refreshes until q.
  const term = pty.spawn(process.execPath, [XENEMU_CLI, 'xl', 'top', '-d', '0.2'], {
    cols: 120, rows: 30, env: { ...h.env, XENEMU_HOST: h.name } as Record<string, string> });
  let screen = '';
  const exited = new Promise<number>((res) => term.onExit((e) => res(e.exitCode)));
  term.onData((d) => { screen += d; });
  t.teardown(() => { try { term.kill(); } catch { /* gone */ } });
  await waitFor(() => (screen.match(/xentop - /g)?.length ?? 0) >= 2, 15_000, 'top refreshed twice');
  t.match(screen, /\x1b\[2J/, 'it clears the screen between refreshes');
  term.write('q');
  t.equal(await exited, 0, 'q quits top with status 0');
});
