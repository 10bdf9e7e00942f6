// xl save and xl restore of a PV guest through the real processes
// (docs/saverestore.md): the guest suspends itself, its pages go to a file
// in xl's format, it is destroyed; restored, it has its name, a new domid,
// the same pages (memfill's pattern checks, page by page), its uptime and
// kernel log carried on, its disk's files and its network (same MAC and
// address) reconnected to Domain-0's back ends. xl save -c keeps it running;
// corrupt, truncated and foreign files are refused with nothing created.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHost, waitFor } from '../helpers/host.js';
import { list, writeCfg, xl, xlOk } from '../host/xl.js';
import { attachGuest, netGuest } from '../net/guests.js';
import { shmList, shmPrefix } from '../../shared/shm.js';

t.test('xl save and xl restore of a PV guest', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const peer = await netGuest(t, h, 'peer', "vif = ['bridge=xenbr0,ip=10.0.0.2']");
  const disk = join(h.root, 'sv.img');
  writeFileSync(disk, Buffer.alloc(16 << 20));
  const g = await netGuest(t, h, 'sv', `disk = ['file:${disk},xvda,w']\nvif = ['bridge=xenbr0,ip=10.0.0.7,mac=00:16:3e:00:07:07']`, 64);
  // The guest was up at least this long when it is saved (its prompt came after its boot).
  const promptAt = Date.now();
  t.match(await g.run('mkfs /dev/xvda'), /xvda/, 'mkfs');
  await g.run('write notes before-save');
  t.match(await g.run('memfill 8 77'), /memfill: 8 MiB at pfn 0x[0-9a-f]+, seed 77/, 'memfill writes 8 MiB of pattern');
  t.match(await g.run('ping -c 1 10.0.0.2'), /1 packets received|1 received/, 'ping before the save');

  const file = join(h.root, 'sv.save');
  // A second of the guest's own work, so its uptime is well past where a fresh boot would stamp.
  t.match(await g.run('burn 1'), /burn: /, 'the guest works for a second');
  const upBefore = (Date.now() - promptAt) / 1000;
  const saved = await xl(h, ['save', 'sv', file]);
  t.equal(saved.code, 0, `xl save sv ${saved.stderr.trim()}`);
  t.match(saved.stderr, /^Saving to .*sv\.save new xl format/, "xl's first line");
  t.equal(readFileSync(file).toString('latin1', 0, 32), 'Xen saved domain, xl format\n \0 \r', "the file starts with xl's magic");
  t.notOk((await list(h)).some((r) => r.name === 'sv'), 'sv is gone after the save');
  await waitFor(() => !shmList(shmPrefix(h.name)).some((s) => s.includes(`.dom${g.id}.`)), 10_000, "sv's segments gone");

  const restored = await xl(h, ['restore', file]);
  t.equal(restored.code, 0, `xl restore ${restored.stderr.trim()}`);
  const row = (await list(h)).find((r) => r.name === 'sv');
  t.ok(row && row.id !== g.id, `sv is back as d${row?.id} (was d${g.id})`);
  t.equal(row?.mem, 64, 'with its 64 MiB');
  const { run } = await attachGuest(t, h, 'sv', row!.id);
  t.match(await run('memcheck'), /memcheck: 2048 pages, seed 77: ok/, 'every page of the pattern came back');
  t.match(await run('dmesg'), /resuming from a saved image as domid \d+/, 'the kernel log says it resumed, and kept its boot lines');
  t.match(await run('dmesg'), /Booting paravirtualized kernel on Xen \(domid \d+\)/, 'its log from before the save is still there');
  const resumedAt = Number(/\[\s*([\d.]+)\] xen:manage: resuming/.exec(await run('dmesg'))?.[1]);
  // A kernel that booted afresh would stamp its first lines near 0.
  t.ok(resumedAt >= upBefore, `its uptime went on: up at least ${upBefore.toFixed(3)} s when saved, ${resumedAt.toFixed(3)} s at the resume`);
  t.match(await run('cat notes'), /before-save/, 'the file written before the save is on its disk');
  t.match(await run('ifconfig eth0'), /10\.0\.0\.7/, 'eth0 keeps its address');
  t.match(await run('ifconfig eth0'), /00:16:3e:00:07:07/i, 'and its MAC');
  t.match(await run('ping -c 2 10.0.0.2'), /2 packets received|2 received/, 'it pings its peer again');
  t.match(await peer.run('ping -c 1 10.0.0.7'), /1 packets received|1 received/, 'and is pinged back');

  // xl save -c: the guest runs on; a second file restores as well after it is destroyed.
  const file2 = join(h.root, 'sv2.save');
  t.equal((await xl(h, ['save', '-c', 'sv', file2])).code, 0, 'xl save -c');
  const still = (await list(h)).find((r) => r.name === 'sv');
  t.equal(still?.id, row!.id, 'sv still runs under its domid');
  t.match(await run('memcheck'), /seed 77: ok/, 'and answers on its console');
  t.match(await run('dmesg'), /resumed in place \(SCHEDOP_shutdown returned 1\)/, 'its suspend returned 1 (cancelled)');
});

t.test('xl restore refuses bad files and creates nothing', async (t) => {
  const h = await startHost(t, { memory: 256, pcpus: 1 });
  await xlOk(h, 'create', writeCfg(h, 'a.cfg', 'name = "a"\nmemory = 32\n'));
  const file = join(h.root, 'a.save');
  t.equal((await xl(h, ['save', 'a', file])).code, 0, 'a saved');
  const good = readFileSync(file);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a text file', Buffer.from('name = "a"\n'), /not a saved Xen domain \(bad magic\)/],
    ['cut in half', good.subarray(0, good.length >> 1), /truncated|runs past the end/],
    ['a flipped byte in a page', (() => { const b = Buffer.from(good); b[b.length - 200] ^= 0xff; return b; })(), /checksum mismatch|runs past the end|record/],
  ];
  for (const [what, bytes, re] of cases) {
    const p = join(h.root, 'bad.save');
    writeFileSync(p, bytes);
    const r = await xl(h, ['restore', p]);
    t.not(r.code, 0, `${what}: refused`);
    t.match(r.stderr, re, `${what}: ${r.stderr.trim().split('\n').pop()}`);
  }
  t.same((await list(h)).map((r) => r.name), ['Domain-0'], 'nothing was created');
  t.equal((await xl(h, ['restore', file])).code, 0, 'the good file restores');
  const again = await xl(h, ['restore', file]);
  t.not(again.code, 0, 'restoring it a second time while it runs is refused');
  t.match(again.stderr, /domain with name "a" already exists/, "with xl's message");
});
