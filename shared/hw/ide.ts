// An IDE channel (ATA/ATAPI-6, T13 1410D): the command block registers at
// 0x1F0-0x1F7 (0x170-0x177), the control block register at 0x3F6 (0x376),
// two devices (master and slave), an interrupt line, and the bus-master DMA
// registers of SFF-8038i that the PIIX3 puts in BAR4 (shared/hw/piix_ide.ts).
// ATA hard disks live here; the ATAPI packet command set of a CD-ROM is in
// shared/hw/ide_atapi.ts.
//
// What the guest sees, as QEMU's hw/ide/core.c models it (SeaBIOS and Linux's
// ata_piix were written against both real drives and QEMU):
//
//   command  ->  BSY (never seen: models are synchronous)
//            ->  PIO in:  DRQ + INTRQ per block, the host reads it from the
//                         data port; after the last block DRDY, no INTRQ.
//            ->  PIO out: DRQ without INTRQ; each written block is stored,
//                         then DRQ + INTRQ for the next, DRDY + INTRQ at the end.
//            ->  DMA:     DRQ until the bus master is started; then the whole
//                         transfer runs and the end raises INTRQ.
//            ->  error:   DRDY|ERR with the error register, INTRQ.
//
// INTRQ is a pending flag per channel: the line (an ISA IRQ, edge-triggered
// at the 8259) is high while it is pending and nIEN is clear, and a read of
// the status register clears it (ATA-6, INTRQ; QEMU's ide_ioport_read lowers
// its irq there). A write of the command register clears it too.
//
// Hostile input: every count and address is checked before any data moves:
// sectors past the end fail with IDNF, a PRD table is walked for at most one
// 4 KiB page (512 descriptors, as QEMU's bmdma_prepare_buf), a descriptor or
// buffer outside guest RAM stops the transfer with the bus master's error
// bit, and no guest action can make the model loop or throw.
import type { AccessSize, GuestMemory, IoHandler, IrqLines } from './machine.js';
import type { BlockBackend } from './backend.js';
import { AtapiDevice } from './ide_atapi.js';

// Status register (ATA-6, Status register).
export const ATA_STAT_ERR = 0x01;
export const ATA_STAT_DRQ = 0x08;
export const ATA_STAT_DSC = 0x10;
export const ATA_STAT_DF = 0x20;
export const ATA_STAT_DRDY = 0x40;
export const ATA_STAT_BSY = 0x80;
// Error register (ATA-6, Error register).
export const ATA_ERR_ABRT = 0x04;
export const ATA_ERR_IDNF = 0x10;
export const ATA_ERR_UNC = 0x40;
// Device control register (ATA-6, Device Control register).
export const ATA_CTL_NIEN = 0x02;
export const ATA_CTL_SRST = 0x04;
export const ATA_CTL_HOB = 0x80;
// Device register.
export const ATA_DEV_LBA = 0x40;
export const ATA_DEV_DEV = 0x10;

// Bus-master IDE registers per channel (SFF-8038i 1.0; the PIIX3 datasheet's BMIBA registers).
export const BM_CMD = 0;
export const BM_STATUS = 2;
export const BM_PRD = 4;
export const BM_CMD_START = 0x01;
/** 1: the bus master writes memory (a device read). */
export const BM_CMD_WRITE = 0x08;
export const BM_STATUS_ACTIVE = 0x01;
export const BM_STATUS_ERROR = 0x02;
export const BM_STATUS_INT = 0x04;
/** Drive 0/1 DMA capable: scratch bits for the BIOS. */
export const BM_STATUS_DRIVE_DMA = 0x60;
/** A PRD table is walked within one 4 KiB page at most (QEMU: BMDMA_PAGE_SIZE). */
const PRD_MAX = 512;

export const SECTOR_SIZE = 512;
/** Most sectors per DRQ block of READ/WRITE MULTIPLE (IDENTIFY word 47), as QEMU's MAX_MULT_SECTORS. */
export const MAX_MULT_SECTORS = 16;
/** Sectors staged per back-end access during DMA. */
const DMA_CHUNK_SECTORS = 128;

// ATA commands (ATA-6 chapter 8, ACS for the EXT forms).
export const ATA_CMD = {
  NOP: 0x00, DEVICE_RESET: 0x08, RECALIBRATE: 0x10,
  READ_SECTORS: 0x20, READ_SECTORS_NORETRY: 0x21, READ_SECTORS_EXT: 0x24, READ_DMA_EXT: 0x25,
  READ_NATIVE_MAX_EXT: 0x27, READ_MULTIPLE_EXT: 0x29,
  WRITE_SECTORS: 0x30, WRITE_SECTORS_NORETRY: 0x31, WRITE_SECTORS_EXT: 0x34, WRITE_DMA_EXT: 0x35,
  WRITE_MULTIPLE_EXT: 0x39,
  READ_VERIFY: 0x40, READ_VERIFY_NORETRY: 0x41, READ_VERIFY_EXT: 0x42, SEEK: 0x70,
  EXECUTE_DIAGNOSTIC: 0x90, INITIALIZE_DEVICE_PARAMETERS: 0x91,
  STANDBY_IMMEDIATE_OLD: 0x94, IDLE_IMMEDIATE_OLD: 0x95, CHECK_POWER_MODE_OLD: 0x98,
  PACKET: 0xa0, IDENTIFY_PACKET: 0xa1, SMART: 0xb0,
  READ_MULTIPLE: 0xc4, WRITE_MULTIPLE: 0xc5, SET_MULTIPLE: 0xc6,
  READ_DMA: 0xc8, READ_DMA_NORETRY: 0xc9, WRITE_DMA: 0xca, WRITE_DMA_NORETRY: 0xcb,
  STANDBY_IMMEDIATE: 0xe0, IDLE_IMMEDIATE: 0xe1, STANDBY: 0xe2, IDLE: 0xe3, CHECK_POWER_MODE: 0xe5,
  SLEEP: 0xe6, FLUSH_CACHE: 0xe7, IDENTIFY: 0xec, FLUSH_CACHE_EXT: 0xea, SET_FEATURES: 0xef,
  READ_NATIVE_MAX: 0xf8,
} as const;

/** What a drive on the channel is: a hard disk, or a CD-ROM (its back end may be absent: no disc). */
export interface IdeDriveSpec {
  kind: 'disk' | 'cdrom';
  backend: BlockBackend | null;
  /** IDENTIFY words 27-46; QEMU's are "QEMU HARDDISK" and "QEMU DVD-ROM". */
  model?: string;
  /** IDENTIFY words 10-19; QEMU's are "QM000" + drive index. */
  serial?: string;
  /** IDENTIFY words 23-26. */
  firmware?: string;
}

/** What to do once the current PIO data block has been moved. */
const enum End { None, ReadBlock, WriteBlock, Identify, Packet, AtapiData }
/** A DMA transfer waiting for (or under) the bus master. */
export const enum DmaKind { None, AtaRead, AtaWrite, AtapiIn }

/**
 * One device's registers and transfer state. The command block registers
 * are written to both devices of the channel (ATA-6), so each keeps its
 * own copy: after a reset each holds its own signature.
 */
export class IdeDrive {
  readonly kind: 'disk' | 'cdrom';
  backend: BlockBackend | null;
  readonly model: string;
  readonly serial: string;
  readonly firmware: string;
  /** The disk's sectors (512 bytes each; 0 for a CD-ROM). */
  totalSectors = 0;

  feature = 0; nsector = 0; sector = 0; lcyl = 0; hcyl = 0;
  hobFeature = 0; hobNsector = 0; hobSector = 0; hobLcyl = 0; hobHcyl = 0;
  select = 0xa0; status = ATA_STAT_DRDY | ATA_STAT_DSC; error = 0;

  /** Default translation (IDENTIFY words 1, 3, 6) and the current one (words 54-56). */
  cylinders = 0; heads = 0; sectorsPerTrack = 0;
  curCylinders = 0; curHeads = 0; curSectors = 0;
  multSectors = MAX_MULT_SECTORS;
  writeCache = true;
  /** Transfer modes selected by SET FEATURES: -1 none, else the mode number. */
  mwdmaMode = -1; udmaMode = -1;

  /** The PIO/DMA staging buffer: one DRQ block, one DMA chunk, or an ATAPI reply. */
  readonly buf: Uint8Array;
  pos = 0; end = 0; dataIn = false; endAction = End.None;
  /** The command in progress: next sector, sectors left, sectors per DRQ block, 48-bit addressing. */
  lba = 0; remaining = 0; blockSectors = 1; lba48 = false;
  dma = DmaKind.None;
  /** The ATAPI side of a CD-ROM. */
  readonly atapi: AtapiDevice | null;

  constructor(readonly unit: number, spec: IdeDriveSpec, bufBytes = DMA_CHUNK_SECTORS * SECTOR_SIZE) {
    this.buf = new Uint8Array(bufBytes);
    this.kind = spec.kind;
    this.backend = spec.backend;
    this.model = spec.model ?? (spec.kind === 'cdrom' ? 'QEMU DVD-ROM' : 'QEMU HARDDISK');
    this.serial = spec.serial ?? 'QM00001';
    this.firmware = spec.firmware ?? '2.5+';
    this.atapi = spec.kind === 'cdrom' ? new AtapiDevice(this) : null;
    if (spec.kind === 'disk' && spec.backend) {
      this.totalSectors = Math.floor(spec.backend.size / SECTOR_SIZE);
      // The BIOS geometry QEMU guesses for a blank disk (hw/block/hd-geometry.c):
      // 16 heads, 63 sectors, cylinders capped at 16383 (ATA-6, CHS translation).
      this.heads = 16;
      this.sectorsPerTrack = 63;
      this.cylinders = Math.max(1, Math.min(16383, Math.floor(this.totalSectors / (16 * 63))));
      this.curCylinders = this.cylinders; this.curHeads = this.heads; this.curSectors = this.sectorsPerTrack;
    }
  }

  /**
   * ATA-6, signature and persistence: the signature a device leaves in its registers after a reset
   * or EXECUTE DEVICE DIAGNOSTIC. The register copies of an absent device get
   * 0xFF in LBA mid/high, as QEMU's ide_set_signature gives a drive without
   * a block device (libata then classifies it as no device).
   */
  setSignature(): void {
    this.select &= 0xf0;
    this.nsector = 1;
    this.sector = 1;
    if (this.kind === 'cdrom') { this.lcyl = 0x14; this.hcyl = 0xeb; }
    else if (this.backend) { this.lcyl = 0; this.hcyl = 0; }
    else { this.lcyl = 0xff; this.hcyl = 0xff; }
  }

  /** Sets PIO transfer state for buf[start, end). */
  startTransfer(start: number, end: number, dataIn: boolean, action: End): void {
    this.pos = start;
    this.end = end;
    this.dataIn = dataIn;
    this.endAction = action;
    this.status |= ATA_STAT_DRQ;
  }

  /** buf[0, n sectors) as a view made once, so a PIO block costs no allocation. */
  sectorsView(n: number): Uint8Array {
    let v = this.views[n];
    if (!v) { v = this.buf.subarray(0, n * SECTOR_SIZE); this.views[n] = v; }
    return v;
  }

  private readonly views: Uint8Array[] = [];

  stopTransfer(): void {
    this.pos = 0; this.end = 0; this.endAction = End.None;
    this.status &= ~ATA_STAT_DRQ;
  }
}

/** A power-on reset's registers (QEMU's ide_reset). */
function resetDrive(d: IdeDrive): void {
  d.feature = 0; d.nsector = 0; d.sector = 0; d.lcyl = 0; d.hcyl = 0;
  d.hobFeature = 0; d.hobNsector = 0; d.hobSector = 0; d.hobLcyl = 0; d.hobHcyl = 0;
  d.select = 0xa0;
  d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
  d.error = 0;
  d.multSectors = MAX_MULT_SECTORS;
  d.stopTransfer();
  d.dma = DmaKind.None;
  if (d.atapi) {
    // A power-on or controller reset also unlocks and closes the tray (QEMU's ide_reset).
    d.atapi.reset();
    d.atapi.locked = false;
    d.atapi.trayOpen = false;
  }
  d.setSignature();
}

/** Copies an ATA string (two characters per word, first in the high byte, as ATA-6 orders them) padded with spaces. */
function putString(id: Uint8Array, word: number, words: number, s: string): void {
  for (let i = 0; i < words * 2; i++) {
    const c = i < s.length ? s.charCodeAt(i) & 0x7f : 0x20;
    id[word * 2 + (i ^ 1)] = c;
  }
}

function putWord(id: Uint8Array, word: number, v: number): void {
  id[word * 2] = v & 0xff;
  id[word * 2 + 1] = (v >>> 8) & 0xff;
}

/** Word 255: signature 0xA5 and the checksum that makes the 512 bytes sum to 0 (ATA-6, IDENTIFY DEVICE word 255). */
function putChecksum(id: Uint8Array): void {
  id[510] = 0xa5;
  let sum = 0;
  for (let i = 0; i < 511; i++) sum += id[i]!;
  id[511] = (-sum) & 0xff;
}

/** IDENTIFY DEVICE data of an ATA disk (ATA-6, IDENTIFY DEVICE), words as QEMU's ide_identify sets them where it matters. */
function identifyDisk(d: IdeDrive, id: Uint8Array): void {
  id.fill(0, 0, 512);
  const n = d.totalSectors;
  putWord(id, 0, 0x0040); // fixed device, not removable
  putWord(id, 1, d.cylinders);
  putWord(id, 3, d.heads);
  putWord(id, 6, d.sectorsPerTrack);
  putString(id, 10, 10, d.serial);
  putWord(id, 20, 3); putWord(id, 21, 512); putWord(id, 22, 4); // retired buffer words QEMU still sets
  putString(id, 23, 4, d.firmware);
  putString(id, 27, 20, d.model);
  putWord(id, 47, 0x8000 | MAX_MULT_SECTORS);
  putWord(id, 48, 1); // QEMU: dword I/O on the data port
  putWord(id, 49, (1 << 11) | (1 << 9) | (1 << 8)); // IORDY, LBA, DMA
  putWord(id, 50, 0x4000);
  putWord(id, 51, 0x200); putWord(id, 52, 0x200);
  putWord(id, 53, 0x0007); // words 54-58, 64-70 and 88 valid
  putWord(id, 54, d.curCylinders); putWord(id, 55, d.curHeads); putWord(id, 56, d.curSectors);
  const chs = d.curCylinders * d.curHeads * d.curSectors;
  putWord(id, 57, chs & 0xffff); putWord(id, 58, chs >>> 16);
  if (d.multSectors) putWord(id, 59, 0x100 | d.multSectors);
  const lba28 = Math.min(n, 0x0fffffff);
  putWord(id, 60, lba28 & 0xffff); putWord(id, 61, lba28 >>> 16);
  putWord(id, 63, 0x0007 | (d.mwdmaMode >= 0 ? 0x100 << d.mwdmaMode : 0)); // MWDMA 0-2
  putWord(id, 64, 0x0003); // PIO 3-4
  putWord(id, 65, 120); putWord(id, 66, 120); putWord(id, 67, 120); putWord(id, 68, 120);
  putWord(id, 80, 0x007e); // ATA-1 to ATA-6
  putWord(id, 82, 1 << 5); // write cache
  putWord(id, 83, (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10)); // FLUSH CACHE EXT, FLUSH CACHE, 48-bit
  putWord(id, 84, 1 << 14);
  putWord(id, 85, d.writeCache ? 1 << 5 : 0);
  putWord(id, 86, (1 << 13) | (1 << 12) | (1 << 10));
  putWord(id, 87, 1 << 14);
  putWord(id, 88, 0x003f | (d.udmaMode >= 0 ? 0x100 << d.udmaMode : 0)); // UDMA 0-5
  putWord(id, 93, 0x6001); // device 0 passed, 80-conductor cable (as QEMU)
  putWord(id, 100, n % 0x10000); putWord(id, 101, Math.floor(n / 0x10000) % 0x10000);
  putWord(id, 102, Math.floor(n / 0x100000000) % 0x10000); putWord(id, 103, 0);
  putChecksum(id);
}

/** IDENTIFY PACKET DEVICE data of an ATAPI CD-ROM (ATA-6, IDENTIFY PACKET DEVICE; QEMU's ide_atapi_identify with DMA). */
function identifyCdrom(d: IdeDrive, id: Uint8Array): void {
  id.fill(0, 0, 512);
  // ATAPI (10b), CD-ROM (05h), removable, DRQ within 50 us (10b), 12-byte packets.
  putWord(id, 0, (2 << 14) | (5 << 8) | (1 << 7) | (2 << 5));
  putString(id, 10, 10, d.serial);
  putWord(id, 20, 3); putWord(id, 21, 512); putWord(id, 22, 4);
  putString(id, 23, 4, d.firmware);
  putString(id, 27, 20, d.model);
  putWord(id, 48, 1);
  putWord(id, 49, (1 << 9) | (1 << 8)); // LBA, DMA
  putWord(id, 53, 0x0007);
  putWord(id, 63, 0x0007 | (d.mwdmaMode >= 0 ? 0x100 << d.mwdmaMode : 0));
  putWord(id, 64, 0x0003);
  putWord(id, 65, 0xb4); putWord(id, 66, 0xb4); putWord(id, 67, 0x12c); putWord(id, 68, 0xb4);
  putWord(id, 71, 30); putWord(id, 72, 30);
  putWord(id, 80, 0x001e); // ATA/ATAPI-1 to -4
  putWord(id, 88, 0x003f | (d.udmaMode >= 0 ? 0x100 << d.udmaMode : 0));
  putChecksum(id);
}

/**
 * One IDE channel: two devices, their shared registers, the interrupt line
 * and the channel's half of the bus-master registers.
 */
export class IdeChannel {
  readonly drives: [IdeDrive | null, IdeDrive | null];
  /** The selected device (DEV bit of the device register). */
  unit = 0;
  /** Device control register as last written. */
  ctl = 0;
  /** INTRQ pending; the line is pending && !nIEN. */
  private irqPending = false;
  private lineLevel: 0 | 1 = 0;
  // Bus master (SFF-8038i).
  bmCmd = 0;
  bmStatus = 0;
  bmPrd = 0;
  private readonly prdAddr = new Float64Array(PRD_MAX);
  private readonly prdLen = new Uint32Array(PRD_MAX);
  /** Reports why the last DMA stopped early, for tests and logs: 'ok', 'short-prd', 'memory', 'io', 'master-disabled'. */
  lastDmaResult = 'none';

  /** Command block registers (8 ports). */
  readonly commandBlock: IoHandler = {
    read: (offset, size) => this.readCommandBlock(offset, size),
    write: (offset, size, value) => this.writeCommandBlock(offset, size, value),
    // `rep insw` on the data port (how firmware reads a disk or CD by PIO): each element as dataRead gives it.
    readBlock: (offset, size, count, dst, at, step) => {
      for (let i = 0; i < count; i++) {
        const v = this.readCommandBlock(offset, size);
        const o = at + i * step;
        if (size === 1) dst.setUint8(o, v); else if (size === 2) dst.setUint16(o, v, true); else dst.setUint32(o, v >>> 0, true);
      }
    },
  };
  /** Control block register: alternate status / device control (1 port). */
  readonly controlBlock: IoHandler = {
    read: () => this.altStatus(),
    write: (_offset, _size, value) => this.writeControl(value & 0xff),
  };

  constructor(readonly name: string, private readonly irqLines: IrqLines, readonly isaIrq: number,
    private readonly mem: GuestMemory, master: IdeDriveSpec | null, slave: IdeDriveSpec | null,
    /** Whether the PCI function may master the bus (command register bit 2). */
    private readonly busMasterEnabled: () => boolean = () => true) {
    this.drives = [master ? new IdeDrive(0, master) : null, slave ? new IdeDrive(1, slave) : null];
    for (let unit = 0; unit < 2; unit++) {
      const d = this.drives[unit];
      if (!d) { this.shadowFor(unit).setSignature(); continue; }
      d.atapi?.attach(this);
      resetDrive(d);
    }
  }

  /** The selected device, or null when it is absent. */
  get current(): IdeDrive | null { return this.drives[this.unit]; }

  /** Removes a drive from the channel (Xen's emulated-device unplug). */
  unplugDrive(unit: 0 | 1): void {
    const d = this.drives[unit];
    if (!d) return;
    if (d.dma !== DmaKind.None) d.dma = DmaKind.None;
    this.drives[unit] = null;
  }

  // ---- Interrupts -------------------------------------------------------

  /** Asserts INTRQ (QEMU's ide_set_irq): the bus master's interrupt bit follows the line. */
  raiseIrq(): void {
    this.irqPending = true;
    // Every assertion sets Interrupt, even while the line is still high from the last one.
    if (!(this.ctl & ATA_CTL_NIEN)) this.bmStatus |= BM_STATUS_INT;
    this.updateLine();
  }

  private clearIrq(): void {
    if (!this.irqPending) return;
    this.irqPending = false;
    this.updateLine();
  }

  private updateLine(): void {
    const level: 0 | 1 = this.irqPending && !(this.ctl & ATA_CTL_NIEN) ? 1 : 0;
    if (level === this.lineLevel) return;
    this.lineLevel = level;
    if (level) this.bmStatus |= BM_STATUS_INT;
    this.irqLines.setIsaIrq(this.isaIrq, level);
  }

  /** The interrupt line's level as the guest's PIC sees it. */
  get irqLevel(): 0 | 1 { return this.lineLevel; }

  // ---- Register access ------------------------------------------------

  private readCommandBlock(offset: number, size: AccessSize): number {
    if (offset === 0) return this.dataRead(size);
    // A wider access to the byte registers is that many byte accesses, as on ISA.
    let v = 0;
    for (let i = 0; i < size; i++) v |= (offset + i < 8 ? this.readRegister(offset + i) : 0xff) << (8 * i);
    return v >>> 0;
  }

  private writeCommandBlock(offset: number, size: AccessSize, value: number): void {
    if (offset === 0) { this.dataWrite(size, value); return; }
    for (let i = 0; i < size && offset + i < 8; i++) this.writeRegister(offset + i, (value >>> (8 * i)) & 0xff);
  }

  /** A register read (QEMU's ide_ioport_read): an absent device 1 reads 0 where its status would be. */
  private readRegister(reg: number): number {
    const d = this.current;
    const d0 = this.drives[0];
    const none = !d0 && !this.drives[1];
    // Registers 1-6 come from the selected device's copy, which exists even
    // when it is absent (its writes went to both); keep a shadow for that case.
    const r = d ?? this.shadowFor(this.unit);
    const hob = (this.ctl & ATA_CTL_HOB) !== 0;
    switch (reg) {
      case 1: return none || !d ? 0 : hob ? r.hobFeature : r.error;
      case 2: return none ? 0 : hob ? r.hobNsector : r.nsector & 0xff;
      case 3: return none ? 0 : hob ? r.hobSector : r.sector;
      case 4: return none ? 0 : hob ? r.hobLcyl : r.lcyl;
      case 5: return none ? 0 : hob ? r.hobHcyl : r.hcyl;
      case 6: return none ? 0 : r.select;
      default: {
        const v = none || !d ? 0 : d.status;
        this.clearIrq();
        return v;
      }
    }
  }

  private each(fn: (d: IdeDrive) => void): void {
    fn(this.drives[0] ?? this.shadowFor(0));
    fn(this.drives[1] ?? this.shadowFor(1));
  }

  /** Register copies of an absent device, written like a present one's (QEMU keeps both IDEStates). */
  private readonly shadows = [new IdeDrive(0, { kind: 'disk', backend: null }, 0), new IdeDrive(1, { kind: 'disk', backend: null }, 0)];
  private shadowFor(unit: number): IdeDrive { return this.shadows[unit]!; }

  private writeRegister(reg: number, v: number): void {
    if (reg === 7) { this.command(v); return; }
    // QEMU ignores command block writes while the selected device is BSY or has DRQ.
    const cur = this.current;
    if (cur && (cur.status & (ATA_STAT_BSY | ATA_STAT_DRQ))) return;
    // Any write to the command block clears HOB (ATA-6, Device Control register).
    this.ctl &= ~ATA_CTL_HOB;
    switch (reg) {
      case 1: this.each((d) => { d.hobFeature = d.feature; d.feature = v; }); break;
      case 2: this.each((d) => { d.hobNsector = d.nsector & 0xff; d.nsector = v; }); break;
      case 3: this.each((d) => { d.hobSector = d.sector; d.sector = v; }); break;
      case 4: this.each((d) => { d.hobLcyl = d.lcyl; d.lcyl = v; }); break;
      case 5: this.each((d) => { d.hobHcyl = d.hcyl; d.hcyl = v; }); break;
      case 6:
        this.each((d) => { d.select = v | 0xa0; });
        this.unit = (v >> 4) & 1;
        break;
    }
  }

  private altStatus(): number {
    const d = this.current;
    if ((!this.drives[0] && !this.drives[1]) || !d) return 0;
    return d.status;
  }

  /** Device control (ATA-6): SRST on its edges, nIEN gating the line, HOB for reads. */
  private writeControl(v: number): void {
    const was = this.ctl;
    this.ctl = v;
    if (!(was & ATA_CTL_SRST) && (v & ATA_CTL_SRST)) {
      // Reset asserted: BSY until it is released (QEMU's ide_cmd_write).
      for (const d of this.drives) {
        if (!d) continue;
        d.stopTransfer();
        d.dma = DmaKind.None;
        d.status = ATA_STAT_BSY | ATA_STAT_DSC;
        d.error = 0x01;
      }
      this.irqPending = false;
      this.bmStatus &= ~BM_STATUS_ACTIVE;
    } else if ((was & ATA_CTL_SRST) && !(v & ATA_CTL_SRST)) {
      // Released: each device shows its signature; ATAPI devices do not set DRDY (ATA-6, software reset protocol).
      for (let unit = 0; unit < 2; unit++) {
        const d = this.drives[unit];
        if (!d) { this.shadowFor(unit).setSignature(); continue; }
        d.status = d.kind === 'cdrom' ? 0 : ATA_STAT_DRDY | ATA_STAT_DSC;
        d.error = 0x01;
        d.atapi?.reset();
        d.setSignature();
      }
    }
    this.updateLine();
  }

  // ---- Data port: the rep insw/outsw path, allocation-free --------------

  private dataRead(size: AccessSize): number {
    const d = this.current;
    if (!d || !(d.status & ATA_STAT_DRQ) || !d.dataIn || size === 1) return size === 1 ? 0xff : 0;
    const b = d.buf;
    let p = d.pos;
    const end = d.end;
    let v = p < end ? b[p]! : 0;
    if (p + 1 < end) v |= b[p + 1]! << 8;
    if (size === 4) {
      if (p + 2 < end) v |= b[p + 2]! << 16;
      if (p + 3 < end) v |= b[p + 3]! << 24;
    }
    p += size;
    if (p >= end) { d.pos = end; this.endOfBlock(d); } else d.pos = p;
    return v >>> 0;
  }

  private dataWrite(size: AccessSize, value: number): void {
    const d = this.current;
    if (!d || !(d.status & ATA_STAT_DRQ) || d.dataIn || size === 1) return;
    const b = d.buf;
    let p = d.pos;
    const end = d.end;
    if (p < end) b[p] = value;
    if (p + 1 < end) b[p + 1] = value >>> 8;
    if (size === 4) {
      if (p + 2 < end) b[p + 2] = value >>> 16;
      if (p + 3 < end) b[p + 3] = value >>> 24;
    }
    p += size;
    if (p >= end) { d.pos = end; this.endOfBlock(d); } else d.pos = p;
  }

  /** A DRQ block has been moved: the next step of the command. */
  private endOfBlock(d: IdeDrive): void {
    const action = d.endAction;
    d.stopTransfer();
    switch (action) {
      case End.ReadBlock: this.pioReadNext(d); break;
      case End.WriteBlock: this.pioWriteBlock(d); break;
      case End.Packet: d.atapi!.packet(d.buf.subarray(0, 12)); break;
      case End.AtapiData: d.atapi!.nextBlock(); break;
      default: break;
    }
  }

  // ---- Commands -------------------------------------------------------

  private command(cmd: number): void {
    const d = this.current;
    // Commands to an absent device 1 are ignored (QEMU's ide_exec_cmd).
    if (!d) return;
    if ((d.status & (ATA_STAT_BSY | ATA_STAT_DRQ)) && cmd !== ATA_CMD.DEVICE_RESET) return;
    this.ctl &= ~ATA_CTL_HOB;
    this.clearIrq();
    d.error = 0;
    d.status = ATA_STAT_DRDY | ATA_STAT_BSY;
    d.dma = DmaKind.None;
    if (d.kind === 'cdrom') this.cdromCommand(d, cmd); else this.diskCommand(d, cmd);
  }

  /** Completes a command without data: DRDY|DSC and INTRQ. */
  complete(d: IdeDrive): void {
    d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
    this.raiseIrq();
  }

  /** Fails a command with `error` (ABRT unless said otherwise). */
  abort(d: IdeDrive, error = ATA_ERR_ABRT): void {
    d.stopTransfer();
    d.dma = DmaKind.None;
    d.error = error;
    d.status = ATA_STAT_DRDY | ATA_STAT_ERR;
    this.raiseIrq();
  }

  private cdromCommand(d: IdeDrive, cmd: number): void {
    const C = ATA_CMD;
    switch (cmd) {
      case C.PACKET:
        d.atapi!.startPacket();
        return;
      case C.IDENTIFY_PACKET:
        identifyCdrom(d, d.buf);
        d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
        d.startTransfer(0, 512, true, End.Identify);
        this.raiseIrq();
        return;
      case C.DEVICE_RESET:
      case C.EXECUTE_DIAGNOSTIC:
        d.atapi!.reset();
        d.setSignature();
        d.status = 0;
        d.error = 0x01;
        if (cmd === C.EXECUTE_DIAGNOSTIC) this.raiseIrq();
        return;
      case C.IDENTIFY:
      case C.READ_SECTORS:
      case C.READ_SECTORS_NORETRY:
        // A packet device aborts these and shows its signature (QEMU cites ATA-4 8.27.5.2).
        d.setSignature();
        this.abort(d);
        return;
      case C.SET_FEATURES: this.setFeatures(d); return;
      case C.FLUSH_CACHE:
      case C.IDLE_IMMEDIATE:
      case C.STANDBY_IMMEDIATE:
      case C.SLEEP:
        this.complete(d);
        return;
      case C.CHECK_POWER_MODE:
        d.nsector = 0xff;
        this.complete(d);
        return;
      default:
        this.abort(d);
    }
  }

  private diskCommand(d: IdeDrive, cmd: number): void {
    const C = ATA_CMD;
    if (!d.backend && cmd !== C.EXECUTE_DIAGNOSTIC) { this.abort(d); return; }
    switch (cmd) {
      case C.IDENTIFY:
        identifyDisk(d, d.buf);
        d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
        d.startTransfer(0, 512, true, End.Identify);
        this.raiseIrq();
        return;
      case C.READ_SECTORS: case C.READ_SECTORS_NORETRY: this.startPio(d, false, false, 1); return;
      case C.READ_SECTORS_EXT: this.startPio(d, false, true, 1); return;
      case C.WRITE_SECTORS: case C.WRITE_SECTORS_NORETRY: this.startPio(d, true, false, 1); return;
      case C.WRITE_SECTORS_EXT: this.startPio(d, true, true, 1); return;
      case C.READ_MULTIPLE: case C.READ_MULTIPLE_EXT:
      case C.WRITE_MULTIPLE: case C.WRITE_MULTIPLE_EXT:
        if (!d.multSectors) { this.abort(d); return; }
        this.startPio(d, cmd === C.WRITE_MULTIPLE || cmd === C.WRITE_MULTIPLE_EXT,
          cmd === C.READ_MULTIPLE_EXT || cmd === C.WRITE_MULTIPLE_EXT, d.multSectors);
        return;
      case C.READ_DMA: case C.READ_DMA_NORETRY: this.startDma(d, false, false); return;
      case C.READ_DMA_EXT: this.startDma(d, false, true); return;
      case C.WRITE_DMA: case C.WRITE_DMA_NORETRY: this.startDma(d, true, false); return;
      case C.WRITE_DMA_EXT: this.startDma(d, true, true); return;
      case C.READ_VERIFY: case C.READ_VERIFY_NORETRY: case C.READ_VERIFY_EXT: {
        const ext = cmd === C.READ_VERIFY_EXT;
        const r = this.decode(d, ext);
        if (r < 0) return;
        this.setSector(d, d.lba + d.remaining);
        this.complete(d);
        return;
      }
      case C.SEEK: {
        const lba = this.address(d, false);
        if (lba < 0 || lba >= d.totalSectors) { this.abort(d, ATA_ERR_IDNF); return; }
        this.complete(d);
        return;
      }
      case C.SET_MULTIPLE: {
        // SET MULTIPLE MODE: 0 disables multiple mode; otherwise a power of two up to word 47.
        const n = d.nsector & 0xff;
        if (n > MAX_MULT_SECTORS || (n & (n - 1)) !== 0) { this.abort(d); return; }
        d.multSectors = n;
        this.complete(d);
        return;
      }
      case C.INITIALIZE_DEVICE_PARAMETERS: {
        // INITIALIZE DEVICE PARAMETERS: the CHS translation of old BIOSes: heads = DEV/HEAD[3:0] + 1, sectors from the count.
        const spt = d.nsector & 0xff;
        const heads = (d.select & 0x0f) + 1;
        if (spt === 0) { this.abort(d); return; }
        d.curHeads = heads;
        d.curSectors = spt;
        d.curCylinders = Math.min(65535, Math.floor(Math.min(d.totalSectors, 16514064) / (heads * spt)));
        this.complete(d);
        return;
      }
      case C.RECALIBRATE:
        this.complete(d);
        return;
      case C.FLUSH_CACHE: case C.FLUSH_CACHE_EXT:
        try { d.backend!.flush(); } catch { this.abort(d); return; }
        this.complete(d);
        return;
      case C.SET_FEATURES: this.setFeatures(d); return;
      case C.IDLE_IMMEDIATE: case C.IDLE_IMMEDIATE_OLD: case C.STANDBY_IMMEDIATE: case C.STANDBY_IMMEDIATE_OLD:
      case C.IDLE: case C.STANDBY: case C.SLEEP:
        this.complete(d);
        return;
      case C.CHECK_POWER_MODE: case C.CHECK_POWER_MODE_OLD:
        d.nsector = 0xff; // active or idle
        this.complete(d);
        return;
      case C.READ_NATIVE_MAX: case C.READ_NATIVE_MAX_EXT: {
        const ext = cmd === C.READ_NATIVE_MAX_EXT;
        const max = Math.max(0, d.totalSectors - 1);
        if (!ext && max > 0x0fffffff) { this.abort(d); return; }
        d.lba48 = ext;
        this.setLba(d, max, ext);
        this.complete(d);
        return;
      }
      case C.EXECUTE_DIAGNOSTIC:
        for (const x of this.drives) {
          if (!x) continue;
          x.setSignature();
          x.error = 0x01;
          x.status = x.kind === 'cdrom' ? 0 : ATA_STAT_DRDY | ATA_STAT_DSC;
        }
        this.raiseIrq();
        return;
      default:
        // NOP, SMART (not advertised), the rest: ABRT (the error outputs of ATA-6's command descriptions).
        this.abort(d);
    }
  }

  /** SET FEATURES (ATA-6): transfer mode, write cache, and the harmless rest. */
  private setFeatures(d: IdeDrive): void {
    switch (d.feature) {
      case 0x03: {
        const mode = d.nsector & 0xff;
        const kind = mode >> 3;
        const n = mode & 7;
        if (kind === 0 || (kind === 1 && n <= 4)) { d.mwdmaMode = -1; d.udmaMode = -1; }
        else if (kind === 4 && n <= 2) { d.mwdmaMode = n; d.udmaMode = -1; }
        else if (kind === 8 && n <= 5) { d.udmaMode = n; d.mwdmaMode = -1; }
        else { this.abort(d); return; }
        this.complete(d);
        return;
      }
      case 0x02: d.writeCache = true; this.complete(d); return;
      case 0x82:
        d.writeCache = false;
        if (d.backend && d.kind === 'disk') { try { d.backend.flush(); } catch { this.abort(d); return; } }
        this.complete(d);
        return;
      case 0xaa: case 0x55: case 0xcc: case 0x66: case 0x05: case 0x85: case 0x42: case 0xc2:
        this.complete(d);
        return;
      default:
        this.abort(d);
    }
  }

  /**
   * The address in the registers: LBA28, LBA48 or CHS (ATA-6 addressing). -1 for a
   * CHS address outside the current translation.
   */
  private address(d: IdeDrive, ext: boolean): number {
    if (ext) {
      return d.sector + d.lcyl * 0x100 + d.hcyl * 0x10000 +
        (d.hobSector + d.hobLcyl * 0x100 + d.hobHcyl * 0x10000) * 0x1000000;
    }
    if (d.select & ATA_DEV_LBA) return d.sector | (d.lcyl << 8) | (d.hcyl << 16) | ((d.select & 0x0f) << 24);
    const cyl = d.lcyl | (d.hcyl << 8);
    const head = d.select & 0x0f;
    const sec = d.sector;
    if (sec === 0 || sec > d.curSectors || head >= d.curHeads || cyl >= d.curCylinders) return -1;
    return (cyl * d.curHeads + head) * d.curSectors + sec - 1;
  }

  /**
   * Reads address and count for a transfer command into d.lba/d.remaining;
   * on a bad range fails the command with IDNF (ATA-6, Error register) and returns -1.
   */
  private decode(d: IdeDrive, ext: boolean): number {
    d.lba48 = ext;
    const lba = this.address(d, ext);
    // A count of 0 is 256 sectors, or 65536 with the EXT commands.
    const count = ext ? ((d.hobNsector << 8) | (d.nsector & 0xff)) || 65536 : (d.nsector & 0xff) || 256;
    if (lba < 0 || lba + count > d.totalSectors) { this.abort(d, ATA_ERR_IDNF); return -1; }
    d.lba = lba;
    d.remaining = count;
    return 0;
  }

  /** Leaves `lba` in the registers in the command's addressing mode (QEMU's ide_set_sector). */
  private setSector(d: IdeDrive, lba: number): void {
    if (d.lba48 || d.select & ATA_DEV_LBA) { this.setLba(d, lba, d.lba48); return; }
    const spt = d.curSectors || 1;
    const heads = d.curHeads || 1;
    const cyl = Math.floor(lba / (heads * spt));
    const r = lba % (heads * spt);
    d.hcyl = (cyl >> 8) & 0xff;
    d.lcyl = cyl & 0xff;
    d.select = (d.select & 0xf0) | Math.floor(r / spt);
    d.sector = (r % spt) + 1;
  }

  private setLba(d: IdeDrive, lba: number, ext: boolean): void {
    d.sector = lba & 0xff;
    d.lcyl = (lba >>> 8) & 0xff;
    d.hcyl = (lba >>> 16) & 0xff;
    if (ext) {
      const hi = Math.floor(lba / 0x1000000);
      d.hobSector = hi & 0xff;
      d.hobLcyl = (hi >>> 8) & 0xff;
      d.hobHcyl = (hi >>> 16) & 0xff;
    } else {
      d.select = (d.select & 0xf0) | ((lba >>> 24) & 0x0f);
    }
  }

  // ---- PIO ------------------------------------------------------------

  private startPio(d: IdeDrive, write: boolean, ext: boolean, blockSectors: number): void {
    if (this.decode(d, ext) < 0) return;
    if (write && d.backend!.readOnly) { this.abort(d); return; }
    d.blockSectors = blockSectors;
    if (write) {
      // The first block is requested without an interrupt (ATA-6, PIO data-out protocol).
      d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
      d.startTransfer(0, Math.min(d.remaining, blockSectors) * SECTOR_SIZE, false, End.WriteBlock);
    } else {
      this.pioReadNext(d);
    }
  }

  /** Loads the next DRQ block of a PIO read, or ends the command. */
  private pioReadNext(d: IdeDrive): void {
    if (d.remaining === 0) {
      // The last block was read: no interrupt (ATA-6, PIO data-in protocol).
      d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
      return;
    }
    const n = Math.min(d.remaining, d.blockSectors);
    try {
      d.backend!.read(d.lba * SECTOR_SIZE, d.sectorsView(n));
    } catch {
      this.setSector(d, d.lba);
      this.abort(d, ATA_ERR_UNC | ATA_ERR_ABRT);
      return;
    }
    d.lba += n;
    d.remaining -= n;
    this.setSector(d, d.lba);
    d.nsector = d.remaining & 0xff;
    d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
    d.startTransfer(0, n * SECTOR_SIZE, true, End.ReadBlock);
    this.raiseIrq();
  }

  /** A PIO write block arrived: store it, then ask for the next or finish. */
  private pioWriteBlock(d: IdeDrive): void {
    const n = Math.min(d.remaining, d.blockSectors);
    try {
      d.backend!.write(d.lba * SECTOR_SIZE, d.sectorsView(n));
    } catch {
      this.setSector(d, d.lba);
      this.abort(d);
      return;
    }
    d.lba += n;
    d.remaining -= n;
    this.setSector(d, d.lba);
    d.nsector = d.remaining & 0xff;
    d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
    if (d.remaining > 0) {
      d.startTransfer(0, Math.min(d.remaining, d.blockSectors) * SECTOR_SIZE, false, End.WriteBlock);
    }
    this.raiseIrq();
  }

  /** Starts a PIO data-in block from buf[start, end) for the ATAPI layer. */
  atapiPioIn(d: IdeDrive, start: number, end: number): void {
    d.startTransfer(start, end, true, End.AtapiData);
  }

  /** Receives the 12-byte command packet of PACKET. */
  atapiPacketOut(d: IdeDrive): void {
    d.startTransfer(0, 12, false, End.Packet);
  }

  // ---- DMA ------------------------------------------------------------

  private startDma(d: IdeDrive, write: boolean, ext: boolean): void {
    if (this.decode(d, ext) < 0) return;
    if (write && d.backend!.readOnly) { this.abort(d); return; }
    this.armDma(d, write ? DmaKind.AtaWrite : DmaKind.AtaRead);
  }

  /** The device asserts DMARQ; the transfer runs once the bus master is started (QEMU: DRQ meanwhile). */
  armDma(d: IdeDrive, kind: DmaKind): void {
    d.dma = kind;
    d.status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_DRQ;
    if (this.bmCmd & BM_CMD_START) this.runDma();
  }

  /** Bus-master register read (offset within the channel's 8 bytes). */
  bmRead(offset: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      let b = 0;
      if (at === BM_CMD) b = this.bmCmd;
      else if (at === BM_STATUS) b = this.bmStatus;
      else if (at >= BM_PRD && at < BM_PRD + 4) b = (this.bmPrd >>> (8 * (at - BM_PRD))) & 0xff;
      v |= b << (8 * i);
    }
    return v >>> 0;
  }

  bmWrite(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const b = (value >>> (8 * i)) & 0xff;
      if (at === BM_CMD) this.bmCommand(b);
      else if (at === BM_STATUS) {
        // Interrupt and error are write-1-to-clear; the drive DMA-capable bits are scratch.
        this.bmStatus = (this.bmStatus & ~(b & (BM_STATUS_INT | BM_STATUS_ERROR)) & ~BM_STATUS_DRIVE_DMA) |
          (b & BM_STATUS_DRIVE_DMA);
      } else if (at >= BM_PRD && at < BM_PRD + 4) {
        const shift = 8 * (at - BM_PRD);
        // The table is dword aligned: bits 1:0 read as 0.
        this.bmPrd = ((this.bmPrd & ~(0xff << shift)) | (b << shift)) & ~3;
        this.bmPrd >>>= 0;
      }
    }
  }

  private bmCommand(v: number): void {
    const was = this.bmCmd;
    // The direction bit cannot change while the engine runs; QEMU keeps bits 0 and 3.
    this.bmCmd = (v & BM_CMD_START) | ((was & BM_CMD_START) && (v & BM_CMD_START) ? was & BM_CMD_WRITE : v & BM_CMD_WRITE);
    if (!(was & BM_CMD_START) && (v & BM_CMD_START)) {
      this.bmStatus |= BM_STATUS_ACTIVE;
      this.runDma();
    } else if ((was & BM_CMD_START) && !(v & BM_CMD_START)) {
      // Stopping the engine aborts a transfer that has not finished (SFF-8038i, Bus Master IDE Command register).
      this.bmStatus &= ~BM_STATUS_ACTIVE;
      for (const d of this.drives) if (d && d.dma !== DmaKind.None) d.dma = DmaKind.None;
    }
  }

  /** Walks the PRD table: fills prdAddr/prdLen, returns the count, or -1 when the table is outside RAM. */
  private loadPrds(need: number): { count: number; bytes: number } | null {
    const entry = this.prdEntry;
    let bytes = 0;
    let count = 0;
    for (let i = 0; i < PRD_MAX && bytes < need; i++) {
      try {
        this.mem.read(this.bmPrd + 8 * i, entry);
      } catch {
        return null;
      }
      const addr = (entry[0]! | (entry[1]! << 8) | (entry[2]! << 16) | (entry[3]! << 24)) >>> 0;
      const len = (entry[4]! | (entry[5]! << 8)) & 0xfffe;
      this.prdAddr[count] = addr & ~1;
      this.prdLen[count] = len === 0 ? 0x10000 : len; // a count of 0 is 64 KiB
      bytes += this.prdLen[count]!;
      count++;
      if (entry[7]! & 0x80) break; // EOT
    }
    return { count, bytes };
  }

  private readonly prdEntry = new Uint8Array(8);

  /** Runs the armed DMA transfer of the selected device to its end (or to where the PRDs end). */
  runDma(): void {
    const d = this.current;
    if (!d || d.dma === DmaKind.None || !(this.bmCmd & BM_CMD_START)) return;
    const kind = d.dma;
    const unit = kind === DmaKind.AtapiIn ? 2 : SECTOR_SIZE;
    const need = kind === DmaKind.AtapiIn ? d.atapi!.dmaBytes() : d.remaining * SECTOR_SIZE;
    if (!this.busMasterEnabled()) { this.dmaFault(d, 'master-disabled'); return; }
    const prds = this.loadPrds(need);
    if (!prds) { this.dmaFault(d, 'memory'); return; }
    const usable = Math.min(prds.bytes, need);
    const moveBytes = usable - (usable % unit);
    // Scatter/gather over the descriptors, one staging chunk at a time.
    let seg = 0;
    let segOff = 0;
    let done = 0;
    const stage = d.buf;
    while (done < moveBytes) {
      const chunk = Math.min(stage.length, moveBytes - done);
      const view = stage.subarray(0, chunk);
      if (kind === DmaKind.AtaWrite) {
        // Guest memory -> device.
        let off = 0;
        try {
          while (off < chunk) {
            const n = Math.min(this.prdLen[seg]! - segOff, chunk - off);
            this.mem.read(this.prdAddr[seg]! + segOff, view.subarray(off, off + n));
            off += n; segOff += n;
            if (segOff === this.prdLen[seg]) { seg++; segOff = 0; }
          }
        } catch { this.dmaFault(d, 'memory'); return; }
        try { d.backend!.write(d.lba * SECTOR_SIZE, view); } catch { this.dmaIoError(d); return; }
        d.lba += chunk / SECTOR_SIZE;
        d.remaining -= chunk / SECTOR_SIZE;
      } else {
        // Device -> guest memory.
        if (kind === DmaKind.AtaRead) {
          try { d.backend!.read(d.lba * SECTOR_SIZE, view); } catch { this.dmaIoError(d); return; }
          d.lba += chunk / SECTOR_SIZE;
          d.remaining -= chunk / SECTOR_SIZE;
        } else if (!d.atapi!.dmaFill(view, done)) { this.dmaIoError(d); return; }
        let off = 0;
        try {
          while (off < chunk) {
            const n = Math.min(this.prdLen[seg]! - segOff, chunk - off);
            this.mem.write(this.prdAddr[seg]! + segOff, view.subarray(off, off + n));
            off += n; segOff += n;
            if (segOff === this.prdLen[seg]) { seg++; segOff = 0; }
          }
        } catch { this.dmaFault(d, 'memory'); return; }
      }
      done += chunk;
    }
    d.dma = DmaKind.None;
    if (kind !== DmaKind.AtapiIn) { this.setSector(d, d.lba); d.nsector = d.remaining & 0xff; }
    if (moveBytes < need) {
      // The PRDs were too short: Active goes, no interrupt, the device stops (QEMU's ide_dma_cb).
      this.bmStatus &= ~BM_STATUS_ACTIVE;
      d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
      this.lastDmaResult = 'short-prd';
      return;
    }
    // Active stays set when the PRDs describe more than the device moved (SFF-8038i, the Interrupt/Active table of the Status register).
    if (prds.bytes <= need) this.bmStatus &= ~BM_STATUS_ACTIVE;
    this.lastDmaResult = 'ok';
    if (kind === DmaKind.AtapiIn) d.atapi!.dmaDone();
    else this.complete(d);
  }

  /** A descriptor or buffer outside guest RAM, or bus mastering disabled: a PCI master abort. */
  private dmaFault(d: IdeDrive, why: string): void {
    this.lastDmaResult = why;
    this.bmStatus = (this.bmStatus | BM_STATUS_ERROR) & ~BM_STATUS_ACTIVE;
    if (d.kind === 'cdrom') d.atapi!.dmaAborted(); else this.abort(d);
  }

  private dmaIoError(d: IdeDrive): void {
    this.lastDmaResult = 'io';
    this.bmStatus &= ~BM_STATUS_ACTIVE;
    if (d.kind === 'cdrom') { d.atapi!.dmaIoError(); return; }
    this.setSector(d, d.lba);
    this.abort(d, ATA_ERR_UNC | ATA_ERR_ABRT);
  }

  /** Power-on or PCI reset of the channel. */
  reset(): void {
    for (let unit = 0; unit < 2; unit++) {
      const d = this.drives[unit];
      if (d) resetDrive(d); else this.shadowFor(unit).setSignature();
    }
    this.unit = 0;
    this.ctl = 0;
    this.bmCmd = 0;
    this.bmStatus = 0;
    this.bmPrd = 0;
    this.irqPending = false;
    this.updateLine();
  }
}
