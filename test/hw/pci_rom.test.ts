// The PCI expansion ROM BAR (shared/hw/pci.ts addRomBar), sized, placed and
// read as SeaBIOS does it (src/fw/pciinit.c pci_bios_get_bar, src/optionroms.c
// map_pcirom), and the stdvga carrying vgabios-stdvga behind it.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { AddressSpace } from '../../shared/hw/iospace.js';
import { PCI_COMMAND, PCI_COMMAND_MEMORY, PCI_ROM_ADDRESS, PCI_ROM_ADDRESS_ENABLE, PCI_ROM_ADDRESS_MASK, PciBus, PciFunction } from '../../shared/hw/pci.js';
import { VgaPci } from '../../shared/hw/vga.js';

/** An option ROM image: 0x55AA, its size in 512-byte blocks, and a PCI data structure naming the device. */
function optionRom(blocks: number, vendor: number, device: number): Uint8Array {
  const rom = new Uint8Array(blocks * 512);
  const v = new DataView(rom.buffer);
  rom[0] = 0x55; rom[1] = 0xaa; rom[2] = blocks;
  v.setUint16(0x18, 0x40, true);
  rom.set([0x50, 0x43, 0x49, 0x52], 0x40); // "PCIR"
  v.setUint16(0x44, vendor, true);
  v.setUint16(0x46, device, true);
  return rom;
}

class RomDev extends PciFunction {
  constructor(image: Uint8Array) {
    super('nic', { vendor: 0x8086, device: 0x100e, classCode: 0x020000 });
    this.addRomBar(image);
  }
}

t.test('sizing, placing, enabling and reading as SeaBIOS does', async (t) => {
  const ports = new AddressSpace('ports', 0x10000);
  const mmio = new AddressSpace('mmio', 2 ** 32);
  const bus = new PciBus({ ports, mmio });
  const image = optionRom(80, 0x8086, 0x100e); // 40 KiB: a 64 KiB BAR
  bus.plug(new RomDev(image), 5);
  const devfn = 5 << 3;
  // pci_bios_get_bar: write the mask, read the size, restore.
  const old = bus.configRead(devfn, PCI_ROM_ADDRESS, 4);
  t.equal(old, 0, 'unplaced');
  bus.configWrite(devfn, PCI_ROM_ADDRESS, 4, PCI_ROM_ADDRESS_MASK);
  const sz = bus.configRead(devfn, PCI_ROM_ADDRESS, 4);
  t.equal(sz, 0xffff0000, '64 KiB');
  t.equal((~(sz & PCI_ROM_ADDRESS_MASK) + 1) >>> 0, 0x10000);
  bus.configWrite(devfn, PCI_ROM_ADDRESS, 4, old);
  // pci_region_map_one_entry places it, the command register enables memory space.
  bus.configWrite(devfn, PCI_ROM_ADDRESS, 4, 0xfeb00000);
  bus.configWrite(devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
  t.equal(mmio.read(0xfeb00000, 2), 0xffff, 'not decoded until the ROM enable bit');
  // map_pcirom: size again with ~ENABLE, then enable at the placed address.
  const orig = bus.configRead(devfn, PCI_ROM_ADDRESS, 4);
  bus.configWrite(devfn, PCI_ROM_ADDRESS, 4, ~PCI_ROM_ADDRESS_ENABLE >>> 0);
  t.equal(bus.configRead(devfn, PCI_ROM_ADDRESS, 4), 0xffff0000, 'sizing keeps enable clear');
  bus.configWrite(devfn, PCI_ROM_ADDRESS, 4, (orig & ~PCI_ROM_ADDRESS_ENABLE) | PCI_ROM_ADDRESS_ENABLE);
  t.equal(mmio.read(0xfeb00000, 2), 0xaa55, 'option ROM signature');
  t.equal(mmio.read(0xfeb00000 + 0x40, 4), 0x52494350, '"PCIR"');
  t.equal(mmio.read(0xfeb00000 + 0xfffc, 4), 0, 'past the image reads zero');
  mmio.write(0xfeb00000, 2, 0);
  t.equal(mmio.read(0xfeb00000, 2), 0xaa55, 'read-only');
  bus.configWrite(devfn, PCI_ROM_ADDRESS, 4, 0xfeb00000);
  t.equal(mmio.read(0xfeb00000, 2), 0xffff, 'disabled again');
  t.same(mmio.list(), []);
});

t.test('a function without a ROM keeps 0x30 at zero', async (t) => {
  const bus = new PciBus({ ports: new AddressSpace('p', 0x10000), mmio: new AddressSpace('m', 2 ** 32) });
  bus.plug(new VgaPci(), 2);
  bus.configWrite(2 << 3, PCI_ROM_ADDRESS, 4, 0xffffffff);
  t.equal(bus.configRead(2 << 3, PCI_ROM_ADDRESS, 4), 0, 'no ROM BAR');
});

const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';
t.test('the stdvga offers vgabios-stdvga behind its ROM BAR', { skip: existsSync(VGABIOS) ? false : `${VGABIOS} missing (Debian's seabios package)` }, async (t) => {
  const image = new Uint8Array(readFileSync(VGABIOS));
  const mmio = new AddressSpace('mmio', 2 ** 32);
  const bus = new PciBus({ ports: new AddressSpace('ports', 0x10000), mmio });
  bus.plug(new VgaPci({ rom: image }), 2);
  bus.configWrite(2 << 3, PCI_ROM_ADDRESS, 4, 0xfebe0000 | PCI_ROM_ADDRESS_ENABLE);
  bus.configWrite(2 << 3, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
  t.equal(mmio.read(0xfebe0000, 2), 0xaa55, 'signature');
  t.equal(mmio.read(0xfebe0000 + 2, 1) * 512, image.length, 'size byte matches the file');
  const pcir = mmio.read(0xfebe0000 + 0x18, 2);
  t.equal(mmio.read(0xfebe0000 + pcir, 4), 0x52494350, 'PCI data structure');
  t.equal(mmio.read(0xfebe0000 + pcir + 4, 4), 0x11111234, 'it is the ROM of 1234:1111, which SeaBIOS checks against the device');
});
