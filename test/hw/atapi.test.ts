// The IDE CD-ROM (shared/hw/ide_atapi.ts) driven through its ports with
// the PACKET protocol, as SeaBIOS's atapi_cmd_data (El Torito boot) and
// Linux's sr/libata-scsi do: signature, IDENTIFY PACKET DEVICE, the MMC
// commands, PIO with byte count limits, DMA, sense data and media events.
import t from 'tap';
import { buildPc } from '../../shared/hw/pc.js';
import { MemoryBlockBackend } from '../../shared/hw/block.js';
import { makeMachine, type TestMachine } from './machine_fixture.js';
import { AtaDriver, SEC, STAT, ataString, writePrds } from './ata_driver.js';

const BMIBA = 0xc000;
const SECTORS = 200;

/** An ISO 9660 image with an El Torito boot record at sector 17 and a catalog at 19 (El Torito 1.0, 2.0-2.3). */
function isoImage(): Uint8Array {
  const img = new Uint8Array(SECTORS * 2048);
  for (let s = 0; s < SECTORS; s++) img.fill(s & 0xff, s * 2048, s * 2048 + 2048);
  const brvd = 17 * 2048;
  img.fill(0, brvd, brvd + 2048);
  img[brvd] = 0;
  img.set(new TextEncoder().encode('CD001'), brvd + 1);
  img[brvd + 6] = 1;
  img.set(new TextEncoder().encode('EL TORITO SPECIFICATION'), brvd + 7);
  new DataView(img.buffer).setUint32(brvd + 0x47, 19, true);
  const cat = 19 * 2048;
  img.fill(0, cat, cat + 2048);
  img[cat] = 0x01; img[cat + 0x1e] = 0x55; img[cat + 0x1f] = 0xaa;
  img[cat + 0x20] = 0x88; // bootable, no emulation
  new DataView(img.buffer).setUint16(cat + 0x26, 4, true); // 4 virtual sectors
  new DataView(img.buffer).setUint32(cat + 0x28, 40, true); // image at sector 40
  return img;
}

class Atapi {
  readonly ata: AtaDriver;
  constructor(readonly m: TestMachine) { this.ata = new AtaDriver(m, SEC); }

  /** Sends a packet; returns the data-in bytes and the DRQ block sizes (PIO). */
  packet(cdb: number[], bcl = 0xfffe, dma = false): { data: Uint8Array; blocks: number[]; status: number; error: number } {
    const { m, ata } = this;
    ata.select(0);
    m.outb(SEC.base + 1, dma ? 1 : 0);
    m.outb(SEC.base + 4, bcl & 0xff);
    m.outb(SEC.base + 5, bcl >> 8);
    ata.command(0xa0);
    const st = ata.altStatus;
    if (!(st & STAT.DRQ) || (ata.reg(2) & 3) !== 1) throw new Error(`no DRQ for the packet: ${st.toString(16)}`);
    const p = new Uint8Array(12);
    p.set(cdb);
    ata.outsw(p);
    const chunks: Uint8Array[] = [];
    const blocks: number[] = [];
    for (let guard = 0; guard < 10000; guard++) {
      const s = ata.status;
      if (!(s & STAT.DRQ) || dma) break;
      if ((ata.reg(2) & 3) !== 2) throw new Error('DRQ without I/O reason');
      const n = ata.reg(4) | (ata.reg(5) << 8);
      blocks.push(n);
      chunks.push(ata.insw(n));
    }
    const data = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
    let o = 0;
    for (const c of chunks) { data.set(c, o); o += c.length; }
    return { data, blocks, status: ata.status, error: ata.error };
  }

  sense(): [number, number, number] {
    const r = this.packet([0x03, 0, 0, 0, 18, 0]);
    return [r.data[2]! & 0xf, r.data[12]!, r.data[13]!];
  }
}

function setup(withDisc = true): { m: TestMachine; cd: Atapi; pc: ReturnType<typeof buildPc>; img: Uint8Array } {
  const m = makeMachine(1 << 20);
  const img = isoImage();
  const pc = buildPc(m, { ide: { secondaryMaster: { kind: 'cdrom', backend: withDisc ? new MemoryBlockBackend(img, true) : null } } });
  m.cfgWrite(1, 1, 0x20, 4, BMIBA);
  m.cfgWrite(1, 1, 0x04, 2, 0x0005);
  return { m, cd: new Atapi(m), pc, img };
}

const be32 = (b: Uint8Array, o: number): number => new DataView(b.buffer, b.byteOffset).getUint32(o);
const read10 = (lba: number, n: number): number[] => [0x28, 0, lba >>> 24, (lba >> 16) & 0xff, (lba >> 8) & 0xff, lba & 0xff, 0, n >> 8, n & 0xff, 0];

t.test('signature after reset, IDENTIFY aborts, IDENTIFY PACKET DEVICE', async (t) => {
  const { cd } = setup();
  const ata = cd.ata;
  ata.softReset();
  ata.select(0);
  t.same([ata.reg(2), ata.reg(3), ata.reg(4), ata.reg(5)], [1, 1, 0x14, 0xeb], 'ATAPI signature');
  t.equal(ata.status & STAT.DRDY, 0, 'DRDY is not set after reset for a packet device');
  t.equal(ata.identify(0, 0xec), null, 'IDENTIFY DEVICE: no data');
  t.equal(ata.error, 0x04, 'aborted');
  t.same([ata.reg(4), ata.reg(5)], [0x14, 0xeb], 'with the signature in place (Linux and SeaBIOS look there)');
  const id = ata.identify(0, 0xa1)!;
  t.ok(id, 'IDENTIFY PACKET DEVICE');
  t.equal(id[0], 0x85c0, 'ATAPI CD-ROM, removable, 12-byte packets');
  t.equal(ataString(id, 27, 20), 'QEMU DVD-ROM');
  t.equal(id[49]! & 0x300, 0x300, 'LBA and DMA');
  t.equal(new Uint8Array(id.buffer).reduce((a, b) => a + b, 0) & 0xff, 0, 'checksum');
});

t.test('El Torito boot as SeaBIOS does it: TEST UNIT READY, READ CAPACITY, READ(10) with a 2048-byte limit', async (t) => {
  const { cd, img, m } = setup();
  // Power-on: the first commands see the disc.
  let r = cd.packet([0x00]);
  t.equal(r.status & STAT.ERR, 0, 'TEST UNIT READY');
  t.equal(cd.ata.reg(2) & 3, 3, 'completion reason: I/O and C/D');
  r = cd.packet([0x25]);
  t.same([be32(r.data, 0), be32(r.data, 4)], [SECTORS - 1, 2048], 'READ CAPACITY');
  r = cd.packet(read10(17, 1), 2048);
  t.equal(new TextDecoder().decode(r.data.subarray(1, 6)), 'CD001');
  t.equal(new TextDecoder().decode(r.data.subarray(7, 30)), 'EL TORITO SPECIFICATION');
  const catalog = new DataView(r.data.buffer).getUint32(0x47, true);
  r = cd.packet(read10(catalog, 1), 2048);
  t.same([r.data[0], r.data[0x1e], r.data[0x1f], r.data[0x20]], [1, 0x55, 0xaa, 0x88], 'boot catalog');
  const at = new DataView(r.data.buffer).getUint32(0x28, true);
  m.irq.events.length = 0;
  r = cd.packet(read10(at, 3), 2048);
  t.same(r.blocks, [2048, 2048, 2048], 'one DRQ block per 2048-byte limit');
  t.same(r.data, img.subarray(at * 2048, (at + 3) * 2048), 'boot image');
  t.same(m.irq.events.filter((e) => e === 'isa15=1').length, 4, 'an interrupt per DRQ block and one for the status');
});

t.test('byte count limits: large, odd, small, zero; READ(12); DMA', async (t) => {
  const { cd, img, m, pc } = setup();
  let r = cd.packet(read10(10, 4), 0xfffe);
  t.same(r.blocks, [8192], 'one block when the limit allows');
  t.same(r.data, img.subarray(10 * 2048, 14 * 2048));
  r = cd.packet(read10(10, 2), 1001);
  t.same(r.blocks, [1000, 1000, 1000, 1000, 96], 'an odd limit is rounded down to even');
  t.same(r.data, img.subarray(10 * 2048, 12 * 2048));
  r = cd.packet(read10(50, 1), 0);
  t.same(r.blocks, [2048], 'a limit of 0 is taken as the largest');
  r = cd.packet([0xa8, 0, 0, 0, 0, 60, 0, 0, 0, 2, 0, 0], 4096);
  t.same(r.data, img.subarray(60 * 2048, 62 * 2048), 'READ(12)');
  // DMA: features bit 0, through the bus master.
  writePrds(m, 0x1000, [[0x10000, 2048], [0x20000, 4096]]);
  m.outl(BMIBA + 8 + 4, 0x1000);
  m.outb(BMIBA + 8, 0x09);
  r = cd.packet(read10(30, 3), 0, true);
  t.equal(r.status & (STAT.ERR | STAT.DRQ), 0, 'DMA read completed');
  t.equal(m.inb(BMIBA + 8 + 2) & 7, 4, 'Interrupt, PRDs used exactly');
  t.same(m.mem.bytes.subarray(0x10000, 0x10800), img.subarray(30 * 2048, 31 * 2048));
  t.same(m.mem.bytes.subarray(0x20000, 0x21000), img.subarray(31 * 2048, 33 * 2048));
  m.outb(BMIBA + 8, 0x08);
  m.outb(BMIBA + 8 + 2, 0x04);
  // INQUIRY through DMA too (QEMU sends any data-in that way when asked).
  writePrds(m, 0x1000, [[0x30000, 36]]);
  m.outb(BMIBA + 8, 0x09);
  r = cd.packet([0x12, 0, 0, 0, 36, 0], 0, true);
  t.equal(new TextDecoder().decode(m.mem.bytes.subarray(0x30000 + 16, 0x30000 + 28)), 'QEMU DVD-ROM', 'INQUIRY by DMA');
  m.outb(BMIBA + 8, 0x08);
  // DMA into memory outside RAM: the command fails with ABORTED COMMAND.
  writePrds(m, 0x1000, [[0xfff00000, 2048]]);
  m.outb(BMIBA + 8, 0x09);
  r = cd.packet(read10(0, 1), 0, true);
  t.equal(r.status & STAT.ERR, STAT.ERR, 'CHECK CONDITION');
  t.equal(r.error >> 4, 0x0b, 'ABORTED COMMAND');
  t.equal(m.inb(BMIBA + 8 + 2) & 2, 2, 'bus master Error');
  t.equal(pc.ide.channels[1].lastDmaResult, 'memory');
  m.outb(BMIBA + 8, 0x00);
});

t.test('hostile lengths: 0, past the end, huge, unknown opcodes and fields', async (t) => {
  const { cd } = setup();
  let r = cd.packet(read10(5, 0));
  t.equal(r.status & (STAT.ERR | STAT.DRQ), 0, 'READ(10) of 0 blocks: good status, no data');
  t.equal(r.data.length, 0);
  r = cd.packet(read10(SECTORS - 1, 2));
  t.equal(r.status & STAT.ERR, STAT.ERR, 'READ past the last block');
  t.equal(r.error >> 4, 5, 'ILLEGAL REQUEST');
  t.same(cd.sense(), [5, 0x21, 0], 'LOGICAL BLOCK ADDRESS OUT OF RANGE');
  t.same(cd.sense(), [0, 0, 0], 'sense is cleared once read');
  r = cd.packet([0xa8, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0]);
  t.same(cd.sense(), [5, 0x21, 0], 'READ(12) of 2^32-1 blocks');
  r = cd.packet(read10(0xffffffff, 1));
  t.same(cd.sense(), [5, 0x21, 0], 'READ(10) at LBA 2^32-1');
  r = cd.packet([0x12, 0, 0, 0xff, 0xff, 0]);
  t.equal(r.data.length, 36, 'INQUIRY with a 64 KiB allocation length gets 36 bytes');
  r = cd.packet([0x12, 0, 0, 0, 5, 0]);
  t.same([r.blocks, r.data.length], [[5], 5], 'INQUIRY with an allocation length of 5 gets a 5-byte DRQ block');
  r = cd.packet([0x12, 1, 0x80, 0, 36, 0]);
  t.same(cd.sense(), [5, 0x24, 0], 'EVPD not supported: INVALID FIELD IN CDB');
  r = cd.packet([0xff]);
  t.same(cd.sense(), [5, 0x20, 0], 'unknown opcode: INVALID COMMAND OPERATION CODE');
  r = cd.packet([0x5a, 0, 0xc0 | 0x2a, 0, 0, 0, 0, 0, 64, 0]);
  t.same(cd.sense(), [5, 0x39, 0], 'MODE SENSE of saved values');
  r = cd.packet([0x43, 0, 5, 0, 0, 0, 0, 0, 64, 0]);
  t.same(cd.sense(), [5, 0x24, 0], 'READ TOC format 5');
  r = cd.packet([0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8, 0]);
  t.same(cd.sense(), [5, 0x24, 0], 'asynchronous GET EVENT STATUS');
});

t.test('what Linux sr and cdrom_id ask: INQUIRY, MODE SENSE 2Ah, GET CONFIGURATION, READ TOC, disc info, events', async (t) => {
  const { cd } = setup();
  let r = cd.packet([0x12, 0, 0, 0, 36, 0]);
  t.same([r.data[0], r.data[1]], [0x05, 0x80], 'CD/DVD device, removable');
  t.equal(new TextDecoder().decode(r.data.subarray(8, 32)), 'QEMU    QEMU DVD-ROM    ');
  r = cd.packet([0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 128, 0]);
  t.equal((r.data[0]! << 8 | r.data[1]!) + 2, r.data.length, 'mode data length');
  t.same([r.data[8], r.data[9]], [0x2a, 20], 'capabilities page');
  t.equal(r.data[8 + 4]! & 1, 1, 'audio play (Linux checks it)');
  r = cd.packet([0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 128, 0]);
  t.same([r.data[8], r.data[16]], [0x01, 0x2a], 'all pages');
  r = cd.packet([0x46, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
  t.equal(r.data[7], 0x08, 'current profile: CD-ROM');
  t.equal(be32(r.data, 0) + 4, r.data.length, 'data length');
  t.same([r.data[8], r.data[9], r.data[11]], [0, 0, 8], 'profile list feature with two profiles');
  r = cd.packet([0x46, 2, 0, 3, 0, 0, 0, 1, 0, 0]);
  t.same([r.data[9], r.data.length], [3, 16], 'RT=2: just the removable medium feature');

  r = cd.packet([0x43, 0, 0, 0, 0, 0, 0, 0, 64, 0]);
  t.same([...r.data.subarray(0, 4)], [0, 18, 1, 1], 'TOC header: 2 descriptors, tracks 1-1');
  t.same([r.data[5], r.data[6], be32(r.data, 8)], [0x14, 1, 0], 'track 1, data, LBA 0');
  t.same([r.data[14], be32(r.data, 16)], [0xaa, SECTORS], 'lead-out');
  r = cd.packet([0x43, 2, 0, 0, 0, 0, 0, 0, 64, 0]);
  t.same([...r.data.subarray(8, 12)], [0, 0, 2, 0], 'track 1 in MSF: 00:02:00');
  t.same([...r.data.subarray(16, 20)], [0, 0, 4, 50], 'lead-out in MSF: 200 + 150 frames = 00:04:50');
  r = cd.packet([0x43, 0, 1, 0, 0, 0, 0, 0, 12, 0]);
  t.same([...r.data], [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0], 'session info');
  r = cd.packet([0x43, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x40]);
  t.same([...r.data.subarray(0, 4)], [0, 10, 1, 1], 'SFF-8020i format in byte 9');

  r = cd.packet([0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0]);
  t.same([r.data[1], r.data[2] & 3, r.data[3], r.data[4]], [32, 2, 1, 1], 'disc information: complete, one track, one session');

  r = cd.packet([0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]);
  t.same([...r.data], [0, 6, 4, 0x10, 0, 2, 0, 0], 'media event: none, medium present');
  r = cd.packet([0x4a, 1, 0, 0, 0x02, 0, 0, 0, 8, 0]);
  t.same([...r.data], [0, 2, 0x80, 0x10], 'other classes: no event available');
  r = cd.packet([0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]);
  t.equal(r.data.length, 8, 'MECHANISM STATUS');
  r = cd.packet([0xbb, 0, 0xff, 0xff]);
  t.equal(r.status & STAT.ERR, 0, 'SET CD SPEED');
});

t.test('tray, lock and media changes', async (t) => {
  const { cd, pc, img } = setup();
  cd.packet([0x1e, 0, 0, 0, 1, 0]);
  let r = cd.packet([0x1b, 0, 0, 0, 0x02, 0]);
  t.same(cd.sense(), [5, 0x53, 2], 'eject while locked: MEDIUM REMOVAL PREVENTED');
  cd.packet([0x1e, 0, 0, 0, 0, 0]);
  r = cd.packet([0x1b, 0, 0, 0, 0x02, 0]);
  t.equal(r.status & STAT.ERR, 0, 'eject');
  r = cd.packet([0x00]);
  t.same(cd.sense(), [2, 0x3a, 2], 'NOT READY, MEDIUM NOT PRESENT - TRAY OPEN');
  r = cd.packet([0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]);
  t.same([r.data[4], r.data[5]], [3, 1], 'media removal event, tray open');
  cd.packet([0x1b, 0, 0, 0, 0x03, 0]);
  r = cd.packet([0x00]);
  t.equal(r.status & STAT.ERR, 0, 'loaded again');

  // Another disc from the host: UNIT ATTENTION once, INQUIRY allowed meanwhile.
  const drive = pc.ide.channels[1].drives[0]!;
  drive.atapi!.changeMedium(new MemoryBlockBackend(img.slice(0, 20 * 2048), true));
  r = cd.packet([0x12, 0, 0, 0, 36, 0]);
  t.equal(r.status & STAT.ERR, 0, 'INQUIRY during a unit attention');
  r = cd.packet([0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]);
  t.same([r.data[4], r.data[5]], [2, 2], 'new media event');
  r = cd.packet([0x00]);
  t.equal(r.error >> 4, 6, 'UNIT ATTENTION');
  t.same(cd.sense(), [6, 0x28, 0], 'MEDIUM MAY HAVE CHANGED, kept for REQUEST SENSE');
  r = cd.packet([0x00]);
  t.equal(r.status & STAT.ERR, 0, 'reported once');
  r = cd.packet([0x25]);
  t.equal(be32(r.data, 0), 19, 'the new disc has 20 blocks');
  drive.atapi!.changeMedium(null);
  r = cd.packet([0x25]);
  t.equal(r.error >> 4, 2, 'no disc: NOT READY');
});

t.test('no disc at all', async (t) => {
  const { cd } = setup(false);
  const r = cd.packet([0x00]);
  t.equal(r.status & STAT.ERR, STAT.ERR);
  t.same(cd.sense(), [2, 0x3a, 1], 'MEDIUM NOT PRESENT - TRAY CLOSED');
  const g = cd.packet([0x46, 0, 0, 0, 0, 0, 0, 0, 64, 0]);
  t.equal(g.data[7], 0, 'GET CONFIGURATION: no current profile');
});

t.test('random packets with random byte count limits: no exception, no stuck device', async (t) => {
  const { cd, img, m } = setup();
  let seed = 7;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed >> 8; };
  const ops = [0x00, 0x03, 0x12, 0x1b, 0x1e, 0x25, 0x28, 0x2b, 0x43, 0x46, 0x4a, 0x51, 0x5a, 0xa8, 0xbb, 0xbd, 0xff];
  let transfers = 0;
  let stuck = 0;
  t.doesNotThrow(() => {
    for (let i = 0; i < 2000; i++) {
      const cdb = Array.from({ length: 12 }, () => rnd() & 0xff);
      cdb[0] = ops[rnd() % ops.length]!;
      if (cdb[0] === 0x28 || cdb[0] === 0xa8) { cdb[2] = 0; cdb[3] = 0; cdb[6] = 0; cdb[7] = 0; } // keep reads short
      if (cdb[0] === 0x1b) cdb[4] = 0x03; // keep the tray closed
      const r = cd.packet(cdb, rnd() & 0xffff);
      transfers += r.blocks.length;
      if (r.status & (STAT.BSY | STAT.DRQ)) stuck++;
    }
  }, 'no exception escapes');
  t.equal(stuck, 0, 'every command ended without BSY or DRQ');
  t.ok(transfers > 100, `data moved in ${transfers} DRQ blocks`);
  cd.packet([0x1e, 0, 0, 0, 0, 0]);
  cd.packet([0x1b, 0, 0, 0, 0x03, 0]);
  cd.sense();
  const r = cd.packet(read10(5, 1), 2048);
  t.same(r.data, img.subarray(5 * 2048, 6 * 2048), 'the drive still reads correctly');
  t.equal(m.irq.isa[15], 0, 'the line is low when the host has acknowledged everything');
});
