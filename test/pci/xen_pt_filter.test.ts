// qemu-dm's xen_pt configuration-space filter (processes/qemu-dm/xen_pt.ts)
// over the NVMe model itself (shared/hw/nvme_pci.ts, as the device process
// hosts it, its BAR placed by the "host"): what the guest reads and writes,
// what reaches the device, and the memory_mapping calls a BAR placement
// makes. The whole path, with Linux, is hvm_passthrough.test.ts.
import t from 'tap';
import { XenPtDevice, type PtHooks } from '../../processes/qemu-dm/xen_pt.js';
import { PCI_CAP_ID_MSIX } from '../../shared/hw/pci.js';
import { PCI_COMMAND, PciBus } from '../../shared/hw/pci.js';
import { NvmeHostDriver, BAR0 as HOST_BAR0 } from '../hw/nvme_host.js';
import { testMachine } from '../hw/fakes.js';

const GUEST_BAR0 = 0xf0004000;

function setup(permissive = false, msi = false) {
  const host = new NvmeHostDriver();
  const maps: Array<[string, boolean, number, number, number]> = [];
  const logs: string[] = [];
  const calls: string[] = [];
  let nextPirq = 60;
  const hooks: PtHooks = {
    map: (kind, add, g, h, nr) => { maps.push([kind, add, g, h, nr]); return 0; }, log: (l) => logs.push(l),
    ...(msi ? {
      mapPirq: (entry: number, base: number) => { calls.push(`map_pirq ${entry} 0x${base.toString(16)}`); return nextPirq++; },
      unmapPirq: (pirq: number) => { calls.push(`unmap_pirq ${pirq}`); return 0; },
      bindMsi: (pirq: number, gvec: number | null, gflags: number) => {
        calls.push(gvec === null ? `unbind ${pirq}` : `bind ${pirq} 0x${gvec.toString(16)} 0x${gflags.toString(16)}`);
        return 0;
      },
    } : {}),
  };
  const reaching: Array<[number, number, number]> = [];
  const pt = new XenPtDevice('0000:04:00.0', {
    read: (o, s) => host.cfgRead(o, s),
    write: (o, s, v) => { reaching.push([o, s, v]); host.cfgWrite(o, s, v); return true; },
  }, [{ index: 0, kind: 'mem', size: 16384, addr: HOST_BAR0 }], hooks, permissive);
  const machine = testMachine();
  const bus = new PciBus(machine);
  bus.plug(pt, 5);
  const rd = (o: number, s: 1 | 2 | 4) => bus.configRead(5 << 3, o, s);
  const wr = (o: number, s: 1 | 2 | 4, v: number) => bus.configWrite(5 << 3, o, s, v);
  return { host, pt, maps, logs, reaching, rd, wr, calls, mmio: machine.mmio };
}

t.test('identity is the device\'s; BARs are the guest\'s and never reach the device', async (t) => {
  const { host, maps, reaching, rd, wr } = setup();
  t.equal(rd(0, 4), host.cfgRead(0, 4), 'vendor and device');
  t.equal(rd(0x08, 4), host.cfgRead(0x08, 4), 'revision and class');
  t.equal(rd(0x3d, 1), 1, 'pin INTA, the device\'s');

  t.equal(rd(0x10, 4), 0x4, 'BAR0 unplaced: the device\'s type bits (64-bit memory), no address');
  t.equal(rd(0x14, 4), 0, 'its upper half');
  wr(0x10, 4, 0xffffffff);
  wr(0x14, 4, 0xffffffff);
  t.equal(rd(0x10, 4), 0xffffc004, 'a size probe reads the 16 KiB mask');
  t.equal(rd(0x14, 4), 0xffffffff, 'the upper half probes as all ones');
  wr(0x10, 4, GUEST_BAR0);
  wr(0x14, 4, 0);
  t.equal(rd(0x10, 4), (GUEST_BAR0 | 4) >>> 0, 'the guest\'s address reads back');
  t.equal(host.cfgRead(0x10, 4), (HOST_BAR0 | 4) >>> 0, 'the device\'s BAR0 is still where the host placed it');
  t.same(reaching.filter(([o]) => o >= 0x10 && o < 0x28), [], 'no BAR write reached the device');
  t.same(maps, [], 'nothing mapped while memory decode is off');

  wr(PCI_COMMAND, 2, 0x0006);
  t.equal(host.cfgRead(PCI_COMMAND, 2) & 0x7, 0x6, 'memory and bus master reach the device');
  t.same(maps, [['mem', true, GUEST_BAR0 / 4096, HOST_BAR0 / 4096, 4]], 'decode on: memory_mapping of the 4 frames');
  wr(0x10, 4, 0xf0010000);
  t.same(maps.slice(1), [['mem', false, GUEST_BAR0 / 4096, HOST_BAR0 / 4096, 4], ['mem', true, 0xf0010, HOST_BAR0 / 4096, 4]],
    'a move: the old placement unmapped, the new one mapped');
  wr(0x10, 4, 0xffffffff);
  t.same(maps.slice(3), [['mem', false, 0xf0010, HOST_BAR0 / 4096, 4]], 'a size probe with decode on unmaps (no mapping at the mask)');
  wr(0x10, 4, GUEST_BAR0);
  wr(PCI_COMMAND, 2, 0x0004);
  t.same(maps.slice(4), [['mem', true, GUEST_BAR0 / 4096, HOST_BAR0 / 4096, 4], ['mem', false, GUEST_BAR0 / 4096, HOST_BAR0 / 4096, 4]],
    'placed again, then decode off: unmapped');
  t.equal(host.cfgRead(PCI_COMMAND, 2) & 0x2, 0, 'memory decode off on the device too');
});

t.test('MSI-X hidden, the PCI Express capability shown read-only; the rest filtered', async (t) => {
  const { host, rd, wr, logs } = setup();
  t.equal(host.cfgRead(0x34, 1), 0x40, 'the device\'s list starts at its MSI-X capability');
  t.equal(host.cfgRead(0x40, 1), PCI_CAP_ID_MSIX);
  t.equal(rd(0x34, 1), 0x80, 'the guest\'s starts at PCI Express');
  t.equal(rd(0x80, 1), 0x10, 'PCI Express capability id');
  t.equal(rd(0x81, 1), 0, 'and nothing after it');
  t.equal(rd(0x82, 2), host.cfgRead(0x82, 2), 'its registers are the device\'s');
  t.equal(rd(0x40, 4), 0, 'the MSI-X capability reads 0');
  t.ok(rd(0x06, 2) & 0x10, 'status says there is a capability list');
  wr(0x40, 4, 0x80000000);
  t.equal(host.cfgRead(0x42, 2) & 0x8000, 0, 'MSI-X enable does not reach the device');
  wr(0x88, 2, 0xffff);
  t.match(logs.join('\n'), /write to 0x40 dropped \(not permissive\)/, 'a dropped write is logged');
  wr(0x3c, 1, 11);
  t.equal(rd(0x3c, 1), 11, 'the interrupt line is the guest\'s scratch');
  wr(0x0c, 1, 0x10);
  t.equal(rd(0x0c, 1), 0x10, 'cache line size kept');
  wr(0x00, 4, 0x12345678);
  t.equal(rd(0x00, 4), host.cfgRead(0, 4), 'ids read-only');
  t.equal(rd(0x30, 4), 0, 'no expansion ROM shown');
});

t.test('permissive: writes into a shown capability reach the device', async (t) => {
  const { reaching, wr } = setup(true);
  wr(0x88, 2, 0x0010);
  t.ok(reaching.some(([o]) => o === 0x88), 'PCI Express device control written through');
  wr(0x42, 2, 0x8000);
  t.notOk(reaching.some(([o]) => o === 0x42 || o === 0x43), 'a hidden capability stays hidden');
});

t.test('MSI-X shown when the device model can bind it: the table trapped, each entry bound with bind_pt_irq', async (t) => {
  const { host, maps, calls, rd, wr, mmio, pt, logs } = setup(false, true);
  t.equal(rd(0x34, 1), 0x40, 'the guest\'s list starts at MSI-X');
  t.equal(rd(0x40, 1), PCI_CAP_ID_MSIX, 'MSI-X capability id');
  t.equal(rd(0x41, 1), 0x80, 'then PCI Express');
  t.equal(rd(0x42, 2), host.cfgRead(0x42, 2), 'table size as the device\'s, MSI-X off');
  t.equal(rd(0x44, 4), host.cfgRead(0x44, 4), 'table offset and BIR the device\'s');
  wr(0x10, 4, GUEST_BAR0);
  wr(0x14, 4, 0);
  wr(PCI_COMMAND, 2, 0x0006);
  const f = GUEST_BAR0 / 4096;
  const hf = HOST_BAR0 / 4096;
  t.same(maps, [['mem', true, f, hf, 2], ['mem', true, f + 3, hf + 3, 1]], 'BAR0 mapped but for the table\'s page (the PBA stays the device\'s)');
  t.same(mmio.list().map((r) => [r.base, r.length]), [[GUEST_BAR0 + 0x2000, 4096]], 'the table\'s page is qemu-dm\'s');

  // Linux's msix_setup: entries written masked, MSI-X enabled with the function masked, then unmasked.
  const entry = (i: number) => GUEST_BAR0 + 0x2000 + 16 * i;
  wr(0x42, 2, 0xc000);
  t.equal(host.cfgRead(0x42, 2) & 0xc000, 0xc000, 'enable and function mask reach the device');
  mmio.write(entry(1), 4, 0xfee01008); // destination 1, redirection hint
  mmio.write(entry(1) + 4, 4, 0);
  mmio.write(entry(1) + 8, 4, 0x0141); // lowest priority, vector 0x41
  t.equal(mmio.read(entry(1) + 8, 4), 0x141, 'the entry reads back as the guest wrote it');
  t.equal(mmio.read(entry(1) + 12, 4), 1, 'masked');
  wr(0x42, 2, 0x8000);
  t.same(calls, [], 'masked entries are not bound');
  mmio.write(entry(1) + 12, 4, 0);
  t.same(calls, [`map_pirq 1 0x${(HOST_BAR0 + 0x2000).toString(16)}`, 'bind 60 0x41 0x11101'],
    'unmasked: a pirq for entry 1 (the table\'s host address), bound to vector 0x41 with its gflags and UNMASKED');
  t.match(logs.join('\n'), /MSI-X entry 1 bound: pirq 60, vector 0x41/, 'logged');
  mmio.write(entry(1) + 12, 4, 1);
  t.same(calls.slice(2), ['bind 60 0x41 0x1101'], 'masked again: bound without UNMASKED (the hypervisor masks the device\'s entry)');
  mmio.write(entry(1) + 12, 4, 0);
  wr(0x42, 2, 0x0000);
  t.same(calls.slice(3), ['bind 60 0x41 0x11101', 'unbind 60', 'unmap_pirq 60'], 'MSI-X off: unbound and unmapped');
  t.equal(host.cfgRead(0x42, 2) & 0xc000, 0, 'and off on the device');
  pt.sawIoreq('mem', entry(0));
  t.equal(pt.stats.barIoreqs, 0, 'an access to the trapped table is not a BAR ioreq');
  wr(PCI_COMMAND, 2, 0x0004);
  t.same(maps.slice(2), [['mem', false, f, hf, 2], ['mem', false, f + 3, hf + 3, 1]], 'decode off: both pieces unmapped');
  t.same(mmio.list(), [], 'and the table\'s page let go');
});
