// An HVM guest's vCPU is a vCPU like a PV guest's: it runs v86 only inside
// the credit scheduler's slices, so a cap holds a guest spinning in a boot
// sector near its share, pausing it stops its running time, and a guest in
// HLT uses nothing (test/hvm/qemu_dm.test.ts checks it is blocked).
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { seabiosMissing } from '../helpers/hvm.js';
import { list, writeCfg, xl, xlOk } from '../host/xl.js';

const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'spin_boot.asm');

t.test('an HVM vCPU is capped, paused and charged as a PV vCPU', { skip: seabiosMissing() ?? nasmMissing() ?? false }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const boot = nasmBuild(t, ASM, join(h.root, 'spin.bin'));
  if (!boot) return;
  const disk = join(h.root, 'spin.img');
  const img = Buffer.alloc(1 << 20);
  img.set(boot, 0);
  writeFileSync(disk, img);
  const cfg = writeCfg(h, 'spin.cfg', ['type = "hvm"', 'name = "spin"', 'memory = 32', 'serial = "pty"', 'boot = "c"',
    `disk = [ 'file:${disk},hda,w' ]`, 'cap = 25'].join('\n'));
  await xlOk(h, 'create', cfg);
  t.teardown(() => xl(h, ['destroy', 'spin']));
  const serial = join(h.rundir, 'logs', 'console', 'spin.log');
  await waitFor(() => existsSync(serial) && readFileSync(serial, 'utf8').includes('spinning'), 60_000, 'the guest spinning');
  const time = async () => (await list(h)).find((r) => r.name === 'spin')!.time;

  // Xen's cap is a percentage of one pCPU, enforced per accounting period.
  const t0 = await time();
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, 4000));
  const share = ((await time()) - t0) / ((Date.now() - w0) / 1000);
  t.ok(share > 0.15 && share < 0.35, `cap 25: the spinning guest got ${(share * 100).toFixed(1)}% of a pCPU`);

  await xlOk(h, 'sched-credit', '-d', 'spin', '-c', '0');
  const u0 = await time();
  const v0 = Date.now();
  await new Promise((r) => setTimeout(r, 3000));
  const free = ((await time()) - u0) / ((Date.now() - v0) / 1000);
  t.ok(free > 0.6, `uncapped it takes a pCPU: ${(free * 100).toFixed(1)}%`);

  await xlOk(h, 'pause', 'spin');
  await new Promise((r) => setTimeout(r, 300));
  const p0 = await time();
  await new Promise((r) => setTimeout(r, 2000));
  t.ok((await time()) - p0 < 0.15, 'paused, it is charged nothing more');
  t.match((await list(h)).find((r) => r.name === 'spin')!.state, /p/, 'and shows as paused');
  await xlOk(h, 'unpause', 'spin');
});
