// Hostile PCI front ends against pciback on a real host: garbage op
// numbers, ops for devices the guest does not have, offsets out of range,
// MSI asked twice, MSI-X with no or too many vectors, an op flood with a
// storm of events, a pci-op-ref that was never granted, a wrong magic. Each
// op is answered exactly once, each refusal is counted under its name
// (processes/dom0/pciback/reject.ts) in the statistics file, nothing
// refused reaches the device (its configuration space, read through its
// socket, is unchanged), and a normal guest with its own device (real device
// processes: an NVMe controller, three e1000s) is served all along.
import t from 'tap';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { probe, type Probe } from '../helpers/probe.js';
import { list, xlOk, xenstore, writeCfg } from '../host/xl.js';
import { attachGuest } from '../net/guests.js';
import { HostDevice, makeAssignable, rootWithImages } from '../helpers/pci.js';
import { deviceStatisticsPath, readStatistics } from '../../processes/dom0/backend_stats.js';
import {
  XEN_PCI_ERR_dev_not_found, XEN_PCI_ERR_invalid_offset, XEN_PCI_ERR_not_implemented, XEN_PCI_ERR_op_failed,
  XEN_PCI_OP_conf_read, XEN_PCI_OP_conf_write, XEN_PCI_OP_enable_msi, XEN_PCI_OP_enable_msix,
} from '../../shared/abi/io/pciif.js';

const HOSTILE = join(DIST, 'test', 'fixtures', 'hostile_pcifront.js');

t.test('hostile pcifronts', async (t) => {
  const { root, images } = rootWithImages(['good.img']);
  const h = await startHost(t, { memory: 512, pcpus: 2, root, pci: [`nvme:${images[0]}`, 'e1000', 'e1000', 'e1000'] });
  const bdfs = ['03', '04', '05', '06'].map((b) => `0000:${b}:00.0`);
  const devs = await Promise.all(bdfs.map((b) => HostDevice.open(t, h, b)));
  await makeAssignable(h, ...bdfs);
  const xs = await xenstore(t, h);

  // A well-behaved guest with its own device, served all along.
  await xlOk(h, 'create', writeCfg(h, 'good.cfg', 'name = "good"\nmemory = 32\npci = [ \'03:00.0\' ]\n'));
  const good = await attachGuest(t, h, 'good', (await list(h)).find((r) => r.name === 'good')!.id);
  await waitFor(async () => (await good.run('lspci -n')).includes('1b36:0010'), 15_000, 'the good guest has its device');

  const evil = async (name: string, bus: string): Promise<{ domid: number; p: Probe; stats(): Record<string, number> }> => {
    await xlOk(h, 'create', writeCfg(h, `${name}.cfg`, `name = "${name}"\nmemory = 32\nkernel = "${HOSTILE}"\npci = [ '${bus}:00.0' ]\n`));
    const domid = (await list(h)).find((r) => r.name === name)!.id;
    const p = probe(h.rundir, domid, 30_000);
    t.teardown(() => p.close());
    await waitFor(async () => (await xs.tryRead(`/local/domain/0/backend/pci/${domid}/0/state`)) === '3', 10_000, `${name}: pciback Initialised`);
    return { domid, p, stats: () => readStatistics(deviceStatisticsPath(h.rundir, 'pci', domid, 0)) };
  };

  await t.test('bad ops are answered once each, refused by name', async (t) => {
    const e = await evil('evil', '04');
    t.same(await e.p.call('connect', {}), { state: 4, error: null }, 'a proper handshake: Connected');
    const ops0 = e.stats().ops ?? 0;
    const op = (o: Record<string, number>) => e.p.call('op', o);
    // A proper write first, so that a refused one reaching the device would show.
    t.equal((await op({ cmd: XEN_PCI_OP_conf_write, offset: 4, size: 2, value: 0x0006 })).err, 0, 'a write of its own device');
    t.equal(await devs[1]!.read16(4), 0x0007, 'the device decodes memory and I/O (pci_enable_device: it has both BAR kinds) and masters the bus');
    const cfg0 = await devs[1]!.snapshot();
    const cases: Array<[string, Record<string, number>, number, string | null]> = [
      ['a read of the device', { cmd: XEN_PCI_OP_conf_read, offset: 0, size: 2 }, 0, null],
      ['op 99', { cmd: 99 }, XEN_PCI_ERR_not_implemented, 'bad_op'],
      ['op 0xffffffff', { cmd: 0xffffffff }, XEN_PCI_ERR_not_implemented, 'bad_op'],
      ['aer_detected from the front end', { cmd: 6 }, XEN_PCI_ERR_not_implemented, 'bad_op'],
      ['a write to a slot it does not have', { cmd: XEN_PCI_OP_conf_write, devfn: 8, offset: 4, size: 2, value: 7 }, XEN_PCI_ERR_dev_not_found, 'dev_not_found'],
      ['another bus', { cmd: XEN_PCI_OP_conf_write, bus: 3, devfn: 0, offset: 4, size: 2 }, XEN_PCI_ERR_dev_not_found, 'dev_not_found'],
      ['offset 256', { cmd: XEN_PCI_OP_conf_read, offset: 256, size: 4 }, XEN_PCI_ERR_invalid_offset, 'invalid_offset'],
      ['offset -4', { cmd: XEN_PCI_OP_conf_read, offset: -4, size: 4 }, XEN_PCI_ERR_invalid_offset, 'invalid_offset'],
      ['size 3', { cmd: XEN_PCI_OP_conf_write, offset: 4, size: 3 }, XEN_PCI_ERR_invalid_offset, 'invalid_offset'],
      ['size 0x7fffffff', { cmd: XEN_PCI_OP_conf_read, offset: 0, size: 0x7fffffff }, XEN_PCI_ERR_invalid_offset, 'invalid_offset'],
      ['misaligned', { cmd: XEN_PCI_OP_conf_read, offset: 2, size: 4 }, XEN_PCI_ERR_invalid_offset, 'invalid_offset'],
      ['enable_msix of 0 vectors', { cmd: XEN_PCI_OP_enable_msix, value: 0 }, XEN_PCI_ERR_op_failed, 'bad_msix_count'],
      ['enable_msix of 1000 vectors', { cmd: XEN_PCI_OP_enable_msix, value: 1000 }, XEN_PCI_ERR_op_failed, 'bad_msix_count'],
    ];
    for (const [what, o, err, reason] of cases) {
      const before = e.stats();
      const r = await op(o);
      t.ok(r.answered, `${what}: answered`);
      t.equal(r.err, err, `${what}: err ${err}`);
      const after = e.stats();
      if (reason) t.equal(after[`rejected.${reason}`], (before[`rejected.${reason}`] ?? 0) + 1, `${what}: rejected.${reason}`);
      t.equal(after.rejected, (before.rejected ?? 0) + (reason ? 1 : 0), `${what}: ${reason ? 'one refusal' : 'no refusal'}`);
    }
    const msiState0 = e.stats()['rejected.msi_state'] ?? 0;
    const m1 = await op({ cmd: XEN_PCI_OP_enable_msi });
    const m2 = await op({ cmd: XEN_PCI_OP_enable_msi });
    t.ok(m1.value > 0, `the first enable_msi: a pirq (${m1.value})`);
    t.equal(e.stats()['rejected.msi_state'], msiState0 + 1, 'the second refused as msi_state');
    t.same([m1.answered, m1.err, m2.answered, m2.err], [true, 0, true, XEN_PCI_ERR_op_failed],
      'enable_msi twice: each answered, the second op_failed (MSI is on already)');
    // The other counters are written once a second.
    await waitFor(() => e.stats().ops === ops0 + cases.length + 3, 5_000, 'ops counted');
    t.equal(e.stats().ops, ops0 + cases.length + 3, 'each op served exactly once');
    t.equal(e.stats().msi_unavailable ?? 0, 0, 'the hypervisor maps pirqs: MSI was never unavailable');
    t.same(await devs[1]!.snapshot(), cfg0, 'nothing reached the device: its configuration space is as it was');
    t.equal(await good.run('setpci -s 00:00.0 VENDOR_ID'), '1b36\n', 'the good guest is served');

    await t.test('a flood: every op answered once, the good guest served meanwhile', async (t) => {
      const before = e.stats();
      const flood = e.p.call('flood', { n: 2000, notifies: 20, cmds: [99, XEN_PCI_OP_conf_read, 7, XEN_PCI_OP_enable_msi], offset: 0, size: 4 });
      // While it runs, the good guest's accesses keep being served.
      for (let i = 0; i < 5; i++) t.equal(await good.run('setpci -s 00:00.0 DEVICE_ID', 10_000), '0010\n', `good guest access ${i} during the flood`);
      const f = await flood;
      t.equal(f.answered, 2000, `2000 ops answered (${f.ms} ms)`);
      await waitFor(() => e.stats().ops >= (before.ops ?? 0) + 2000, 5_000, `ops counted (${JSON.stringify(e.stats())})`);
      t.equal(e.stats().ops, (before.ops ?? 0) + 2000, 'each op served exactly once');
      t.equal(e.stats()['rejected.bad_op'], (before['rejected.bad_op'] ?? 0) + 1000, 'ops 99 and 7 refused, 1000 of them');
      const k = await e.p.call('kicks', { n: 5000 });
      t.equal(k.active, false, 'events without an op: nothing to answer');
      t.equal(e.stats().ops, (before.ops ?? 0) + 2000, 'and nothing served');
      t.same((await e.p.call('op', { cmd: XEN_PCI_OP_conf_read, offset: 0, size: 2 })).err, 0, 'the flooder is still served');
    });
  });

  await t.test('a pci-op-ref never granted: that guest does not connect, others are served', async (t) => {
    const e = await evil('badref', '05');
    const r = await e.p.call('connect', { ref: 4000 });
    t.equal(r.state, 5, 'back end Closing');
    t.match(r.error, /mapping pci-op-ref 4000/);
    await waitFor(() => e.stats()['rejected.bad_pci_op_ref'] === 1, 5_000, 'counted');
    t.equal(await good.run('setpci -s 00:00.0 VENDOR_ID'), '1b36\n', 'the good guest is served');
  });

  await t.test('a wrong magic: pciback halts for that guest', async (t) => {
    const e = await evil('badmagic', '06');
    const r = await e.p.call('connect', { magic: '6' });
    t.equal(r.state, 5);
    t.match(r.error, /version mismatch \(6\/7\) with pcifront/);
    t.equal(e.stats()['rejected.bad_magic'], 1);
  });

  await t.test('destroying the hostile guests gives their devices back', async (t) => {
    for (const n of ['evil', 'badref', 'badmagic']) await xlOk(h, 'destroy', n);
    const owners = async () => {
      const out: string[] = [];
      for (const d of await xs.directory('/libxl/pci').catch(() => [] as string[])) if ((await xs.tryRead(`/libxl/pci/${d}/domid`)) !== null) out.push(d);
      return out;
    };
    await waitFor(async () => (await owners()).length === 1, 10_000, 'one device still assigned');
    t.same(await owners(), ['0000-03-00-0'], 'only the good guest\'s');
    t.equal(devs[1]!.resets(), 2, 'each hostile guest\'s device was reset when it went (and when it came)');
    t.equal(await devs[1]!.read16(4), 0, 'its command register back to its default');
    t.notOk(existsSync(deviceStatisticsPath(h.rundir, 'pci', 99, 0)));
  });
});
