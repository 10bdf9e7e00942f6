// HVM guests' lives and deaths through the real processes (xl create, the
// HVM builder, the domain process with its vCPU, qemu-dm with a NIC on
// netback's bridge), with a boot sector of our own (asm/lifecycle_boot.asm)
// so each guest is up in seconds: ACPI S5 from inside, SIGKILL of the
// domain's process and of its device model, xl destroy while SeaBIOS runs,
// a triple fault, a reset from inside. After each, nothing of the guest is
// left: no segment, no qemu-dm, no tap socket.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, processAlive, readHostRecord, startHost, waitFor, type TestHost } from '../helpers/host.js';
import { nasmBuild, nasmMissing } from '../helpers/nasm.js';
import { seabiosMissing } from '../helpers/hvm.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import { list, onWatch, writeCfg, xenstore, xlOk, type ListRow } from '../host/xl.js';

const ASM = join(DIST, '..', 'test', 'hvm', 'asm', 'lifecycle_boot.asm');

type Tap = { same(a: unknown, b: unknown, m: string): void };

/** Whether any qemu-dm of this host still runs (`pgrep -f xenemu-qemu-dm` with the host's name). */
function qemuDmPids(h: TestHost): number[] {
  try {
    return execFileSync('pgrep', ['-f', `xenemu-qemu-dm .*host=${h.name}$`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch { return []; }
}

/** Everything of guest `id` is gone: its segments, its device model, its tap sockets. */
async function allGone(t: Tap, h: TestHost, id: number, what: string): Promise<void> {
  await waitFor(() => !shmList(shmPrefix(h.name)).some((s) => s.includes(`.dom${id}.`)), 10_000, `d${id}'s segments gone (${what})`);
  await waitFor(() => qemuDmPids(h).length === 0, 10_000, `no qemu-dm left (${what})`);
  await waitFor(() => !readdirSync(h.rundir).some((f) => f.startsWith(`vif${id}.`) && f.endsWith('.tap')), 10_000, `d${id}'s tap sockets gone (${what})`);
  const left = shmList(shmPrefix(h.name)).filter((s) => /\.dom\d+\./.test(s) && !/\.dom0\./.test(s));
  const live = new Set((await list(h)).map((r) => r.id));
  t.same(left.filter((s) => !live.has(Number(/\.dom(\d+)\./.exec(s)![1]))), [], `${what}: only Domain-0's and live domains' segments`);
}

async function row(h: TestHost, name: string): Promise<ListRow | undefined> {
  return (await list(h)).find((r) => r.name === name);
}

const why = seabiosMissing() ?? nasmMissing() ?? false;

t.test('HVM lifecycle and faults', { skip: why }, async (t) => {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const xs = await xenstore(t, h);
  const images = new Map<string, string>();
  const image = (variant: string): string => {
    let p = images.get(variant);
    if (p) return p;
    const bin = nasmBuild(t, ASM, join(h.root, `boot-${variant || 'hello'}.bin`), variant ? [variant] : []);
    const img = Buffer.alloc(1 << 20);
    if (bin) img.set(bin, 0);
    p = join(h.root, `boot-${variant || 'hello'}.img`);
    writeFileSync(p, img);
    images.set(variant, p);
    return p;
  };
  const serialLog = (name: string) => join(h.rundir, 'logs', 'console', `${name}.log`);
  const dmLog = (name: string) => join(h.rundir, 'logs', `qemu-dm-${name}.log`);
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
  /** xl create of the boot sector `variant` as guest `name`; its domid. */
  const create = async (name: string, variant: string, extra: string[] = []): Promise<number> => {
    const cfg = writeCfg(h, `${name}.cfg`, [
      'type = "hvm"', `name = "${name}"`, 'memory = 32', 'videoram = 16', 'serial = "pty"', 'boot = "c"',
      `disk = [ 'file:${image(variant)},hda,w' ]`, "vif = [ 'bridge=xenbr0,model=e1000' ]", ...extra,
    ].join('\n'));
    await xlOk(h, 'create', cfg);
    return (await row(h, name))!.id;
  };
  const booted = (name: string, from = 0, timeout = 60_000) => waitFor(
    () => read(serialLog(name)).slice(from).includes('PM timer') || null, timeout, `${name} to boot\n${read(dmLog(name)).slice(-2000)}`);

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
    const t0 = Date.now();
    process.kill(dmPid, 'SIGKILL');
    await gone;
    const ms = Date.now() - t0;
    t.ok(ms < 1000, `destroyed ${ms} ms after qemu-dm was killed`);
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
      const again = onWatch(xs, '@introduceDomain', async () => {
        const x = await row(h, name);
        return x && x.id !== id ? x.id : undefined;
      });
      const newId = await again;
      t.not(newId, id, `back as d${newId}`);
      // The new guest boots: its own hello (the serial log keeps both boots).
      await waitFor(() => (read(serialLog(name)).match(/PM timer/g) ?? []).length >= 2 || null, 60_000, `${name} booted again`);
      await xlOk(h, 'destroy', name);
      await allGone(t, h, id, `${variant}: the first domain`);
      await allGone(t, h, newId, `${variant}: the restarted domain`);
    });
  }
  t.ok(!qemuDmPids(h).length && processAlive(process.pid), 'no qemu-dm of this host is left');
});
