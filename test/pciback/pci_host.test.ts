// PCI passthrough to a PV guest on a real host (hypervisor, its device
// processes: two NVMe controllers and an e1000, Domain-0 with pciback, the
// guest's pcifront): xl.cfg pci=, the back end's keys as libxl writes them,
// xl pci-list, the guest's lspci and setpci through pciback's filter
// (asserted on the device's own configuration space, read through its
// socket), xl's refusals (a device still Domain-0's is not assignable),
// hot-plug and hot-unplug, a stopped Domain-0, and the release at destroy.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readHostRecord, startHost, waitFor } from '../helpers/host.js';
import { list, xl, xlOk, xenstore, writeCfg } from '../host/xl.js';
import { attachGuest } from '../net/guests.js';
import { HostDevice, makeAssignable, rootWithImages } from '../helpers/pci.js';
import { deviceStatisticsPath, readStatistics } from '../../processes/dom0/backend_stats.js';
import { dom0SystemPath } from '../../shared/host.js';

t.test('PCI passthrough to a PV guest', async (t) => {
  const { root, images } = rootWithImages(['nvme0.img', 'nvme1.img']);
  const h = await startHost(t, { memory: 512, pcpus: 2, root, pci: [`nvme:${images[0]}`, 'e1000', `nvme:${images[1]}`] });
  const nvme = await HostDevice.open(t, h, '0000:03:00.0');
  const nic = await HostDevice.open(t, h, '0000:04:00.0');
  const nvme2 = await HostDevice.open(t, h, '0000:05:00.0');
  // 05 stays Domain-0's until the hot-plug wants it.
  await makeAssignable(h, '0000:03:00.0', '0000:04:00.0');
  const xs = await xenstore(t, h);
  /** libxl's userdata record of guest p (libxl-json). */
  const libxlJson = () => {
    const dir = dom0SystemPath(h.rundir, '/var/lib/xen');
    const f = readdirSync(dir).find((n) => n.startsWith(`userdata-d.${domid}.`) && n.endsWith('.libxl-json'))!;
    return JSON.parse(readFileSync(join(dir, f), 'utf8').replace(/\0$/, '').trim()) as { pcidevs?: unknown[] };
  };

  const cfg = writeCfg(h, 'p.cfg', 'name = "p"\nmemory = 32\npci = [ \'03:00.0\' ]\n');
  const c = await xl(h, ['create', cfg]);
  t.equal(c.code, 0, `create (${c.stderr})`);
  const domid = (await list(h)).find((r) => r.name === 'p')!.id;
  const g = await attachGuest(t, h, 'p', domid);
  const be = `/local/domain/0/backend/pci/${domid}/0`;
  const fe = `/local/domain/${domid}/device/pci/0`;
  await waitFor(async () => (await xs.tryRead(`${fe}/state`)) === '4', 15_000, 'pcifront Connected');

  await t.test('the back end as libxl writes it, pciback and pcifront connected', async (t) => {
    const want: Record<string, string> = {
      frontend: fe, 'frontend-id': String(domid), online: '1', state: '4', domain: 'p', num_devs: '1',
      'key-0': '0000:03:00.0', 'dev-0': '0000:03:00.0', 'opts-0': 'msitranslate=0,power_mgmt=0,permissive=0,rdm_policy=strict',
      'state-0': '3', 'vdev-0': '0000:00:00.00', root_num: '1', 'root-0': '0000:00',
    };
    for (const [k, v] of Object.entries(want)) t.equal(await xs.tryRead(`${be}/${k}`), v, `backend ${k}`);
    t.equal(await xs.tryRead(`${be}/vdevfn-0`), null, 'no vdevfn without a vslot');
    t.equal(await xs.tryRead(`${fe}/backend`), be);
    t.equal(await xs.tryRead(`${fe}/magic`), '7', 'XEN_PCI_MAGIC');
    t.match(await xs.tryRead(`${fe}/pci-op-ref`), /^\d+$/);
    t.match(await xs.tryRead(`${fe}/event-channel`), /^\d+$/);
    t.equal(await xs.tryRead(`/libxl/pci/0000-03-00-0/domid`), String(domid), "libxl's record of the owner");
    t.equal(await xs.tryRead(`/libxl/${domid}/device/pci/0/backend`), be);
    t.equal(nvme.resets(), 1, 'the device was reset before the guest got it');
    t.same(libxlJson().pcidevs, [{ bus: 3, vfunc_mask: 1, rdm_policy: 'strict' }], "libxl-json's pcidevs");
  });

  await t.test('xl pci-list, lspci in the guest', async (t) => {
    t.equal(await xlOk(h, 'pci-list', 'p'), 'Vdev Device\n00.0 0000:03:00.0\n');
    t.equal(await g.run('lspci -n'), '00:00.0 0108: 1b36:0010 (rev 02)\n');
    await waitFor(async () => /^nvme0n1 /m.test(await g.run('lsblk')), 15_000, 'nvme0n1');
    t.pass('the guest\'s NVMe driver has it: nvme0n1');
    t.equal(await g.run('lspci'), '00:00.0 Non-Volatile memory controller [0108]: Device [1b36:0010] (rev 02)\n');
  });

  await t.test('configuration space through pciback\'s filter, as the device holds it', async (t) => {
    const stats = () => readStatistics(deviceStatisticsPath(h.rundir, 'pci', domid, 0));
    t.equal(await g.run('setpci -s 00:00.0 VENDOR_ID'), '1b36\n');
    t.equal(await g.run('setpci -s 00:00.0 COMMAND=0407'), '');
    t.equal(await nvme.read16(4), 0x0006, 'the device decodes memory and masters the bus; INTx disable and I/O did not reach it');
    t.equal(await g.run('setpci -s 00:00.0 COMMAND'), '0407\n', 'the guest reads back what it wrote');
    const bar0 = await nvme.read32(0x10);
    t.equal(await g.run('setpci -s 00:00.0 BASE_ADDRESS_0=12340000'), '');
    t.equal(await nvme.read32(0x10), bar0, 'a BAR write that is not a probe does not move the BAR');
    t.equal(await g.run('setpci -s 00:00.0 BASE_ADDRESS_0=ffffffff BASE_ADDRESS_0'), 'ffffc004\n', 'a size probe reads the size');
    t.equal(await g.run(`setpci -s 00:00.0 BASE_ADDRESS_0=${bar0.toString(16)} BASE_ADDRESS_0`), `${bar0.toString(16)}\n`, 'and the restore the BAR');
    t.equal(await nvme.read32(0x10), bar0);
    const msix = await nvme.read16(0x42);
    t.equal(msix & 0xc000, 0x8000, 'MSI-X on (the guest\'s NVMe driver asked pciback, enable_msix), not all masked');
    t.equal(await g.run('setpci -s 00:00.0 42.W=4003'), '');
    t.equal(await nvme.read16(0x42), msix, 'the MSI-X capability is read-only without permissive');
    t.equal(await g.run('setpci -s 00:00.0 42.W'), `${msix.toString(16).padStart(4, '0')}\n`);
    const before = stats()['rejected.invalid_offset'] ?? 0;
    t.match(await g.run('setpci -s 00:00.0 100.B'), /^setpci: conf_read 0000:00:00\.0 0x100\/1: invalid_offset\n$/);
    t.match(await g.run('setpci -s 00:00.0 41.W'), /invalid_offset/, 'misaligned');
    t.equal(stats()['rejected.invalid_offset'], before + 2, 'pciback counted both, by name');
    t.ok(stats().conf_read > 0, 'conf_read counted');
  });

  await t.test('xl refuses as xl and libxl do', async (t) => {
    let r = await xl(h, ['pci-attach', 'p', '05:00.0']);
    t.equal(r.code, 1, 'a device Domain-0 still owns');
    t.match(r.stderr, /libxl: error: Domain \d+:PCI device 0:5:0\.0 is not assignable/);
    r = await xl(h, ['pci-attach', 'p', '09:00.0']);
    t.equal(r.code, 1, 'a device the host does not have');
    t.match(r.stderr, /libxl: error: Domain \d+:PCI device 0:9:0\.0 is not assignable/);
    r = await xl(h, ['pci-attach', 'p', '03:00']);
    t.equal(r.code, 2);
    t.equal(r.stderr, 'pci-attach: malformed PCI_SPEC_STRING "03:00"\n');
    r = await xl(h, ['pci-detach', 'p', '03:00.0,bogus=1']);
    t.equal(r.code, 2);
    t.equal(r.stderr, 'pci-detach: malformed PCI_SPEC_STRING "03:00.0,bogus=1"\n');
    r = await xl(h, ['pci-attach', 'nosuch', '04:00.0']);
    t.equal(r.code, 1);
    t.match(r.stderr, /nosuch/);
    r = await xl(h, ['pci-detach', 'p', '04:00.0']);
    t.equal(r.code, 1);
    t.match(r.stderr, /PCI device not attached to this domain/);
    const cfg2 = writeCfg(h, 'q.cfg', 'name = "q"\nmemory = 32\npci = [ \'0000:03:00.0\' ]\n');
    r = await xl(h, ['create', cfg2]);
    t.equal(r.code, 1, 'a second guest cannot have the device');
    t.match(r.stderr, /libxl: error: domain "q": Domain \d+:PCI device 0:3:0\.0 is not assignable/, 'a guest\'s device is not assignable (libxl\'s list leaves it out)');
    t.equal(readHostRecord(h.rundir)!.pci![0]!.owner, `d${domid}`, 'and it stays p\'s');
    t.notOk((await list(h)).some((d) => d.name === 'q'), 'and nothing of it is left');
    r = await xl(h, ['create', writeCfg(h, 'r.cfg', 'name = "r"\nmemory = 32\npci = [ \'05:00.0\' ]\n')]);
    t.equal(r.code, 1, 'a device Domain-0 still owns cannot be given at create');
    t.match(r.stderr, /libxl: error: domain "r": Domain \d+:PCI device 0:5:0\.0 is not assignable/);
    t.notOk((await list(h)).some((d) => d.name === 'r'), 'and nothing of that guest is left');
    t.equal(readHostRecord(h.rundir)!.pci![2]!.owner, 'Domain-0', 'the device is still Domain-0\'s');
    r = await xl(h, ['save', 'p', join(h.root, 'p.save')]);
    t.equal(r.code, 1);
    t.match(r.stderr, /cannot save a domain with PCI devices passed through/);
    t.notOk(existsSync(join(h.root, 'p.save')), 'no image written');
    const bad = writeCfg(h, 'b.cfg', 'name = "b"\nmemory = 32\npci = [ \'03:00.8\' ]\n');
    r = await xl(h, ['create', bad]);
    t.equal(r.code, 1);
    t.match(r.stderr, /unable to parse PCI_SPEC_STRING "03:00\.8"\. Reason: Invalid argument/);
  });

  await t.test('hot-plug and hot-unplug', async (t) => {
    await xlOk(h, 'pci-attach', 'p', '04:00.0@5,permissive=1');
    t.equal(await xlOk(h, 'pci-list', 'p'), 'Vdev Device\n00.0 0000:03:00.0\n05.0 0000:04:00.0\n');
    await waitFor(async () => (await g.run('lspci -n')).includes('00:01.0'), 15_000, 'the new device in lspci');
    t.equal(await g.run('lspci -n'), '00:00.0 0108: 1b36:0010 (rev 02)\n00:01.0 0200: 8086:100e (rev 03)\n');
    t.equal(await xs.tryRead(`${be}/vdevfn-1`), '28', 'vdevfn of vslot 5');
    t.equal(await xs.tryRead(`${be}/opts-1`), 'msitranslate=0,power_mgmt=0,permissive=1,rdm_policy=strict');
    t.equal(libxlJson().pcidevs?.length, 2, 'libxl-json has the new device');
    t.equal(await g.run('setpci -s 00:01.0 COMMAND=0107'), '');
    t.equal(await nic.read16(4), 0x0007, 'I/O decoding too: this device has an I/O BAR');

    // A permissive NVMe: a capability write reaches the device.
    await makeAssignable(h, '0000:05:00.0');
    await xlOk(h, 'pci-attach', 'p', '05:00.0@6,permissive=1');
    await waitFor(async () => (await g.run('lspci -n')).includes('00:02.0'), 15_000, 'the second NVMe in lspci');
    await waitFor(async () => /^nvme1n1 /m.test(await g.run('lsblk')), 15_000, 'nvme1n1');
    t.pass('the hot-plugged NVMe is the guest\'s nvme1n1');
    const msix = await nvme2.read16(0x42);
    t.equal(msix & 0xc000, 0x8000, 'its MSI-X on, not all masked');
    t.equal(await g.run(`setpci -s 00:02.0 42.W=${(msix | 0x4000).toString(16)}`), '');
    t.equal(await nvme2.read16(0x42), msix | 0x4000, 'permissive: the capability write reached the device (MSI-X mask all)');
    t.equal(await g.run('setpci -s 00:02.0 42.W'), `${(msix | 0x4000).toString(16)}\n`);
    const resets2 = nvme2.resets();
    await xlOk(h, 'pci-detach', 'p', '05:00.0');
    t.equal(nvme2.resets(), resets2 + 1, 'reset at its release');
    t.equal(await nvme2.read16(0x42), msix & ~0xc000, 'which turned MSI-X off again');
    await waitFor(async () => !/^nvme1n1 /m.test(await g.run('lsblk')), 10_000, 'nvme1n1 gone');
    t.pass('and nvme1n1 left the guest\'s disks');

    const resets = nic.resets();
    await xlOk(h, 'pci-detach', 'p', '04:00.0');
    t.equal(await xlOk(h, 'pci-list', 'p'), 'Vdev Device\n00.0 0000:03:00.0\n');
    t.equal(await g.run('lspci -n'), '00:00.0 0108: 1b36:0010 (rev 02)\n', 'the guest let go of it');
    t.equal(nic.resets(), resets + 1, 'the device was reset for its next owner');
    t.equal(await nic.read16(4), 0, 'its command register back to its default');
    t.equal(await xs.tryRead('/libxl/pci/0000-04-00-0/domid'), null);
    t.equal(await xs.tryRead(`${be}/num_devs`), '1');
    t.equal(await xs.tryRead(`${be}/dev-1`), null);
    t.equal(await xs.tryRead(`${be}/state`), '4', 'back end Connected again');
    t.equal(libxlJson().pcidevs?.length, 1, 'and libxl-json no longer');
  });

  await t.test('a stopped Domain-0: configuration accesses time out in the guest', async (t) => {
    const dom0 = readHostRecord(h.rundir)!.pids.domains[0]!;
    // A stopped device keeps the op in Domain-0 (pciback waits 1 s for it)
    // long enough to stop Domain-0 there; the keystrokes themselves pass
    // through Domain-0's xenconsoled.
    const dev = nvme.pid;
    const from = g.pty.text.length;
    process.kill(dev, 'SIGSTOP');
    let t0 = Date.now();
    try {
      g.pty.write('setpci -s 00:00.0 VENDOR_ID\r');
      await g.pty.until(/VENDOR_ID\r?\n/, from, 10_000);
      process.kill(dom0, 'SIGSTOP');
      t0 = Date.now();
      try {
        // pcifront gives up after 2 s; what it prints waits for xenconsoled.
        await new Promise((r) => setTimeout(r, 3000));
      } finally {
        process.kill(dom0, 'SIGCONT');
      }
    } finally {
      process.kill(dev, 'SIGCONT');
    }
    // The op answered dev_not_found: sysfs gives setpci all-ones, the log says why.
    await g.pty.until(/VENDOR_ID\r?\nffff\r?\n/, from, 15_000);
    t.ok(Date.now() - t0 >= 2000, 'all-ones after the timeout');
    await g.pty.until(/root@p:~# $/, from, 10_000);
    t.match(await g.run('dmesg'), /pcifront pci-0: pciback not responding!!!/, 'pcifront logged it');
    t.equal(await g.run('setpci -s 00:00.0 VENDOR_ID'), '1b36\n', 'the late answer is not taken for the next op, which is served');
    t.equal(await g.run('setpci -s 00:00.0 DEVICE_ID'), '0010\n');
  });

  await t.test('destroy gives the device back', async (t) => {
    const resets = nvme.resets();
    t.not(await nvme.read16(4), 0, 'p\'s driver left the command register set');
    await xlOk(h, 'destroy', 'p');
    await waitFor(async () => (await xs.tryRead('/libxl/pci/0000-03-00-0/domid')) === null, 10_000, 'the record gone');
    t.equal(nvme.resets(), resets + 1, 'reset for its next owner');
    t.equal(await nvme.read16(4), 0, 'its command register back to its default');
    t.equal(readHostRecord(h.rundir)!.pci![0]!.owner, 'quarantine', 'back in quarantine');
    t.equal(await xs.tryRead(be), null, 'the back end is gone');
    await waitFor(() => !existsSync(deviceStatisticsPath(h.rundir, 'pci', domid, 0)), 5_000, 'statistics gone');
    const cfg2 = writeCfg(h, 'q.cfg', 'name = "q"\nmemory = 32\npci = [ \'0000:03:00.0\' ]\n');
    t.equal((await xl(h, ['create', cfg2])).code, 0, 'another guest can have it now');
    const q = (await list(h)).find((r) => r.name === 'q')!.id;
    const gq = await attachGuest(t, h, 'q', q);
    await waitFor(async () => (await gq.run('lspci -n')).includes('0108'), 15_000, 'q sees it');
    await xlOk(h, 'destroy', 'q');
  });
});
