// reapHost (shared/host.ts), what `xenemu down` and every test teardown run
// after a host died: it must also kill a process of the host that host.json
// does not list (a spare guest process still loading when its hypervisor was
// SIGKILLed once stayed behind), whether its command line still has
// `--host <name>` or only its title (`xenemu-domU spare host=<name>`), and
// nothing of a host of the same name under another run root. An HVM guest's
// device model (`xenemu-qemu-dm <name> domid=<id> host=<name>`) is found by
// its title too.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostProcessesByScan, procCmdline, reapHost } from '../../shared/host.js';
import { nodeTitleArgs, qemuDmTitle, spareTitle } from '../../shared/runtime/title.js';
import { SPARE_FLAG } from '../../shared/wire/spare.js';
import { DIST, processAlive, productEnv, randomHostName, waitFor } from '../helpers/host.js';

/** A process that looks like one of host `name` in run directory `dir`, and ignores its parent's death. */
function strayProcess(t: { teardown(fn: () => unknown): void }, name: string, dir: string): ChildProcess {
  const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)', '--', '--host', name],
    { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '', XENEMU_HOST: name, XENEMU_HOST_DIR: dir } });
  t.teardown(() => { p.kill('SIGKILL'); });
  return p;
}

t.test('reapHost kills an unrecorded process of the host, not one of a same-named host elsewhere', async (t) => {
  const name = randomHostName();
  const roots = [mkdtempSync(join(tmpdir(), 'xenemu-run-')), mkdtempSync(join(tmpdir(), 'xenemu-run-'))];
  t.teardown(() => { for (const r of roots) rmSync(r, { recursive: true, force: true }); });
  const [mine, other] = roots.map((r) => join(r, name)) as [string, string];
  mkdirSync(mine);
  mkdirSync(other);
  const stray = strayProcess(t, name, mine);
  const elsewhere = strayProcess(t, name, other);
  await waitFor(() => hostProcessesByScan(mine, name).includes(stray.pid!), 5000, 'the stray process to be found');
  t.same(hostProcessesByScan(mine, name), [stray.pid], 'the scan finds the stray process, and only it');

  reapHost(mine, name);
  await waitFor(() => !processAlive(stray.pid!), 5000, 'the stray process to die');
  t.pass('the unrecorded process of the host is killed');
  t.ok(processAlive(elsewhere.pid!), 'the same-named host under another run root is left alone');
});

t.test('reapHost kills a spare guest process that only its title names', async (t) => {
  const name = randomHostName();
  const root = mkdtempSync(join(tmpdir(), 'xenemu-run-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, name);
  mkdirSync(dir);
  // The real guest program as the hypervisor starts a spare (processes/hypervisor/spare.ts),
  // without a lifeline: nothing but reapHost will end it. stdin stays open: it waits for a domain.
  const spare = spawn(process.execPath, [join(DIST, 'processes', 'domu', 'main.js'), '--host', name, SPARE_FLAG], {
    stdio: ['pipe', 'ignore', 'ignore'], argv0: spareTitle(name),
    env: productEnv({ XENEMU_HOST: name, XENEMU_HOST_DIR: dir, XENEMU_LIFELINE: '' }),
  });
  t.teardown(() => { spare.kill('SIGKILL'); });
  // Once it set its title, its command line is the title alone: no `--host`.
  await waitFor(() => procCmdline(spare.pid!).join(' ') === spareTitle(name), 10_000, 'the spare to set its title');
  t.same(procCmdline(spare.pid!), [spareTitle(name)], `its cmdline is "${spareTitle(name)}"`);
  t.same(hostProcessesByScan(dir, name), [spare.pid], 'the scan finds it by its title');

  reapHost(dir, name);
  await waitFor(() => !processAlive(spare.pid!), 5000, 'the spare to die');
  t.pass('reapHost killed it');
});

t.test('reapHost kills a device model that only its title names', async (t) => {
  const name = randomHostName();
  const root = mkdtempSync(join(tmpdir(), 'xenemu-run-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, name);
  mkdirSync(dir);
  // Started as Domain-0's toolstack starts qemu-dm (node's --title, argv0), without a lifeline.
  const title = qemuDmTitle(name, 3, 'hvm1');
  const dm = spawn(process.execPath, [...nodeTitleArgs(title), '-e', 'setInterval(() => {}, 1 << 30)'], {
    stdio: 'ignore', argv0: title, env: productEnv({ XENEMU_HOST: name, XENEMU_HOST_DIR: dir }),
  });
  t.teardown(() => { dm.kill('SIGKILL'); });
  await waitFor(() => procCmdline(dm.pid!).join(' ') === title, 10_000, 'the device model to have its title');
  t.same(hostProcessesByScan(dir, name), [dm.pid], `the scan finds "${title}"`);

  reapHost(dir, name);
  await waitFor(() => !processAlive(dm.pid!), 5000, 'the device model to die');
  t.pass('reapHost killed it');
});
