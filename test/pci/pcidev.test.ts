// Host PCI devices (docs/passthrough.md): one process per `xenemu up --pci`,
// BDFs from 0000:03:00.0 in --pci order, their titles, `xenemu status` and
// host.json, the configuration space socket, and nothing left behind when
// the host goes down or its hypervisor is SIGKILLed.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHost, waitFor, hostGone, readHostRecord, processAlive } from '../helpers/host.js';
import { PROBE } from '../helpers/probe.js';
import { procCmdline } from '../../shared/host.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import { PciCfgClient, PciCfgError } from '../../shared/hw/pci_cfg_client.js';
import { pciConfigSocket } from '../../shared/wire/pcidev.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';

function diskImage(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-pci-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'disk.img');
  writeFileSync(img, Buffer.alloc(1 << 20));
  return img;
}

t.test('--pci devices: processes, titles, BDFs, status, host.json, config space; down leaves nothing', async (t) => {
  const img = diskImage(t);
  const h = await startHost(t, { memory: 256, pcpus: 1, dom0: PROBE, pci: ['e1000', `nvme:${img}`] });
  const rec = readHostRecord(h.rundir)!;
  t.same(rec.pci?.map((d) => [d.bdf, d.model, d.owner, d.state]), [
    ['0000:03:00.0', 'e1000', 'Domain-0', 'running'],
    ['0000:04:00.0', 'nvme', 'Domain-0', 'running'],
  ], 'host.json lists the devices in --pci order, Domain-0 owns them at boot');
  const pids = rec.pci!.map((d) => d.pid);
  t.same(rec.pids.pcidevs, pids, 'their pids are the host\'s');
  t.equal(procCmdline(pids[0]!)[0], `xenemu-pcidev e1000 bdf=0000:03:00.0 host=${h.name}`, 'ps title of the e1000');
  t.equal(procCmdline(pids[1]!)[0], `xenemu-pcidev nvme bdf=0000:04:00.0 host=${h.name}`, 'ps title of the nvme');

  const { stdout } = await h.xenemu('status');
  t.match(stdout, new RegExp(`${h.name}\\s+0000:03:00.0\\s+e1000\\s+Domain-0\\s+running\\s+${pids[0]}`), 'status lists the e1000');
  t.match(stdout, new RegExp(`${h.name}\\s+0000:04:00.0\\s+nvme\\s+Domain-0\\s+running\\s+${pids[1]}`), 'and the nvme');

  const c = await PciCfgClient.connect(pciConfigSocket(h.rundir, '0000:03:00.0'));
  t.teardown(() => c.close());
  t.equal(await c.read(0, 2), 0x8086, 'vendor id');
  t.equal(await c.read(2, 2), 0x100e, 'device id (82540EM)');
  t.equal(await c.read(0, 4), 0x100e8086, 'both as one dword');
  t.equal(await c.read(0x0b, 1), 0x02, 'class: network');
  const nv = await PciCfgClient.connect(pciConfigSocket(h.rundir, '0000:04:00.0'));
  t.teardown(() => nv.close());
  t.equal(await nv.read(0, 4), 0x00101b36, 'the nvme\'s vendor and device id');
  t.equal(await nv.read(0x08, 4) >>> 8, 0x010802, 'class: NVMe');

  // Writes land and read back; an FLR puts them back to their defaults.
  await c.write(0x3c, 1, 0x0b);
  t.equal(await c.read(0x3c, 1), 0x0b, 'interrupt line written');
  await c.write(0x04, 2, 0x0006);
  t.equal(await c.read(0x04, 2) & 0x7, 0x6, 'command: memory and bus master');
  await c.reset();
  t.equal(await c.read(0x3c, 1), 0, 'FLR: interrupt line back to 0');
  t.equal(await c.read(0x04, 2), 0, 'FLR: command back to 0');

  const refused = async (op: number, size: number, offset: number) => {
    try { await c.request(op, size, offset, 0, 2000); return 0; } catch (e) { return (e as PciCfgError).errno; }
  };
  t.equal(await refused(0, 4, 256), -XEN_EINVAL, 'offset 256: -EINVAL');
  t.equal(await refused(0, 4, 2), -XEN_EINVAL, 'misaligned dword: -EINVAL');
  t.equal(await refused(0, 2, 1), -XEN_EINVAL, 'misaligned word: -EINVAL');
  t.equal(await refused(0, 3, 0), -XEN_EINVAL, 'size 3: -EINVAL');
  t.equal(await refused(1, 8, 0), -XEN_EINVAL, 'size 8: -EINVAL');
  t.equal(await refused(7, 4, 0), -XEN_EINVAL, 'unknown op: -EINVAL');
  t.equal(await c.read(0, 2), 0x8086, 'the connection still serves after refusals');

  c.close();
  nv.close();
  const all = h.pids();
  await h.down();
  await waitFor(() => hostGone(h.rundir, h.name, [...all, ...pids]), 5000, 'host gone');
  t.same(pids.filter(processAlive), [], 'device processes gone with the host');
  t.same(shmList(shmPrefix(h.name)), [], 'no segment left');
  t.notOk(existsSync(join(h.rundir, 'pci')), 'no socket left');
});

t.test('SIGTERM of a device process: it goes down, no config socket stays, the host records it gone', async (t) => {
  const h = await startHost(t, { memory: 256, pcpus: 1, dom0: PROBE, pci: ['e1000'] });
  const sock = pciConfigSocket(h.rundir, '0000:03:00.0');
  t.ok(existsSync(sock), 'the socket is there');
  const pid = readHostRecord(h.rundir)!.pci![0]!.pid;
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !processAlive(pid), 5000, 'device exited');
  t.notOk(existsSync(sock), 'no socket stays');
  await waitFor(() => readHostRecord(h.rundir)?.pci?.[0]?.state === 'gone', 5000, 'recorded gone');
  t.match(readFileSync(join(h.rundir, 'logs', 'pcidev-0000:03:00.0.log'), 'utf8'), /going down: SIGTERM/, 'and says why in its log');
});

t.test('SIGKILL of the hypervisor: the device processes go, leaving no segment or socket', async (t) => {
  const h = await startHost(t, { memory: 256, pcpus: 1, dom0: PROBE, pci: ['e1000', 'e1000'] });
  const rec = readHostRecord(h.rundir)!;
  const pids = rec.pci!.map((d) => d.pid);
  t.same(rec.pci!.map((d) => d.bdf), ['0000:03:00.0', '0000:04:00.0'], 'one bus each');
  const all = [...h.pids(), ...pids];
  process.kill(rec.pids.hypervisor, 'SIGKILL');
  await waitFor(() => hostGone(h.rundir, h.name, all), 3000, 'host gone');
  t.same(pids.filter(processAlive), [], 'device processes gone (lifeline)');
  t.same(shmList(shmPrefix(h.name)), [], 'no segment left');
  const left = existsSync(join(h.rundir, 'pci')) ? readdirSync(join(h.rundir, 'pci')).filter((f) => f.endsWith('.cfg')) : [];
  t.same(left, [], 'no config socket left');
});

t.test('xenemu up refuses a bad --pci', async (t) => {
  const { XENEMU_CLI } = await import('../helpers/host.js');
  const { spawnSync } = await import('node:child_process');
  const root = mkdtempSync(join(tmpdir(), 'xenemu-run-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const up = (spec: string) => spawnSync(process.execPath, [XENEMU_CLI, 'up', '--name', 'nopci', '--pci', spec],
                                         { env: { ...process.env, XENEMU_RUN_DIR: root }, encoding: 'utf8' });
  const r1 = up('virtio');
  t.not(r1.status, 0);
  t.match(r1.stderr, /bad --pci 'virtio'/);
  const r2 = up('nvme:/nonexistent/disk.img');
  t.not(r2.status, 0);
  t.match(r2.stderr, /no disk image \/nonexistent\/disk.img/);
  t.notOk(existsSync(join(root, 'nopci', 'hypervisor.pid')), 'no host started');
});
