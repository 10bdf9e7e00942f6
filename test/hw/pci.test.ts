// PCI configuration space and BAR decode (shared/hw/pci.ts) and the address
// spaces BARs land in (shared/hw/iospace.ts), driven as firmware drives them.
import t from 'tap';
import { AddressSpace } from '../../shared/hw/iospace.js';
import { PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PciBus, PciFunction } from '../../shared/hw/pci.js';
import type { IoHandler } from '../../shared/hw/machine.js';

class Dev extends PciFunction {
  readonly seen: string[] = [];
  constructor() {
    super('dev', { vendor: 0x8086, device: 0x100e, classCode: 0x020000, interruptPin: 1 });
    const h = (what: string): IoHandler => ({
      read: (o, s) => { this.seen.push(`${what} r${s}@${o}`); return 0x5a; },
      write: (o, s, v) => { this.seen.push(`${what} w${s}@${o}=${v}`); },
    });
    this.addBar(0, { kind: 'mem', size: 0x20000, handler: h('mmio'), name: 'regs' });
    this.addBar(1, { kind: 'io', size: 0x40, handler: h('io'), name: 'ports' });
  }
}

t.test('identity, sizing, placement and decode follow the command register', async (t) => {
  const ports = new AddressSpace('ports', 0x10000);
  const mmio = new AddressSpace('mmio', 2 ** 32);
  const bus = new PciBus({ ports, mmio });
  const d = new Dev();
  bus.plug(d, 3);
  const devfn = 3 << 3;
  t.equal(bus.configRead(devfn, 0, 4), 0x100e8086, 'vendor and device');
  t.equal(bus.configRead(devfn, 0x0a, 2), 0x0200, 'class: Ethernet');
  t.equal(bus.configRead(devfn, 0x3d, 1), 1, 'INTA#');
  t.equal(bus.configRead(4 << 3, 0, 4), 0xffffffff, 'an empty slot reads all-ones');

  bus.configWrite(devfn, 0x10, 4, 0xffffffff);
  t.equal(bus.configRead(devfn, 0x10, 4), 0xfffe0000, 'memory BAR sizes as 128 KiB');
  bus.configWrite(devfn, 0x14, 4, 0xffffffff);
  t.equal(bus.configRead(devfn, 0x14, 4), 0xffffffc1, 'I/O BAR sizes as 64 ports, upper bits set as QEMU reads them (SeaBIOS computes ~(val & ~3) + 1)');
  bus.configWrite(devfn, 0x10, 4, 0xf0000000);
  bus.configWrite(devfn, 0x14, 4, 0xc000);
  t.equal(mmio.read(0xf0000004, 4), 0xffffffff, 'no decode before the command register enables it');
  bus.configWrite(devfn, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
  t.equal(mmio.read(0xf0000004, 4), 0x5a, 'memory decode on');
  t.equal(ports.read(0xc001, 1), 0x5a, 'I/O decode on');
  t.same(d.seen, ['mmio r4@4', 'io r1@1']);
  bus.configWrite(devfn, 0x10, 4, 0xe0000000);
  t.equal(mmio.read(0xf0000004, 4), 0xffffffff, 'moved away');
  mmio.write(0xe0000008, 4, 7);
  t.same(d.seen.at(-1), 'mmio w4@8=7', 'moved to the new address');
  bus.configWrite(devfn, PCI_COMMAND, 2, 0);
  t.equal(ports.read(0xc001, 1), 0xff, 'decode off again');
  t.same(mmio.list(), [], 'no region left');
});

t.test('address spaces refuse overlaps and dispatch by range', async (t) => {
  const s = new AddressSpace('ports', 0x10000);
  const h: IoHandler = { read: (o) => o, write: () => {} };
  s.register(0x1f0, 8, h, 'ide');
  t.throws(() => s.register(0x1f7, 2, h, 'clash'), /overlaps ide/);
  t.throws(() => s.register(0xffff, 2, h, 'edge'), /out of range/);
  t.equal(s.read(0x1f3, 1), 3);
  t.equal(s.read(0x1f7, 2), 0xffff, 'an access running past the range is unclaimed');
});

t.test('a 64-bit memory BAR: type bits, the upper half, decode only below 4 GiB', async (t) => {
  const mmio = new AddressSpace('mmio', 2 ** 32);
  const bus = new PciBus({ ports: new AddressSpace('ports', 0x10000), mmio });
  class Dev64 extends PciFunction {
    constructor() {
      super('dev64', { vendor: 0x1b36, device: 0x0010, classCode: 0x010802 });
      this.addBar(0, { kind: 'mem', size: 0x4000, is64: true, handler: { read: () => 0x77, write: () => {} }, name: 'regs' });
      t.throws(() => this.addBar(1, { kind: 'mem', size: 0x1000, handler: { read: () => 0, write: () => {} }, name: 'x' }), /upper half/, 'BAR1 is taken by the upper half');
      t.throws(() => this.addBar(5, { kind: 'mem', size: 0x1000, is64: true, handler: { read: () => 0, write: () => {} }, name: 'y' }), /no room/, 'BAR5 has no upper half');
    }
  }
  const d = new Dev64();
  bus.plug(d, 2);
  const devfn = 2 << 3;
  t.equal(bus.configRead(devfn, 0x10, 4), 0x4, 'type 10b: 64-bit');
  bus.configWrite(devfn, 0x10, 4, 0xffffffff);
  bus.configWrite(devfn, 0x14, 4, 0xffffffff);
  t.equal(bus.configRead(devfn, 0x10, 4), 0xffffc004, 'low half sizes as 16 KiB');
  t.equal(bus.configRead(devfn, 0x14, 4), 0xffffffff, 'the upper half is all address');
  bus.configWrite(devfn, 0x10, 4, 0xfe000000);
  bus.configWrite(devfn, 0x14, 4, 1);
  bus.configWrite(devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
  t.equal(d.barAddress(0), 0, 'above 4 GiB: not placed in the 32-bit space');
  t.same(mmio.list(), [], 'no region');
  bus.configWrite(devfn, 0x14, 4, 0);
  t.equal(mmio.read(0xfe000010, 4), 0x77, 'decodes once the upper half is 0');
  t.equal(bus.configRead(devfn, 0x14, 4), 0, 'upper half reads back');
});
