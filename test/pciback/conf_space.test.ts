// pciback's configuration-space filter (processes/dom0/pciback/conf_space.ts)
// over a real device socket (test/fixtures/fake_pci_cfg.ts): each guest
// access is checked against what the device then holds, as Linux's
// xen-pciback conf_space_header.c would leave it.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfSpaceFilter, pciErrFromErrno, PCI_COMMAND_GUEST } from '../../processes/dom0/pciback/conf_space.js';
import { PciCfgClient } from '../../processes/dom0/pciback/cfg_client.js';
import { FakePciDevice, type FakePciOptions } from '../fixtures/fake_pci_cfg.js';
import {
  XEN_PCI_ERR_access_denied, XEN_PCI_ERR_dev_not_found, XEN_PCI_ERR_invalid_offset, XEN_PCI_ERR_not_implemented, XEN_PCI_ERR_op_failed,
} from '../../shared/abi/io/pciif.js';

async function setup(t: { teardown(fn: () => unknown): void }, o: FakePciOptions & { permissive?: boolean; timeoutMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-pcicfg-'));
  const dev = await FakePciDevice.listen(join(dir, '0000:03:00.0.cfg'), o);
  const client = new PciCfgClient(dev.path, o.timeoutMs);
  const logs: string[] = [];
  t.teardown(async () => { client.close(); await dev.close(); rmSync(dir, { recursive: true, force: true }); });
  const f = await ConfSpaceFilter.seize(client, { permissive: o.permissive, log: (m) => logs.push(m) });
  dev.writes.length = 0;
  return { dev, f, logs, client };
}

const ok = (value: number) => ({ err: 0, value });

t.test('reads: ids, class, capabilities as the device has them', async (t) => {
  const { f } = await setup(t);
  t.same(await f.read(0, 2), ok(0x1b36));
  t.same(await f.read(2, 2), ok(0x0010));
  t.same(await f.read(0, 4), ok(0x00101b36));
  t.same(await f.read(8, 4), ok(0x01080202), 'class 010802, revision 2');
  t.same(await f.read(0x34, 1), ok(0x40), 'capability pointer');
  t.same(await f.read(0x40, 4), ok(0x00030011), 'MSI-X capability header read through');
  t.same(await f.read(0x3c, 2), ok(0x010b), 'interrupt line and pin');
});

t.test('BARs: size probes and restores only', async (t) => {
  const { f, dev } = await setup(t, { bars: [{ size: 0x4000, mem64: true }, undefined, undefined, undefined, { size: 0x40, io: true }] });
  const bar0 = dev.read32(0x10);
  t.equal(bar0, 0xfe000004, 'a 64-bit memory BAR');
  t.same(await f.read(0x10, 4), ok(bar0));
  t.same(await f.write(0x10, 4, 0xffffffff), ok(0), 'size probe');
  t.same(await f.read(0x10, 4), ok(0xffffc004), 'reads give the size mask with the flags');
  t.equal(dev.read32(0x10), bar0, 'the device BAR is untouched by the probe');
  t.same(await f.write(0x14, 4, 0xffffffff), ok(0));
  t.same(await f.read(0x14, 4), ok(0xffffffff), 'upper half of a 64-bit BAR: all ones below 4 GiB');
  t.same(await f.write(0x10, 4, bar0), ok(0), 'restore');
  t.same(await f.read(0x10, 4), ok(bar0));
  t.same(await f.write(0x10, 4, 0x12340000), ok(0), 'a new address');
  t.same(await f.read(0x10, 4), ok(bar0), 'is not taken');
  t.same(await f.write(0x11, 1, 0xff), ok(0), 'a byte of the BAR');
  t.equal(dev.read32(0x10), bar0, 'the device BAR never moved');
  t.same(dev.writes.filter((w) => w.offset >= 0x10 && w.offset < 0x28), [], 'no write reached a BAR');
  t.same(await f.write(0x20, 4, 0xfffffffc), ok(0), 'I/O BAR probe: all ones but the flag bits');
  t.same(await f.read(0x20, 4), ok(0xffffffc1));
  t.same(await f.write(0x18, 4, 0xffffffff), ok(0));
  t.same(await f.read(0x18, 4), ok(0), 'an unimplemented BAR sizes to 0');
  t.same(await f.write(0x30, 4, 0xfffff800), ok(0), 'ROM probe');
  t.same(await f.read(0x30, 4), ok(0), 'no ROM');
});

t.test('COMMAND: decoding and bus mastering as pciback grants them, the rest virtual', async (t) => {
  const { f, dev } = await setup(t);
  t.equal(dev.read16(4), 0);
  t.same(await f.write(4, 2, 0x0407), ok(0), 'I/O, memory, master, INTx disable');
  t.equal(dev.read16(4), 0x0006, 'the device got memory decoding (it has no I/O BAR) and bus mastering, not INTx disable');
  t.same(await f.read(4, 2), ok(0x0407), 'the guest reads what it wrote');
  t.same(await f.write(4, 2, 0x0108), ok(0), 'SERR and special cycles');
  t.equal(dev.read16(4), 0x0000, 'decoding and mastering off; nothing else reaches the device');
  t.same(await f.read(4, 2), ok(0x0108 & ~PCI_COMMAND_GUEST), 'PCI_COMMAND_GUEST bits come from the device');
  t.same(await f.write(5, 1, 0x04), ok(0), 'a byte write of the high half');
  t.equal(dev.read16(4), 0, 'INTx disable stays Domain-0\'s');
});

t.test('permissive: unknown fields and PCI_COMMAND_GUEST bits reach the device', async (t) => {
  const { f, dev } = await setup(t, { permissive: true });
  t.same(await f.write(4, 2, 0x000e), ok(0));
  t.equal(dev.read16(4), 0x000e, 'memory, master and special cycles');
  t.same(await f.write(0x42, 2, 0x8003), ok(0), 'MSI-X enable in the capability');
  t.equal(dev.read16(0x42), 0x8003);
  t.same(await f.write(0x10, 4, 0x12340000), ok(0), 'BARs stay filtered');
  t.equal(dev.read32(0x10), 0xfe000004);
});

t.test('not permissive: unknown fields are read-only, logged once', async (t) => {
  const { f, dev, logs } = await setup(t);
  t.same(await f.write(0x42, 2, 0x8003), ok(0), 'MSI-X enable in the capability');
  t.same(await f.write(0x2c, 4, 0xdeadbeef), ok(0), 'subsystem ids');
  t.same(await f.write(6, 2, 0xffff), ok(0), 'status');
  t.same(await f.write(0x0d, 1, 0x40), ok(0), 'latency timer');
  t.same(dev.writes, [], 'nothing reached the device');
  t.same(await f.read(0x42, 2), ok(3));
  t.equal(logs.length, 1, 'one warning');
  t.match(logs[0], /read-only configuration space field at offset 0x42, size 2/);
  t.same(await f.write(0x0c, 1, 0x10), ok(0), 'cache line size');
  t.equal(dev.cfg[0x0c], 0x10, 'is written through');
  t.same(await f.write(0x0f, 1, 0x40), ok(0), 'BIST start');
  t.equal(dev.cfg[0x0f], 0x40);
});

t.test('offsets and sizes outside the conventional space are XEN_PCI_ERR_invalid_offset', async (t) => {
  const { f, dev } = await setup(t);
  const before = dev.requests;
  for (const [off, size] of [[256, 1], [0x100, 4], [0xfe, 4], [1, 2], [2, 4], [0, 3], [0, 0], [-4, 4], [0, 8]] as const) {
    t.same(await f.read(off, size), { err: XEN_PCI_ERR_invalid_offset, value: 0 }, `read ${off}/${size}`);
    t.same(await f.write(off, size, 0), { err: XEN_PCI_ERR_invalid_offset, value: 0 }, `write ${off}/${size}`);
  }
  t.equal(dev.requests, before, 'the device was not asked');
  t.same(await f.read(0xfc, 4), ok(0), 'the last dword is fine');
});

t.test('a device that does not answer fails the access, not pciback', async (t) => {
  const { f, dev } = await setup(t, { timeoutMs: 150 });
  dev.silent = true;
  const t0 = Date.now();
  t.same(await f.read(8, 4), { err: XEN_PCI_ERR_op_failed, value: 0 });
  t.ok(Date.now() - t0 < 1000, 'within the deadline');
  dev.silent = false;
  t.same(await f.read(0, 2), ok(0x1b36), 'and the next access is served');
});

t.test('errno to XEN_PCI_ERR (xen_pcibk_convert_errno)', async (t) => {
  t.equal(pciErrFromErrno(0), 0);
  t.equal(pciErrFromErrno(-19), XEN_PCI_ERR_dev_not_found);
  t.equal(pciErrFromErrno(-22), XEN_PCI_ERR_invalid_offset);
  t.equal(pciErrFromErrno(-38), XEN_PCI_ERR_not_implemented);
  t.equal(pciErrFromErrno(-1), XEN_PCI_ERR_access_denied);
  t.equal(pciErrFromErrno(-5), XEN_PCI_ERR_op_failed);
});
