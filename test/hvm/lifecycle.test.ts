// HVM guests' lives and deaths through the real processes (xl create, the
// HVM builder, the domain process with its vCPU, qemu-dm with a NIC on
// netback's bridge), with a boot sector of our own (boot_guests.ts): ACPI
// S5 from inside, SIGKILL of the domain's process and of its device model,
// xl destroy while SeaBIOS runs. After each, nothing of the guest is left:
// no segment, no qemu-dm, no tap socket. (faults.test.ts: triple faults,
// v86 exceptions, resets.)
import t from 'tap';
import { readHostRecord, waitFor } from '../helpers/host.js';
import { onWatch, xend, xlOk } from '../host/xl.js';
import { XmlRpcFault, XMLRPC_ERROR_INVALID_DOMAIN } from '../../shared/xmlrpc.js';
import { bootGuests, bootGuestsMissing, qemuDmPids, row } from './boot_guests.js';

t.test('HVM lifecycle', { skip: bootGuestsMissing() }, async (t) => {
  const g = await bootGuests(t);
  const { h, xs, create, booted, serialLog, dmLog, read } = g;
  const allGone = (t: Parameters<typeof g.allGone>[0], _h: unknown, id: number, what: string) => g.allGone(t, id, what);

  await t.test('ACPI S5 from inside: SHUTDOWN_poweroff; on_poweroff preserve keeps it shut down, destroy ends it', async (t) => {
    const id = await create('s5p', 'S5', ['on_poweroff = "preserve"']);
    await booted('s5p');
    const r = await waitFor(async () => { const x = await row(h, 's5p'); return x && x.state.includes('s') ? x : null; }, 30_000, 's5p shut down');
    t.equal(r.state.slice(3, 5), 's-', `xl list shows it shut down for poweroff (${r.state})`);
    t.ok(read(serialLog('s5p')).includes('PM timer moves'), 'the guest read the PM timer moving (the vCPU answers 0xb008)');
    const dm = read(dmLog('s5p'));
    t.match(dm, /debugcon: ACPI DSDT=0x[0-9a-f]+\n[^]*debugcon: Copying ACPI RSDP from /, "SeaBIOS built its ACPI tables (FADT, DSDT, RSDP) around qemu-dm's PIIX4");
    t.match(dm, /ACPI S5 \(soft off\): SHUTDOWN_poweroff/, 'qemu-dm saw SLP_EN with SLP_TYP 0');
    await xlOk(h, 'destroy', 's5p');
    await allGone(t, h, id, 'preserved S5 guest destroyed');

    const id2 = await create('s5d', 'S5', ['on_poweroff = "destroy"']);
    await waitFor(async () => (await row(h, 's5d')) === undefined, 60_000, 's5d destroyed by on_poweroff');
    t.ok(read(serialLog('s5d')).includes('ACPI S5'), 'it got as far as S5');
    await allGone(t, h, id2, 'S5 with on_poweroff destroy');
  });

  await t.test('SIGKILL of the domain process: crashed, on_crash applied, qemu-dm goes', async (t) => {
    const id = await create('kdom', '', ['on_crash = "preserve"']);
    await booted('kdom');
    const pid = readHostRecord(h.rundir)!.pids.domains[String(id)]!;
    process.kill(pid, 'SIGKILL');
    const r = await waitFor(async () => { const x = await row(h, 'kdom'); return x && x.state.includes('c') ? x : null; }, 10_000, 'kdom crashed');
    t.equal(r.state.slice(3, 5), 'sc', `listed crashed (${r.state})`);
    // A preserved domain keeps its device model (libxl stops it with the domain); destroy ends both.
    await xlOk(h, 'destroy', 'kdom');
    await allGone(t, h, id, 'domain process killed, preserved, destroyed');
    const id2 = await create('kdom2', '', ['on_crash = "destroy"']);
    await booted('kdom2');
    process.kill(readHostRecord(h.rundir)!.pids.domains[String(id2)]!, 'SIGKILL');
    await waitFor(async () => (await row(h, 'kdom2')) === undefined, 10_000, 'kdom2 destroyed by on_crash');
    await allGone(t, h, id2, 'domain process killed, on_crash destroy');
  });

  await t.test('SIGKILL of qemu-dm: the guest is crashed within a second, on_crash destroy applied', async (t) => {
    const id = await create('kdm', '', ['on_crash = "destroy"']);
    await booted('kdm');
    const dmPid = Number(await xs.readString(`/local/domain/${id}/image/device-model-pid`));
    const gone = onWatch(xs, '@releaseDomain', async () => (await row(h, 'kdm')) === undefined);
    const t0 = performance.now();
    process.kill(dmPid, 'SIGKILL');
    // xend's long poll (VIRQ_DOM_EXC): true once it shut down, or once it is gone.
    const down = await xend(h, 'xend.domain.waitForShutdown', String(id), 1).catch((e: unknown) => {
      if (e instanceof XmlRpcFault && e.faultCode === XMLRPC_ERROR_INVALID_DOMAIN) return true;
      throw e;
    });
    const ms = performance.now() - t0;
    t.equal(down, true, 'shut down (crashed) within the 1 s long poll');
    t.ok(ms < 1000, `crashed ${ms.toFixed(0)} ms after qemu-dm was killed`);
    await gone;
    t.pass(`and destroyed by on_crash ${(performance.now() - t0).toFixed(0)} ms after`);
    await allGone(t, h, id, 'qemu-dm killed');
  });

  await t.test('xl destroy while SeaBIOS still runs: everything goes', async (t) => {
    const id = await create('early', '');
    // SeaBIOS is running once qemu-dm has logged its first debugcon line, well before the boot sector.
    await waitFor(() => /debugcon: /.test(read(dmLog('early'))) || null, 30_000, 'SeaBIOS running');
    t.notOk(read(serialLog('early')).includes('hello'), 'the boot sector has not run yet');
    await xlOk(h, 'destroy', 'early');
    t.equal(await row(h, 'early'), undefined, 'gone from xl list');
    await allGone(t, h, id, 'destroyed during SeaBIOS');
  });

  t.same(qemuDmPids(h), [], 'no qemu-dm of this host is left');
});
