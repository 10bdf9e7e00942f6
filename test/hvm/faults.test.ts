// HVM guests that fault or reset from inside, through the real processes,
// with a boot sector of our own (boot_guests.ts): a triple fault (Xen's
// hvm_triple_fault: HVM_PARAM_TRIPLE_FAULT_REASON, SHUTDOWN_reboot by
// default), an exception out of v86 (the domain crashes), resets through
// the 8042 and 0xCF9 (SHUTDOWN_reboot; on_reboot restart boots it again).
// After each, nothing of the guest is left.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../helpers/host.js';
import { onWatch, xlOk } from '../host/xl.js';
import { bootGuests, bootGuestsMissing, qemuDmPids, row } from './boot_guests.js';

t.test('HVM faults and resets', { skip: bootGuestsMissing() }, async (t) => {
  const g = await bootGuests(t);
  const { h, xs, create, serialLog, read } = g;
  const allGone = (t: Parameters<typeof g.allGone>[0], _h: unknown, id: number, what: string) => g.allGone(t, id, what);

  await t.test("a triple fault: Xen's default HVM_PARAM_TRIPLE_FAULT_REASON, SHUTDOWN_reboot (on_reboot preserve keeps it)", async (t) => {
    const id = await create('tf', 'TRIPLE', ['on_reboot = "preserve"', 'on_crash = "preserve"']);
    const r = await waitFor(async () => { const x = await row(h, 'tf'); return x && x.state.includes('s') ? x : null; }, 60_000, 'tf shut down');
    t.equal(r.state.slice(3, 5), 'sr', `shut down for reboot, not crashed (${r.state})`);
    t.ok(read(serialLog('tf')).includes('triple fault'), 'the boot sector raised it');
    if (r.state[4] !== 'r') t.comment(read(join(h.rundir, 'logs', `dom${id}.log`)));
    await xlOk(h, 'destroy', 'tf');
    await allGone(t, h, id, 'triple fault');
  });

  await t.test('an exception out of v86 (a processor state it cannot emulate) crashes the domain', async (t) => {
    const id = await create('v86x', 'DF_ONLY', ['on_crash = "preserve"']);
    const r = await waitFor(async () => { const x = await row(h, 'v86x'); return x && x.state.includes('s') ? x : null; }, 60_000,
      `v86x shut down\n${read(serialLog('v86x'))}`);
    t.equal(r.state.slice(3, 5), 'sc', `crashed (${r.state})`);
    t.match(read(join(h.rundir, 'logs', `dom${id}.log`)), /vCPU 0 failed: /, "the domain's log says why");
    await xlOk(h, 'destroy', 'v86x');
    await allGone(t, h, id, 'v86 exception');
  });

  for (const [variant, how] of [['RESET_KBD', 'the 8042 (0xFE to port 0x64)'], ['RESET_CF9', 'the PIIX3 reset control (0xCF9)']] as const) {
    await t.test(`a reset from inside through ${how}: SHUTDOWN_reboot, on_reboot restart boots it again with a new domid`, async (t) => {
      const name = variant.toLowerCase().replace('_', '');
      const id = await create(name, variant, ['on_reboot = "restart"']);
      await waitFor(() => read(serialLog(name)).includes('a key resets') || null, 60_000, `${name} waits for a key`);
      const again = onWatch(xs, '@introduceDomain', async () => {
        const x = await row(h, name);
        return x && x.id !== id ? x.id : undefined;
      });
      // The first boot only: a byte on its COM1 makes it reset; the restarted guest waits for one that never comes.
      writeFileSync(await xs.readString(`/local/domain/${id}/serial/0/tty`), 'r');
      const newId = await again;
      t.not(newId, id, `back as d${newId}`);
      // The new guest boots: its own hello (the serial log keeps both boots).
      await waitFor(() => (read(serialLog(name)).match(/a key resets/g) ?? []).length >= 2 || null, 60_000, `${name} booted again`);
      await xlOk(h, 'destroy', name);
      await allGone(t, h, id, `${variant}: the first domain`);
      await allGone(t, h, newId, `${variant}: the restarted domain`);
    });
  }
  t.same(qemuDmPids(h), [], 'no qemu-dm of this host is left');
});
