// The i440FX host bridge and configuration mechanism #1 (shared/hw/i440fx.ts),
// the PIIX3 ISA bridge's PIRQ routes and reset control (shared/hw/piix3.ts),
// and the chipset buildPc assembles (shared/hw/pc.ts), driven through ports
// 0xCF8/0xCFC as Linux's pci_check_type1 and SeaBIOS's pciinit do.
import t from 'tap';
import { buildPc } from '../../shared/hw/pc.js';
import { PciFunction } from '../../shared/hw/pci.js';
import { pciIntxLink } from '../../shared/hw/piix3.js';
import { makeMachine } from './machine_fixture.js';

t.test('configuration mechanism #1: address register, data at the right offset, other buses', async (t) => {
  const m = makeMachine();
  buildPc(m);
  m.outl(0xcf8, 0x80000000);
  t.equal(m.inl(0xcf8), 0x80000000, 'CONFIG_ADDRESS reads back');
  t.equal(m.inl(0xcfc), 0x12378086, 'dword: 8086:1237 at 00.0');
  t.equal(m.inw(0xcfe), 0x1237, 'word at 0xCFE is the device ID');
  t.equal(m.inb(0xcfd), 0x80, 'byte at 0xCFD');
  // Linux's pci_check_type1: a byte write to 0xCFB must leave CONFIG_ADDRESS alone.
  m.outb(0xcfb, 0x01);
  t.equal(m.inl(0xcf8), 0x80000000, 'a byte write to 0xCFB is not CONFIG_ADDRESS');
  m.outw(0xcf8, 0x1234);
  t.equal(m.inl(0xcf8), 0x80000000, 'nor a word write to 0xCF8');
  m.outl(0xcf8, 0xff000003);
  t.equal(m.inl(0xcf8), 0x80000000, 'reserved bits 30:24 and 1:0 read as 0');
  m.outl(0xcf8, 0x80010000);
  t.equal(m.inl(0xcfc), 0xffffffff, 'bus 1 does not exist');
  m.outl(0xcf8, 0x00000000);
  t.equal(m.inl(0xcfc), 0xffffffff, 'enable bit clear: no configuration cycle');
  m.outl(0xcf8, 0x80001800);
  t.equal(m.inl(0xcfc), 0xffffffff, 'empty slot 3 before anything is plugged there');
  // Word and byte writes land at (offset & 3).
  m.outl(0xcf8, 0x80000058);
  m.outb(0xcfd, 0x30);
  m.outw(0xcfe, 0x3333);
  t.equal(m.cfgRead(0, 0, 0x59, 1), 0x30, 'PAM0 by a byte write at 0xCFD');
  t.equal(m.cfgRead(0, 0, 0x5a, 2), 0x3333, 'PAM1/PAM2 by a word write at 0xCFE');
});

t.test('i440FX identity, PAM and SMRAM read back, D_LCK locks', async (t) => {
  const m = makeMachine();
  const pc = buildPc(m);
  t.equal(m.cfgRead(0, 0, 0x08, 4), 0x06000002, 'host bridge class, revision 2');
  t.equal(m.cfgRead(0, 0, 0x0e, 1), 0x00, 'single-function header');
  // SeaBIOS's make_bios_writable: PAM0 = 0x30, PAM1-6 = 0x33.
  m.cfgWrite(0, 0, 0x59, 1, 0x30);
  for (let i = 1; i < 7; i++) m.cfgWrite(0, 0, 0x59 + i, 1, 0x33);
  t.same([...pc.i440fx.pam], [0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33], 'PAM stored');
  t.equal(m.cfgRead(0, 0, 0x72, 1), 0x02, 'SMRAM: C_BASE_SEG 010b at reset');
  m.cfgWrite(0, 0, 0x72, 1, 0x4a);
  t.equal(m.cfgRead(0, 0, 0x72, 1), 0x4a, 'D_OPEN and G_SMRAME set; C_BASE_SEG read-only');
  m.cfgWrite(0, 0, 0x72, 1, 0x5a);
  t.equal(m.cfgRead(0, 0, 0x72, 1), 0x1a, 'D_LCK clears D_OPEN');
  m.cfgWrite(0, 0, 0x72, 1, 0x40);
  t.equal(m.cfgRead(0, 0, 0x72, 1), 0x1a, 'locked: D_OPEN cannot be set, D_LCK cannot be cleared');
  m.cfgWrite(0, 0, 0x70, 4, 0x00200000);
  t.equal(m.cfgRead(0, 0, 0x72, 1), 0x3a, 'D_CLS stays writable, also through a dword write');
});

t.test('the chipset and its slot layout, enumerated as SeaBIOS does', async (t) => {
  const m = makeMachine();
  const pc = buildPc(m);
  const found: string[] = [];
  for (let dev = 0; dev < 32; dev++) {
    const fns = m.cfgRead(dev, 0, 0x0e, 1) & 0x80 ? 8 : 1;
    for (let fn = 0; fn < fns; fn++) {
      const id = m.cfgRead(dev, fn, 0, 4);
      if (id === 0xffffffff) continue;
      const cls = m.cfgRead(dev, fn, 0x08, 4) >>> 8;
      found.push(`${dev}.${fn} ${(id & 0xffff).toString(16)}:${(id >>> 16).toString(16)} ${cls.toString(16).padStart(6, '0')}`);
    }
  }
  t.same(found, [
    '0.0 8086:1237 060000',
    '1.0 8086:7000 060100',
    '1.1 8086:7010 010180',
    '2.0 5853:1 ff8000',
  ], 'host bridge, ISA bridge (multi-function), IDE, Xen platform device');
  t.equal(pc.freeSlot(), 3, 'VGA goes to 03.0 (libxl adds it with -device, after the platform device)');
  class Nic extends PciFunction {
    constructor() { super('nic', { vendor: 0x8086, device: 0x100e, classCode: 0x020000, interruptPin: 1 }); }
  }
  pc.bus.plug(new PciFunction('vga', { vendor: 0x1013, device: 0x00b8, classCode: 0x030000 }), pc.freeSlot());
  pc.bus.plug(new Nic(), pc.freeSlot());
  t.equal(m.cfgRead(4, 0, 0, 4), 0x100e8086, 'the first NIC at 04.0');

  const m2 = makeMachine();
  const pc2 = buildPc(m2, { xenPlatform: false });
  t.equal(pc2.platform, null);
  t.equal(pc2.freeSlot(), 2, 'without the platform device (xen_platform_pci=0) VGA is at 02.0');
  t.equal(m2.inw(0x10), 0xffff, 'and port 0x10 is not claimed');
});

t.test('PIIX3: PIRQ routes reported as xen_set_pci_link_route, the swizzle, reset control', async (t) => {
  const routes: Array<[number, number]> = [];
  const resets: boolean[] = [];
  const m = makeMachine();
  const pc = buildPc(m, { onPirqRoute: (link, irq) => routes.push([link, irq]), onReset: (hard) => resets.push(hard) });
  t.same([0x60, 0x61, 0x62, 0x63].map((r) => m.cfgRead(1, 0, r, 1)), [0x80, 0x80, 0x80, 0x80], 'routes disabled at reset');
  // SeaBIOS's piix_isa_bridge_setup: one byte per link, IRQs 10, 10, 11, 11.
  [10, 10, 11, 11].forEach((irq, i) => m.cfgWrite(1, 0, 0x60 + i, 1, irq));
  t.same(routes, [[0, 10], [1, 10], [2, 11], [3, 11]], 'each write reported');
  t.same([0, 1, 2, 3].map((l) => pc.piix3.linkIrq(l)), [10, 10, 11, 11]);
  routes.length = 0;
  m.cfgWrite(1, 0, 0x60, 4, 0x8b058079);
  t.same(routes, [[0, 9], [1, 0], [2, 5], [3, 0]], 'a dword write reports all four; a disabled route is IRQ 0 for Xen');
  t.equal(m.cfgRead(1, 0, 0x60, 1), 0x09, 'reserved bits 6:4 read as 0');
  t.equal(pc.piix3.linkIrq(1), null, 'disabled');
  t.equal(pciIntxLink(3, 0), 2, 'as SeaBIOS routes it for QEMU\'s PIIX3: (device - 1 + INTx) & 3');
  t.equal(pciIntxLink(4, 1), 0);
  t.equal(pc.piix3.isaIrqFor(3, 0), 5, '03.0 INTA# is link C -> IRQ 5');
  t.equal(pc.piix3.isaIrqFor(3, 3), null, '03.0 INTD# is link B, disabled');
  t.equal(m.cfgRead(1, 0, 0x0e, 1), 0x80, 'multi-function header');

  m.outb(0xcf9, 0x02);
  t.equal(m.inb(0xcf9), 0x02, 'RCR keeps the reset type');
  t.same(resets, []);
  m.outb(0xcf9, 0x06);
  t.same(resets, [true], 'bit 2 asks for a (hard) reset');
});
