// PIIX3 IDE with ATA disks (shared/hw/piix_ide.ts, shared/hw/ide.ts), driven
// through its ports as SeaBIOS's ata.c and Linux's ata_piix drive it: reset
// and signatures, IDENTIFY, PIO and bus-master DMA reads and writes, CHS,
// LBA28 and LBA48, errors, interrupts, and hostile programming.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPc } from '../../shared/hw/pc.js';
import { FileBlockBackend, MemoryBlockBackend } from '../../shared/hw/block.js';
import type { BlockBackend } from '../../shared/hw/backend.js';
import type { PiixIdeDrives } from '../../shared/hw/piix_ide.js';
import { makeMachine, patterned, type TestMachine } from './machine_fixture.js';
import { AtaDriver, PRI, SEC, STAT, ataString, writePrds } from './ata_driver.js';

const BMIBA = 0xc000;

function setup(drives: PiixIdeDrives, ram = 1 << 20): { m: TestMachine; ata: AtaDriver; pc: ReturnType<typeof buildPc> } {
  const m = makeMachine(ram);
  const pc = buildPc(m, { ide: drives });
  // What hvmloader/SeaBIOS do: enable both channels' decode, place BAR4, enable I/O and bus mastering.
  m.cfgWrite(1, 1, 0x40, 2, 0x8000);
  m.cfgWrite(1, 1, 0x42, 2, 0x8000);
  m.cfgWrite(1, 1, 0x20, 4, BMIBA);
  m.cfgWrite(1, 1, 0x04, 2, 0x0005);
  return { m, ata: new AtaDriver(m), pc };
}

const disk = (sectors: number, opts: { readOnly?: boolean } = {}): MemoryBlockBackend =>
  new MemoryBlockBackend(patterned(sectors * 512), opts.readOnly ?? false);

t.test('PCI identity: 8086:7010, legacy-mode IDE, BAR4 of 16 ports', async (t) => {
  const { m } = setup({});
  t.equal(m.cfgRead(1, 1, 0, 4), 0x70108086);
  t.equal(m.cfgRead(1, 1, 0x08, 4) >>> 8, 0x010180, 'class 01.01, prog-if 0x80');
  m.cfgWrite(1, 1, 0x20, 4, 0xffffffff);
  t.equal(m.cfgRead(1, 1, 0x20, 4), 0xfffffff1, 'BAR4 sizes as 16 I/O ports');
  t.equal(m.cfgRead(1, 1, 0x41, 1) & 0x80, 0x80, 'decode enable reads back (Linux checks 0x41 bit 7)');
});

t.test('reset, signature and IDENTIFY DEVICE as SeaBIOS probes a disk', async (t) => {
  const { m, ata } = setup({ primaryMaster: { kind: 'disk', backend: disk(20000) } });
  ata.softReset();
  ata.select(0);
  t.equal(ata.status & (STAT.BSY | STAT.DRDY), STAT.DRDY, 'DRDY after SRST');
  t.same([ata.reg(2), ata.reg(3), ata.reg(4), ata.reg(5)], [1, 1, 0, 0], 'ATA signature');
  t.equal(ata.error, 1, 'diagnostic code: passed');
  const id = ata.identify(0)!;
  t.ok(id, 'DRQ for IDENTIFY data');
  t.equal(id[0], 0x0040, 'fixed ATA device');
  t.equal(ataString(id, 27, 20), 'QEMU HARDDISK');
  t.equal(ataString(id, 10, 10), 'QM00001');
  t.equal(id[60]! | (id[61]! << 16), 20000, 'LBA28 capacity');
  t.equal(id[100], 20000, 'LBA48 capacity');
  t.equal(id[83]! & (1 << 10), 1 << 10, '48-bit feature set');
  t.equal(id[49]! & 0x300, 0x300, 'LBA and DMA');
  t.equal(id[63]! & 7, 7, 'MWDMA 0-2');
  t.equal(id[88]! & 0x3f, 0x3f, 'UDMA 0-5');
  t.equal(id[47]! & 0xff, 16, 'up to 16 sectors per READ MULTIPLE block');
  t.same([id[1], id[3], id[6]], [19, 16, 63], 'default CHS translation');
  const bytes = new Uint8Array(id.buffer);
  t.equal(bytes[510], 0xa5, 'integrity word signature');
  t.equal(bytes.reduce((a, b) => a + b, 0) & 0xff, 0, 'checksum');
  t.equal(ata.status & STAT.DRQ, 0, 'DRQ clears after the 512 bytes');
  // An absent slave: registers are shadows, status reads 0, commands are ignored.
  ata.select(1);
  t.equal(ata.reg(6), 0xb0, 'device register reads back (SeaBIOS checks it)');
  t.equal(ata.status, 0, 'absent device 1 status');
  ata.command(0xec);
  t.equal(ata.status, 0, 'command to an absent device ignored');
  ata.softReset();
  ata.select(1);
  t.same([ata.reg(2), ata.reg(3), ata.reg(4), ata.reg(5)], [1, 1, 0xff, 0xff], 'absent device 1 after SRST: 0xFF signature (libata: no device)');
  // A channel with no drive at all reads 0.
  const sec = new AtaDriver(m, SEC);
  t.equal(sec.status, 0, 'empty channel');
});

t.test('PIO READ/WRITE SECTORS, MULTIPLE and EXT, with the interrupt protocol', async (t) => {
  const img = disk(4096);
  const { m, ata } = setup({ primaryMaster: { kind: 'disk', backend: img } });
  const ev = m.irq.events;
  ata.lba28(0x20, 0, 100, 3); // READ SECTORS
  t.equal(ata.irqLevel, 1, 'INTRQ for the first block');
  t.equal(ata.altStatus & (STAT.DRQ | STAT.BSY), STAT.DRQ, 'alternate status: DRQ');
  t.equal(ata.irqLevel, 1, 'alternate status does not clear INTRQ');
  t.equal(ata.status & STAT.DRQ, STAT.DRQ);
  t.equal(ata.irqLevel, 0, 'status read clears INTRQ');
  const got = new Uint8Array(3 * 512);
  for (let s = 0; s < 3; s++) {
    if (s > 0) { t.equal(ata.irqLevel, 1, `INTRQ for block ${s}`); ata.ack(); }
    got.set(ata.insw(512), s * 512);
  }
  t.same(got, img.data.subarray(100 * 512, 103 * 512), 'data');
  t.equal(ata.irqLevel, 0, 'no INTRQ after the last PIO-in block');
  t.equal(ata.status, STAT.DRDY | STAT.DSC, 'ready');
  t.same([ata.reg(3), ata.reg(4)], [103, 0], 'LBA registers advanced past the transfer');
  t.same(ev.slice(0, 2), ['isa14=1', 'isa14=0'], 'the ISA line is raised and lowered, not pulsed repeatedly');

  // 32-bit PIO (rep insl), as Linux's ata_sff_data_xfer32.
  ata.lba28(0x20, 0, 7, 1);
  ata.ack();
  t.same(ata.insl(512), img.data.subarray(7 * 512, 8 * 512), 'dword data port');

  // WRITE SECTORS: the first block without INTRQ, the end with it.
  const data = new Uint8Array(1024).map((_, i) => (i * 3) & 0xff);
  ata.lba28(0x30, 0, 50, 2);
  t.equal(ata.irqLevel, 0, 'no INTRQ before the first PIO-out block');
  t.equal(ata.status & STAT.DRQ, STAT.DRQ);
  ata.outsw(data.subarray(0, 512));
  t.equal(ata.irqLevel, 1, 'INTRQ after block 1');
  t.equal(ata.status & STAT.DRQ, STAT.DRQ, 'DRQ for block 2');
  ata.outsw(data.subarray(512));
  t.equal(ata.irqLevel, 1, 'INTRQ at the end');
  t.equal(ata.status, STAT.DRDY | STAT.DSC);
  t.same(img.data.subarray(50 * 512, 52 * 512), data, 'written');

  // SET MULTIPLE 4, READ MULTIPLE 6 sectors: blocks of 4 and 2.
  ata.lba28(0xc6, 0, 0, 4);
  t.equal(ata.status & STAT.ERR, 0, 'SET MULTIPLE 4');
  t.equal(ata.identify(0)![59], 0x104, 'IDENTIFY word 59 shows it');
  ata.lba28(0xc4, 0, 200, 6);
  ata.ack();
  const b1 = ata.insw(4 * 512);
  t.equal(ata.irqLevel, 1, 'one INTRQ per multiple block');
  ata.ack();
  const b2 = ata.insw(2 * 512);
  t.equal(ata.status & STAT.DRQ, 0);
  t.same([...b1, ...b2], [...img.data.subarray(200 * 512, 206 * 512)], 'READ MULTIPLE data');
  ata.lba28(0xc6, 0, 0, 3);
  t.equal(ata.status & STAT.ERR, STAT.ERR, 'SET MULTIPLE 3 (not a power of two) aborts');
  t.equal(ata.error, 0x04, 'ABRT');
  ata.lba28(0xc5, 0, 300, 5); // WRITE MULTIPLE, 4 + 1
  ata.outsw(new Uint8Array(4 * 512).fill(0xee));
  ata.ack();
  ata.outsw(new Uint8Array(512).fill(0xdd));
  t.equal(ata.status, STAT.DRDY | STAT.DSC);
  t.equal(img.data[303 * 512], 0xee);
  t.equal(img.data[304 * 512], 0xdd);
  ata.lba28(0xc6, 0, 0, 0);
  ata.lba28(0xc4, 0, 0, 1);
  t.equal(ata.status & STAT.ERR, STAT.ERR, 'READ MULTIPLE with multiple mode off aborts');

  // READ SECTORS EXT at LBA 4000, and the HOB bytes read back.
  ata.lba48(0x24, 0, 4000, 2);
  ata.ack();
  t.same(ata.insw(512), img.data.subarray(4000 * 512, 4001 * 512));
  ata.ack();
  t.same(ata.insw(512), img.data.subarray(4001 * 512, 4002 * 512));
  t.same([ata.reg(3), ata.reg(4)], [4002 & 0xff, 4002 >> 8]);
  m.outb(PRI.ctl, 0x80); // HOB
  t.same([ata.reg(3), ata.reg(4), ata.reg(5)], [0, 0, 0], 'high-order bytes');
  m.outb(PRI.ctl, 0x00);
  ata.lba48(0x34, 0, 4095, 1); // WRITE SECTORS EXT
  ata.outsw(new Uint8Array(512).fill(0x42));
  t.equal(ata.status, STAT.DRDY | STAT.DSC);
  t.equal(img.data[4095 * 512 + 511], 0x42);
});

t.test('CHS addressing with INITIALIZE DEVICE PARAMETERS, as an old BIOS', async (t) => {
  const img = disk(20000);
  const { m, ata } = setup({ primaryMaster: { kind: 'disk', backend: img } });
  // 8 heads, 32 sectors per track: head count - 1 in DEV/HEAD, sectors in the count.
  ata.select(0, 7);
  m.outb(PRI.base + 2, 32);
  ata.command(0x91);
  t.equal(ata.status & STAT.ERR, 0, 'INITIALIZE DEVICE PARAMETERS');
  const id = ata.identify(0)!;
  t.same([id[54], id[55], id[56]], [Math.floor(20000 / 256), 8, 32], 'current translation');
  // C/H/S = 2/3/5 -> LBA (2*8+3)*32+4 = 612.
  ata.select(0, 3);
  m.outb(PRI.base + 2, 1);
  m.outb(PRI.base + 3, 5);
  m.outb(PRI.base + 4, 2);
  m.outb(PRI.base + 5, 0);
  ata.command(0x20);
  ata.ack();
  t.same(ata.insw(512), img.data.subarray(612 * 512, 613 * 512), 'CHS 2/3/5 is LBA 612');
  t.same([ata.reg(3), ata.reg(4), ata.reg(6) & 0x0f], [6, 2, 3], 'registers advance in CHS form');
  // Sector 0 does not exist in CHS.
  m.outb(PRI.base + 3, 0);
  ata.command(0x20);
  t.equal(ata.status & STAT.ERR, STAT.ERR);
  t.equal(ata.error, 0x10, 'IDNF');
});

t.test('errors: past the end, read-only back end, nIEN, SET FEATURES, verify, flush, power', async (t) => {
  let flushes = 0;
  const img = disk(1000);
  const counted: BlockBackend = {
    get size() { return img.size; }, readOnly: false,
    read: (o, d) => img.read(o, d), write: (o, s) => img.write(o, s), flush: () => { flushes++; },
  };
  const { m, ata } = setup({
    primaryMaster: { kind: 'disk', backend: counted },
    primarySlave: { kind: 'disk', backend: disk(100, { readOnly: true }) },
  });
  ata.lba28(0x20, 0, 999, 2);
  t.equal(ata.status, STAT.DRDY | STAT.ERR, 'a read running past the end fails');
  t.equal(ata.error, 0x10, 'with IDNF');
  ata.lba28(0x20, 0, 0, 0);
  t.equal(ata.status & STAT.DRQ, STAT.DRQ, 'count 0 is 256 sectors (fits)');
  ata.insw(256 * 512);
  t.equal(ata.status & STAT.DRQ, 0, 'all 256 sectors read');
  ata.lba48(0x24, 0, 0, 0);
  t.equal(ata.status & STAT.ERR, STAT.ERR, 'an EXT count of 0 is 65536 sectors: past the end of 1000');
  t.equal(ata.error, 0x10);
  ata.lba28(0x40, 0, 990, 10);
  t.equal(ata.status, STAT.DRDY | STAT.DSC, 'READ VERIFY in range');
  ata.lba28(0x40, 0, 995, 10);
  t.equal(ata.error, 0x10, 'READ VERIFY past the end: IDNF');
  ata.lba28(0x30, 1, 0, 1);
  t.equal(ata.status & (STAT.ERR | STAT.DRQ), STAT.ERR, 'a write to a read-only disk is aborted before DRQ');
  t.equal(ata.error, 0x04, 'ABRT');
  ata.lba28(0xca, 1, 0, 1);
  t.equal(ata.error, 0x04, 'WRITE DMA to a read-only disk: ABRT');

  ata.lba28(0xe7, 0, 0, 0);
  ata.lba28(0xea, 0, 0, 0);
  t.equal(flushes, 2, 'FLUSH CACHE and FLUSH CACHE EXT reach the back end');
  ata.lba28(0xef, 0, 0, 0x40 | 2, 0x03); // SET FEATURES: UDMA mode 2
  t.equal(ata.status & STAT.ERR, 0);
  t.equal(ata.identify(0)![88]! >> 8, 1 << 2, 'word 88 shows UDMA 2 selected');
  ata.lba28(0xef, 0, 0, 0x20 | 2, 0x03); // MWDMA 2
  let id = ata.identify(0)!;
  t.same([id[63]! >> 8, id[88]! >> 8], [1 << 2, 0], 'MWDMA 2 selected, UDMA not');
  ata.lba28(0xef, 0, 0, 0x40 | 7, 0x03);
  t.equal(ata.error, 0x04, 'UDMA 7 does not exist');
  ata.lba28(0xef, 0, 0, 0, 0x82);
  id = ata.identify(0)!;
  t.equal(id[85]! & 0x20, 0, 'write cache off');
  t.equal(flushes, 3, 'disabling the write cache flushes');
  ata.lba28(0xef, 0, 0, 0, 0x77);
  t.equal(ata.error, 0x04, 'an unknown feature aborts');
  for (const cmd of [0xe1, 0xe0, 0x95, 0x94, 0x10]) {
    ata.lba28(cmd, 0, 0, 0);
    t.equal(ata.status & STAT.ERR, 0, `command ${cmd.toString(16)} completes`);
  }
  ata.lba28(0xe5, 0, 0, 0);
  t.equal(ata.reg(2), 0xff, 'CHECK POWER MODE: active');
  ata.lba28(0x00, 0, 0, 0);
  t.equal(ata.error, 0x04, 'NOP aborts');
  ata.lba28(0xa0, 0, 0, 0);
  t.equal(ata.error, 0x04, 'PACKET to a disk aborts');
  ata.lba48(0x27, 0, 0, 0);
  t.same([ata.reg(3), ata.reg(4)], [999 & 0xff, 999 >> 8], 'READ NATIVE MAX ADDRESS EXT');

  // nIEN: the line stays low while set; clearing it with INTRQ pending raises it.
  m.outb(PRI.ctl, 0x02);
  ata.lba28(0x20, 0, 0, 1);
  t.equal(ata.irqLevel, 0, 'nIEN keeps the line low');
  m.outb(PRI.ctl, 0x00);
  t.equal(ata.irqLevel, 1, 'pending INTRQ shows once nIEN clears');
  ata.ack();
  ata.insw(512);
  // Writes to the command block are ignored while DRQ is set (QEMU).
  ata.lba28(0x20, 0, 5, 1);
  m.outb(PRI.base + 3, 99);
  t.equal(ata.reg(3), 6, 'task file locked while DRQ (it shows the next sector, not the write)');
  // SRST in the middle of a transfer ends it.
  ata.softReset();
  t.equal(ata.status & (STAT.DRQ | STAT.BSY), 0, 'SRST cancels the transfer');
  t.equal(ata.reg(2), 1, 'signature again');
});

t.test('bus-master DMA: scatter/gather, Active and Interrupt bits, both directions', async (t) => {
  const img = disk(8192);
  const { m, ata } = setup({ primaryMaster: { kind: 'disk', backend: img } }, 4 << 20);
  const prd = 0x1000;
  // READ DMA of 8 sectors into three pieces: 1024 + 2048 + 1024 bytes.
  writePrds(m, prd, [[0x10000, 1024], [0x20000, 2048], [0x30000, 1024]]);
  m.outl(BMIBA + 4, prd);
  m.outb(BMIBA, 0x08); // direction: to memory
  ata.lba28(0xc8, 0, 40, 8);
  t.equal(ata.altStatus & STAT.DRQ, STAT.DRQ, 'DRQ until the bus master starts');
  t.equal(ata.irqLevel, 0);
  m.outb(BMIBA, 0x09); // start
  t.equal(ata.irqLevel, 1, 'INTRQ at the end');
  t.equal(m.inb(BMIBA + 2) & 7, 0x04, 'bus master: Interrupt, not Active (PRDs exactly fit)');
  const mem = m.mem.bytes;
  const want = img.data.subarray(40 * 512, 48 * 512);
  t.same(mem.subarray(0x10000, 0x10400), want.subarray(0, 1024));
  t.same(mem.subarray(0x20000, 0x20800), want.subarray(1024, 3072));
  t.same(mem.subarray(0x30000, 0x30400), want.subarray(3072));
  t.equal(ata.status, STAT.DRDY | STAT.DSC, 'device status');
  t.equal(ata.irqLevel, 0);
  m.outb(BMIBA + 2, 0x04); // clear Interrupt (write 1)
  m.outb(BMIBA, 0x00);
  t.equal(m.inb(BMIBA + 2) & 7, 0, 'Interrupt cleared by writing 1');

  // WRITE DMA EXT: start the engine first, then the command (the other order).
  mem.fill(0x5c, 0x40000, 0x40000 + 3 * 512);
  writePrds(m, prd, [[0x40000, 3 * 512]]);
  m.outb(BMIBA, 0x01);
  ata.lba48(0x35, 0, 8000, 3);
  t.equal(ata.irqLevel, 1);
  t.same(img.data.subarray(8000 * 512, 8003 * 512), new Uint8Array(3 * 512).fill(0x5c), 'written through DMA');
  ata.ack();
  m.outb(BMIBA, 0x00);

  // PRDs longer than the transfer: Active stays set with Interrupt (SFF-8038i table 2).
  m.outb(BMIBA + 2, 0x06);
  writePrds(m, prd, [[0x10000, 0]]); // 0 = 64 KiB
  m.outb(BMIBA, 0x09);
  ata.lba28(0xc8, 0, 0, 1);
  t.equal(m.inb(BMIBA + 2) & 7, 0x05, 'Active and Interrupt: the PRDs were longer');
  ata.ack();
  m.outb(BMIBA, 0x08);
  t.equal(m.inb(BMIBA + 2) & 1, 0, 'clearing Start clears Active');
});

t.test('hostile DMA programming: short and endless PRD tables, memory outside RAM, mastering off', async (t) => {
  const img = disk(70000);
  const { m, ata, pc } = setup({ primaryMaster: { kind: 'disk', backend: img } }, 1 << 20);
  const ch = pc.ide.channels[0];
  const prd = 0x1000;
  const bm = (v: number): void => m.outb(BMIBA, v);
  const reset = (): void => { bm(0); m.outb(BMIBA + 2, 0x06); ata.softReset(); };

  // Too short: 1 sector of PRD for 4 sectors. Active goes, no interrupt, no hang.
  writePrds(m, prd, [[0x8000, 512]]);
  m.outl(BMIBA + 4, prd);
  bm(0x09);
  ata.lba28(0xc8, 0, 10, 4);
  t.equal(m.inb(BMIBA + 2) & 7, 0, 'short PRDs: neither Active nor Interrupt');
  t.equal(ata.irqLevel, 0, 'no INTRQ');
  t.equal(ch.lastDmaResult, 'short-prd');
  t.same(m.mem.bytes.subarray(0x8000, 0x8200), img.data.subarray(10 * 512, 11 * 512), 'the sector that fit was moved');
  t.equal(ata.status & (STAT.BSY | STAT.DRQ), 0, 'the device stopped');
  reset();

  // A table without EOT is walked for one page at most: 512 descriptors of 2 bytes cannot hold a sector... of 4.
  for (let i = 0; i < 600; i++) writePrds(m, prd + 8 * i, [[0x9000 + 2 * i, 2]], false);
  m.outl(BMIBA + 4, prd);
  bm(0x09);
  ata.lba28(0xc8, 0, 0, 4);
  t.equal(ch.lastDmaResult, 'short-prd', 'no EOT: stops after 512 descriptors');
  t.equal(m.inb(BMIBA + 2) & 1, 0);
  reset();

  // A buffer outside RAM: the bus master's Error bit, the command aborted with INTRQ.
  writePrds(m, prd, [[0x8000, 512], [0xfff00000, 512]]);
  m.outl(BMIBA + 4, prd);
  bm(0x09);
  ata.lba28(0xc8, 0, 0, 2);
  t.equal(m.inb(BMIBA + 2) & 7, 0x06, 'Error and Interrupt, not Active');
  t.equal(ata.status & STAT.ERR, STAT.ERR, 'ERR');
  t.equal(ata.error, 0x04, 'ABRT');
  t.equal(ch.lastDmaResult, 'memory');
  reset();

  // The PRD table itself outside RAM.
  m.outl(BMIBA + 4, 0xfffff000);
  bm(0x09);
  ata.lba28(0xca, 0, 0, 1);
  t.equal(m.inb(BMIBA + 2) & 2, 2, 'Error for a table outside RAM');
  t.equal(ata.status & STAT.ERR, STAT.ERR);
  t.equal(ata.status & STAT.DRQ, 0);
  reset();

  // Partly outside RAM (straddling its end), for a write: nothing of that piece reaches the disk.
  const before = img.data.slice(0, 1024);
  writePrds(m, prd, [[(1 << 20) - 256, 1024]]);
  m.outl(BMIBA + 4, prd);
  bm(0x01);
  ata.lba28(0xca, 0, 0, 2);
  t.equal(ata.status & STAT.ERR, STAT.ERR, 'a straddling buffer aborts');
  t.same(img.data.subarray(0, 1024), before, 'no partial sector written');
  reset();

  // Bus mastering disabled in the PCI command register: a master abort.
  m.cfgWrite(1, 1, 0x04, 2, 0x0001);
  writePrds(m, prd, [[0x8000, 512]]);
  m.outl(BMIBA + 4, prd);
  bm(0x09);
  ata.lba28(0xc8, 0, 0, 1);
  t.equal(ch.lastDmaResult, 'master-disabled');
  t.equal(m.inb(BMIBA + 2) & 2, 2, 'Error');
  m.cfgWrite(1, 1, 0x04, 2, 0x0005);
  reset();

  // Guest garbage on every port: no exception escapes, and the device still works after SRST.
  let seed = 1;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  t.doesNotThrow(() => {
    for (let i = 0; i < 20000; i++) {
      const r = rnd();
      const port = [PRI.base + (r & 7), PRI.ctl, BMIBA + ((r >> 3) & 15)][(r >> 8) % 3]!;
      const size = ([1, 2, 4] as const)[(r >> 10) % 3]!;
      if (r & 0x10000) m.ports.write(port, size, rnd()); else m.ports.read(port, size);
    }
  }, 'random port traffic');
  reset();
  m.outb(PRI.ctl, 0);
  ata.lba28(0x20, 0, 3, 1);
  ata.ack();
  t.same(ata.insw(512), img.data.subarray(3 * 512, 4 * 512), 'the disk still reads correctly');
});

t.test('an LBA48 transfer of 65536 sectors (count 0) through 512 PRDs of 64 KiB', async (t) => {
  const sectors = 65536 + 16;
  const img = new MemoryBlockBackend(patterned(sectors * 512));
  const { m, ata } = setup({ primaryMaster: { kind: 'disk', backend: img } }, (32 << 20) + (1 << 20));
  const prd = 0x1000;
  const base = 1 << 20;
  writePrds(m, prd, Array.from({ length: 512 }, (_, i): [number, number] => [base + i * 0x10000, 0]));
  m.outl(BMIBA + 4, prd);
  m.outb(BMIBA, 0x09);
  ata.lba48(0x25, 0, 16, 0);
  t.equal(ata.status, STAT.DRDY | STAT.DSC, 'completed');
  t.equal(m.inb(BMIBA + 2) & 7, 0x04, 'Interrupt, PRDs used up exactly');
  t.ok(Buffer.from(m.mem.bytes.buffer, base, 32 << 20).equals(Buffer.from(img.data.buffer, 16 * 512)), '32 MiB moved');
});

t.test('a real image file through fs: DMA writes, FLUSH CACHE, PIO reads', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenemu-ide-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, Buffer.alloc(1 << 20));
  const backend = new FileBlockBackend(file);
  t.teardown(() => backend.close());
  const { m, ata } = setup({ primaryMaster: { kind: 'disk', backend } }, 1 << 20);
  const payload = new Uint8Array(4096).map((_, i) => (i * 7 + 3) & 0xff);
  m.mem.bytes.set(payload, 0x20000);
  writePrds(m, 0x1000, [[0x20000, 4096]]);
  m.outl(BMIBA + 4, 0x1000);
  m.outb(BMIBA, 0x01);
  ata.lba28(0xca, 0, 100, 8);
  t.equal(ata.status, STAT.DRDY | STAT.DSC);
  m.outb(BMIBA, 0);
  ata.lba28(0xe7, 0, 0, 0);
  t.equal(ata.status & STAT.ERR, 0, 'FLUSH CACHE (fdatasync)');
  const onDisk = fs.readFileSync(file);
  t.same(new Uint8Array(onDisk.subarray(100 * 512, 108 * 512)), payload, 'the file holds the sectors');
  ata.lba28(0x20, 0, 100, 1);
  ata.ack();
  t.same(ata.insw(512), payload.subarray(0, 512), 'and reads them back');
  ata.lba28(0x20, 0, 2047, 2);
  t.equal(ata.error, 0x10, 'IDNF past the end of the file');
});
