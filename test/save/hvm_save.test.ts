// xl save and xl restore of an HVM guest through the real processes
// (docs/saverestore.md): a boot sector of ours (test/hvm/asm/counter_boot.asm),
// booted by SeaBIOS, counts in a register and prints each count on COM1
// through qemu-dm's UART. Saved, its vCPU stops between two runs of v86 and
// writes its context, qemu-dm writes its devices' state, the file holds
// both beside the pages; restored into a new domain and a new qemu-dm, it
// goes on counting from where it was. -c keeps it running, -p keeps it
// paused; a corrupt file is refused with nothing created.
import t from 'tap';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { seabiosMissing } from '../helpers/hvm.js';
import { list, writeCfg, xl, xlOk } from '../host/xl.js';
import { shmList, shmPrefix } from '../../shared/shm.js';

const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'counter_boot.asm');

// Five restores and a boot: past tap's default bound for a file on a loaded 2-CPU machine.
t.setTimeout(240_000);

/** Every complete count in the serial log, in order. */
function counts(text: string): number[] {
  return [...text.matchAll(/COUNT ([0-9A-F]{8})\r\n/g)].map((m) => parseInt(m[1]!, 16));
}

t.test('xl save and xl restore of an HVM guest', { skip: seabiosMissing() ?? nasmMissing() ?? false }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const prog = nasmBuild(t, ASM, join(h.root, 'counter.bin'));
  if (!prog) return;
  const img = Buffer.alloc(1 << 20);
  img.set(prog, 0);
  const disk = join(h.root, 'ctr.img');
  writeFileSync(disk, img);
  const cfg = writeCfg(h, 'ctr.cfg', [
    'type = "hvm"', 'name = "ctr"', 'memory = 48', 'videoram = 16', 'serial = "pty"', 'boot = "c"',
    `disk = [ 'file:${disk},hda,w' ]`, 'on_crash = "preserve"',
  ].join('\n'));
  const serial = join(h.rundir, 'logs', 'console', 'ctr.log');
  const log = () => (existsSync(serial) ? readFileSync(serial, 'latin1') : '');
  /** The log's counts once it holds one past `n`. */
  const countPast = (n: number, what: string) => waitFor(() => { const c = counts(log()); return c.length && c.at(-1)! > n ? c : null; }, 60_000, what);
  const dmLog = () => { const f = join(h.rundir, 'logs', 'qemu-dm-ctr.log'); return existsSync(f) ? readFileSync(f, 'utf8').slice(-3000) : ''; };
  const row = async () => (await list(h)).find((r) => r.name === 'ctr');

  await xlOk(h, 'create', cfg);
  t.teardown(() => xl(h, ['destroy', 'ctr']));
  const first = await countPast(3, 'the guest to count to 4');
  t.same(first.slice(0, 4), [0, 1, 2, 3], 'it counts from 0 on COM1');
  const d1 = (await row())!.id;

  await t.test('xl save, then xl restore: the count goes on', async (t) => {
    const file = join(h.root, 'ctr.save');
    const t0 = Date.now();
    const saved = await xl(h, ['save', 'ctr', file]);
    const saveMs = Date.now() - t0;
    t.equal(saved.code, 0, `xl save ctr ${saved.stderr.trim()}`);
    t.notOk(await row(), 'ctr is gone after the save');
    await waitFor(() => !shmList(shmPrefix(h.name)).some((s) => s.includes(`.dom${d1}.`)), 10_000, "ctr's segments gone");
    const before = counts(log());
    const last = before.at(-1)!;
    // Longer than a count takes: a guest that ran meanwhile would show it.
    await new Promise((r) => setTimeout(r, 500));
    t.same(counts(log()), before, 'nothing is printed while it is saved');
    const t1 = Date.now();
    const restored = await xl(h, ['restore', file]);
    t.comment(`xl save ${saveMs} ms, xl restore ${Date.now() - t1} ms, file ${statSync(file).size} bytes`);
    t.equal(restored.code, 0, `xl restore ${restored.stderr.trim()}${restored.code ? `\n${dmLog()}` : ''}`);
    if (restored.code !== 0) return;
    const r = await row();
    t.ok(r && r.id !== d1, `ctr is back as d${r?.id} (was d${d1})`);
    const after = await countPast(last + 3, 'the restored guest to count three more');
    // One unbroken sequence: no restart from 0 (its register came back), nothing skipped or repeated.
    t.same(after, after.map((_, i) => i), `counts 0..${after.at(-1)} without a break across the save (last before it: ${last})`);
  });

  await t.test('xl save -c keeps it running; its file restores to the moment of the save', async (t) => {
    const file = join(h.root, 'ctr-c.save');
    const at = counts(log()).at(-1)!;
    t.equal((await xl(h, ['save', '-c', 'ctr', file])).code, 0, 'xl save -c');
    // The snapshot's count S is at least `at` and at most what the log holds
    // once xl returns (the kept guest may have printed S + 1 by then).
    const atReturn = counts(log()).at(-1)!;
    const r = await row();
    t.ok(r, 'ctr still runs');
    const later = await countPast(atReturn + 4, 'the guest to count on after xl save -c');
    const lastKept = later.at(-1)!;
    await xlOk(h, 'destroy', 'ctr');
    const mark = log().length;
    t.equal((await xl(h, ['restore', file])).code, 0, 'xl restore of the -c file');
    const fresh = await waitFor(() => { const c = counts(log().slice(mark)); return c.length >= 2 ? c : null; }, 60_000, 'counts after the restore');
    t.ok(fresh[0]! - 1 >= at && fresh[0]! - 1 <= atReturn,
      `the restored guest goes on from the save (between ${at} and ${atReturn} when it was taken, ${fresh[0]} first after the restore), ` +
      `not from where the kept one stopped (${lastKept})`);
    t.equal(fresh[1], fresh[0]! + 1, 'and counts on by one');
  });

  await t.test('xl save -p leaves it paused, xl unpause lets it count on', async (t) => {
    const file = join(h.root, 'ctr-p.save');
    t.equal((await xl(h, ['save', '-p', 'ctr', file])).code, 0, 'xl save -p');
    const r = await row();
    t.match(r?.state ?? '', /p/, `ctr is listed paused (${r?.state})`);
    const frozen = counts(log());
    await new Promise((res) => setTimeout(res, 500));
    t.same(counts(log()), frozen, 'nothing is printed while it is paused');
    await xlOk(h, 'unpause', 'ctr');
    const on = await countPast(frozen.at(-1)! + 2, 'the guest to count on after xl unpause');
    t.equal(on[frozen.length], frozen.at(-1)! + 1, 'it goes on from its count');
  });

  await t.test('a corrupt or truncated HVM file is refused, nothing created', async (t) => {
    const good = readFileSync(join(h.root, 'ctr-p.save'));
    await xlOk(h, 'destroy', 'ctr');
    const flipped = Buffer.from(good);
    // A byte of the device model record (the last before the checksum).
    flipped[flipped.length - 4096] = flipped[flipped.length - 4096]! ^ 0x40;
    const bad = join(h.root, 'bad.save');
    writeFileSync(bad, flipped);
    const r1 = await xl(h, ['restore', bad]);
    t.not(r1.code, 0, 'a flipped byte: xl restore fails');
    t.match(r1.stderr, /checksum mismatch: the file is corrupt/, r1.stderr.trim());
    const cut = join(h.root, 'cut.save');
    writeFileSync(cut, good.subarray(0, good.length - 100));
    const r2 = await xl(h, ['restore', cut]);
    t.not(r2.code, 0, 'a truncated file: xl restore fails');
    t.match(r2.stderr, /truncated|runs past the end/, r2.stderr.trim());
    t.notOk(await row(), 'no ctr was created');
  });
});
