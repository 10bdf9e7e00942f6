// The Xen platform device (shared/hw/xen_platform.ts): its PCI identity and
// BARs, and the unplug protocol of hvm-emulated-unplug.pandoc spoken as
// Linux's xen_unplug_emulated_devices speaks it, with the emulated disks and
// NICs of buildPc (shared/hw/pc.ts) going away.
import t from 'tap';
import { buildPc } from '../../shared/hw/pc.js';
import { MemoryBlockBackend } from '../../shared/hw/block.js';
import { PciFunction } from '../../shared/hw/pci.js';
import { makeMachine, patterned } from './machine_fixture.js';
import { AtaDriver, PRI, SEC, STAT } from './ata_driver.js';

class Nic extends PciFunction {
  constructor() {
    super('e1000', { vendor: 0x8086, device: 0x100e, classCode: 0x020000, interruptPin: 1 });
    this.addBar(0, { kind: 'mem', size: 0x20000, name: 'regs', handler: { read: () => 0x12345678, write: () => {} } });
  }
}

t.test('PCI identity and BARs as qemu-xen\'s xen-platform', async (t) => {
  const m = makeMachine();
  buildPc(m);
  t.equal(m.cfgRead(2, 0, 0x00, 4), 0x00015853, '5853:0001');
  t.equal(m.cfgRead(2, 0, 0x08, 4), 0xff800001, 'class 0xFF80, revision 1');
  t.equal(m.cfgRead(2, 0, 0x2c, 4), 0x00015853, 'subsystem 5853:0001');
  t.equal(m.cfgRead(2, 0, 0x3d, 1), 1, 'INTA#');
  t.equal(m.cfgRead(2, 0, 0x04, 2) & 3, 3, 'I/O and memory decode on from the start');
  m.cfgWrite(2, 0, 0x10, 4, 0xffffffff);
  t.equal(m.cfgRead(2, 0, 0x10, 4), 0xffffff01, 'BAR0: 256 ports');
  m.cfgWrite(2, 0, 0x14, 4, 0xffffffff);
  t.equal(m.cfgRead(2, 0, 0x14, 4), 0xff000008, 'BAR1: 16 MiB prefetchable memory');
  m.cfgWrite(2, 0, 0x10, 4, 0xc100);
  m.cfgWrite(2, 0, 0x14, 4, 0xf0000000);
  t.equal(m.mmio.read(0xf0000010, 4), 0, 'MMIO reads 0');
  t.equal(m.inb(0xc100), 0, 'BAR0 +0: platform flags');
  t.equal(m.inb(0xc104), 0xff, 'BAR0 elsewhere: all-ones');
});

t.test('the unplug protocol as Linux speaks it: magic, version, product, build, mask', async (t) => {
  const logs: string[] = [];
  const unplugs: number[] = [];
  const romLocks: boolean[] = [];
  const m = makeMachine();
  const hda = new MemoryBlockBackend(patterned(64 * 512));
  const hdb = new MemoryBlockBackend(patterned(64 * 512));
  const iso = new MemoryBlockBackend(new Uint8Array(16 * 2048), true);
  const pc = buildPc(m, {
    ide: {
      primaryMaster: { kind: 'disk', backend: hda },
      primarySlave: { kind: 'disk', backend: hdb },
      secondaryMaster: { kind: 'cdrom', backend: iso },
    },
    xenPlatform: { onLog: (l) => logs.push(l), onUnplug: (mk) => unplugs.push(mk), onRomLock: (l) => romLocks.push(l) },
  });
  const nicSlot = pc.freeSlot() + 1; // VGA would take the first free slot
  const nic = new Nic();
  pc.bus.plug(nic, nicSlot);
  m.cfgWrite(nicSlot, 0, 0x10, 4, 0xe0000000);
  m.cfgWrite(nicSlot, 0, 0x04, 2, 0x0002);
  t.equal(m.mmio.read(0xe0000000, 4), 0x12345678, 'the NIC decodes');

  // check_platform_magic(): XEN_IOPORT_MAGIC, XEN_IOPORT_PROTOVER, product 3 (Linux), build 1.
  t.equal(m.inw(0x10), 0x49d2, 'magic');
  t.equal(m.inb(0x12), 1, 'protocol version 1');
  m.outw(0x12, 0x0003);
  m.outl(0x10, 0x00000001);
  t.same([pc.platform!.product, pc.platform!.build], [3, 1], 'product and build number stored');
  t.equal(m.inw(0x10), 0x49d2, 'not blacklisted');
  for (const c of 'hello from the guest\n') m.outb(0x12, c.charCodeAt(0));
  t.same(logs, ['hello from the guest'], 'a log line per newline');
  t.equal(m.inw(0x14), 0xffff, 'other words read all-ones');

  // xen_unplug_emulated_devices: XEN_UNPLUG_ALL_IDE_DISKS | XEN_UNPLUG_ALL_NICS.
  const ata = new AtaDriver(m, PRI);
  t.ok(ata.identify(0), 'hda answers IDENTIFY before the unplug');
  m.outw(0x10, 0x0003);
  t.same(unplugs, [3], 'the host hears of it');
  t.equal(ata.identify(0), null, 'hda is gone');
  t.equal(ata.status, 0, 'the primary channel reads as empty');
  t.equal(ata.identify(1), null, 'hdb is gone');
  const cd = new AtaDriver(m, SEC);
  cd.select(0);
  t.ok(cd.identify(0, 0xa1), 'the CD-ROM stays');
  t.equal(cd.status & STAT.ERR, 0);
  t.equal(m.cfgRead(nicSlot, 0, 0, 4), 0xffffffff, 'the NIC left the bus');
  t.equal(m.mmio.read(0xe0000000, 4), 0xffffffff, 'and its BAR no longer decodes');
  t.equal(m.cfgRead(1, 1, 0, 4), 0x70108086, 'the IDE controller itself stays (it has the CD-ROM)');

  // Platform flags: the ROM lock.
  m.outb(0x10, 1);
  t.equal(m.inb(0x10), 1, 'flags read back');
  t.same(romLocks, [true], 'ROM lock reported');
  pc.platform!.reset();
  t.same(romLocks, [true, false], 'reset unlocks');
});

t.test('auxiliary unplug keeps the primary master; blacklisting; SUSE-era BAR log', async (t) => {
  const m = makeMachine();
  const logs: string[] = [];
  const pc = buildPc(m, {
    ide: {
      primaryMaster: { kind: 'disk', backend: new MemoryBlockBackend(new Uint8Array(8192)) },
      primarySlave: { kind: 'disk', backend: new MemoryBlockBackend(new Uint8Array(8192)) },
      secondaryMaster: { kind: 'disk', backend: new MemoryBlockBackend(new Uint8Array(8192)) },
    },
    xenPlatform: { isBlacklisted: (product, build) => product === 1 && build === 42, onLog: (l) => logs.push(l) },
  });
  m.outw(0x10, 0x0004);
  const pri = new AtaDriver(m, PRI);
  const sec = new AtaDriver(m, SEC);
  t.ok(pri.identify(0), 'primary master stays');
  t.equal(pri.identify(1), null, 'primary slave gone');
  t.equal(sec.identify(0), null, 'secondary master gone');

  m.outw(0x12, 1);
  m.outl(0x10, 42);
  t.equal(m.inw(0x10), 0xd249, 'blacklisted build: the magic turns');
  m.outl(0x10, 43);
  t.equal(m.inw(0x10), 0x49d2, 'another build is fine');

  m.cfgWrite(2, 0, 0x10, 4, 0xc100);
  for (const c of 'via BAR0\n') m.outb(0xc108, c.charCodeAt(0));
  t.same(logs, ['via BAR0'], 'BAR0 +8 logs too');
  // A log line without newline is cut at 4095 bytes, never grows without bound.
  for (let i = 0; i < 10000; i++) m.outb(0x12, 0x41);
  t.same(logs.slice(1).map((l) => l.length), [4095, 4095], 'long lines are split');
  t.same(pc.platform!.unplugs, [4]);
});
