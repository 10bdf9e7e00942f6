// The ATAPI side of an IDE CD-ROM: the PACKET protocol (ATA-6's
// PACKET protocol, SFF-8020i) and the SCSI/MMC commands that Linux's sr driver, udev's
// cdrom_id, SeaBIOS's El Torito boot and isolinux send (SPC-3, MMC-3).
//
//   PACKET (A0h) -> DRQ, reason C/D=1: the host writes 12 bytes of CDB
//   data-in, PIO -> DRQ + INTRQ, reason I/O=1, byte count in LBA mid/high,
//                   at most the host's byte count limit per DRQ block
//   data-in, DMA -> (features bit 0) through the bus master, then INTRQ
//   status       -> DRDY (+CHK and sense key in the error register), reason I/O=1 C/D=1, INTRQ
//
// Sense data is kept until the next command other than REQUEST SENSE, as a
// SCSI target without autosense does. Sector reads come straight from the
// back end by byte offset, so a host byte count limit that does not divide
// 2048 is served without a second buffer. Every length the host sends (the
// transfer length of READ, allocation lengths, the byte count limit) is
// checked or clamped before anything moves: a READ past the last block
// fails with LOGICAL BLOCK ADDRESS OUT OF RANGE, a length of 0 completes
// with no data, a byte count limit of 0 is taken as the largest one.
import type { BlockBackend } from './backend.js';
import type { IdeChannel, IdeDrive } from './ide.js';
import { ATA_STAT_DRDY, ATA_STAT_DSC, ATA_STAT_ERR, DmaKind } from './ide.js';

export const CD_SECTOR_SIZE = 2048;
/** A disc larger than 80 minutes of CD is a DVD (QEMU's media_is_dvd: CD_MAX_SECTORS). */
const CD_MAX_SECTORS = 80 * 60 * 75;

// Interrupt reason (sector count register) bits.
const REASON_COD = 0x01;
const REASON_IO = 0x02;

// Sense keys (SPC-3) and additional sense codes.
export const SENSE = { NONE: 0, NOT_READY: 2, MEDIUM_ERROR: 3, ILLEGAL_REQUEST: 5, UNIT_ATTENTION: 6, ABORTED_COMMAND: 0x0b } as const;
export const ASC = {
  UNRECOVERED_READ_ERROR: 0x11, INVALID_OPCODE: 0x20, LBA_OUT_OF_RANGE: 0x21, INVALID_FIELD: 0x24,
  MEDIUM_MAY_HAVE_CHANGED: 0x28, SAVING_NOT_SUPPORTED: 0x39, MEDIUM_NOT_PRESENT: 0x3a,
  MEDIUM_REMOVAL_PREVENTED: 0x53,
} as const;

// Operation codes (SPC-3, MMC-3).
export const GPCMD = {
  TEST_UNIT_READY: 0x00, REQUEST_SENSE: 0x03, INQUIRY: 0x12, START_STOP_UNIT: 0x1b,
  PREVENT_ALLOW_MEDIUM_REMOVAL: 0x1e, READ_CAPACITY: 0x25, READ_10: 0x28, SEEK_10: 0x2b,
  READ_TOC: 0x43, GET_CONFIGURATION: 0x46, GET_EVENT_STATUS_NOTIFICATION: 0x4a,
  READ_DISC_INFORMATION: 0x51, MODE_SENSE_10: 0x5a, READ_12: 0xa8, SET_CD_SPEED: 0xbb,
  MECHANISM_STATUS: 0xbd,
} as const;

/** Commands allowed while a unit attention is pending (QEMU's ALLOW_UA). */
const ALLOW_UA = new Set<number>([GPCMD.INQUIRY, GPCMD.REQUEST_SENSE, GPCMD.GET_CONFIGURATION, GPCMD.GET_EVENT_STATUS_NOTIFICATION]);
/** Commands that need a disc in a closed tray (QEMU's CHECK_READY). */
const NEED_MEDIUM = new Set<number>([GPCMD.TEST_UNIT_READY, GPCMD.READ_CAPACITY, GPCMD.READ_10, GPCMD.READ_12,
  GPCMD.SEEK_10, GPCMD.READ_TOC, GPCMD.READ_DISC_INFORMATION]);

const enum Source { None, Reply, Disc }

const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const be32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
function put16(b: Uint8Array, o: number, v: number): void { b[o] = (v >>> 8) & 0xff; b[o + 1] = v & 0xff; }
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff; b[o + 1] = (v >>> 16) & 0xff; b[o + 2] = (v >>> 8) & 0xff; b[o + 3] = v & 0xff;
}
function putAscii(b: Uint8Array, o: number, len: number, s: string): void {
  for (let i = 0; i < len; i++) b[o + i] = i < s.length ? s.charCodeAt(i) & 0x7f : 0x20;
}

/** A CD/DVD address: an LBA, or MSF (minute, second, frame) counted from the 2-second pregap (MMC-3). */
function putAddress(b: Uint8Array, o: number, lba: number, msf: boolean): void {
  if (!msf) { put32(b, o, lba); return; }
  const f = lba + 150;
  b[o] = 0;
  b[o + 1] = Math.floor(f / (75 * 60)) & 0xff;
  b[o + 2] = Math.floor(f / 75) % 60;
  b[o + 3] = f % 75;
}

export class AtapiDevice {
  private channel!: IdeChannel;
  senseKey = 0;
  asc = 0;
  ascq = 0;
  /** A new disc went in: the next command (but those of ALLOW_UA) gets UNIT ATTENTION. */
  unitAttention = false;
  /** Media event for GET EVENT STATUS NOTIFICATION: 0 none, 2 new media, 3 media removal (MMC-3, media event codes). */
  mediaEvent = 0;
  trayOpen = false;
  locked = false;
  private readonly cdb = new Uint8Array(12);
  private dmaRequested = false;
  private byteCountLimit = 0;
  private source = Source.None;
  private discLba = 0;
  private total = 0;
  private done = 0;

  constructor(private readonly d: IdeDrive) {}

  attach(channel: IdeChannel): void { this.channel = channel; }

  /** Blocks on the disc (0 without one). */
  get sectors(): number { return this.d.backend ? Math.floor(this.d.backend.size / CD_SECTOR_SIZE) : 0; }

  private get mediumPresent(): boolean { return !this.trayOpen && this.sectors > 0; }

  /** Device reset: the transfer goes; the tray, lock and pending events stay. */
  reset(): void {
    this.source = Source.None;
    this.total = 0;
    this.done = 0;
  }

  /** Puts a disc in (or takes it out, with null), as a user at the drive would. */
  changeMedium(backend: BlockBackend | null): void {
    this.d.backend = backend;
    this.trayOpen = false;
    if (backend) { this.mediaEvent = 2; this.unitAttention = true; } else this.mediaEvent = 3;
  }

  // ---- The PACKET protocol --------------------------------------------

  /** PACKET: DRQ for the 12-byte CDB, no interrupt (IDENTIFY PACKET word 0: DRQ within 50 us). */
  startPacket(): void {
    const d = this.d;
    this.dmaRequested = (d.feature & 1) !== 0;
    this.byteCountLimit = d.lcyl | (d.hcyl << 8);
    d.nsector = (d.nsector & ~7) | REASON_COD;
    d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
    this.channel.atapiPacketOut(d);
  }

  /** The CDB has arrived: copied once, then executed. */
  packet(bytes: Uint8Array): void {
    this.cdb.set(bytes);
    this.source = Source.None;
    try {
      this.execute();
    } catch {
      // A back end that fails in an unexpected way is a hardware error, not a dead device model.
      this.error(SENSE.MEDIUM_ERROR, ASC.UNRECOVERED_READ_ERROR);
    }
  }

  private ok(): void {
    const d = this.d;
    this.source = Source.None;
    d.error = 0;
    d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
    d.nsector = (d.nsector & ~7) | REASON_IO | REASON_COD;
    d.stopTransfer();
    this.channel.raiseIrq();
  }

  /** CHECK CONDITION: the sense key in the error register's high nibble (QEMU's ide_atapi_cmd_error). */
  private error(key: number, asc: number, ascq = 0): void {
    const d = this.d;
    this.senseKey = key;
    this.asc = asc;
    this.ascq = ascq;
    this.source = Source.None;
    d.stopTransfer();
    d.dma = DmaKind.None;
    d.error = key << 4;
    d.status = ATA_STAT_DRDY | ATA_STAT_ERR;
    d.nsector = (d.nsector & ~7) | REASON_IO | REASON_COD;
    this.channel.raiseIrq();
  }

  /** Sends buf[0, len) clamped to the allocation length. */
  private reply(len: number, alloc: number): void {
    this.source = Source.Reply;
    this.total = Math.min(len, alloc);
    this.done = 0;
    this.begin();
  }

  private readSectors(lba: number, count: number): void {
    if (count === 0) { this.ok(); return; }
    if (lba + count > this.sectors) { this.error(SENSE.ILLEGAL_REQUEST, ASC.LBA_OUT_OF_RANGE); return; }
    this.source = Source.Disc;
    this.discLba = lba;
    this.total = count * CD_SECTOR_SIZE;
    this.done = 0;
    this.begin();
  }

  private begin(): void {
    if (this.total === 0) { this.ok(); return; }
    if (this.dmaRequested) {
      this.d.nsector = (this.d.nsector & ~7) | REASON_IO;
      this.channel.armDma(this.d, DmaKind.AtapiIn);
      return;
    }
    this.nextBlock();
  }

  /** The next PIO DRQ block, of at most the byte count limit (even when it is cut: ATA-6, PACKET protocol). */
  nextBlock(): void {
    const d = this.d;
    if (this.source === Source.None || this.done >= this.total) { this.ok(); return; }
    let bcl = this.byteCountLimit;
    if (bcl === 0 || bcl === 0xffff) bcl = 0xfffe;
    let n = this.total - this.done;
    if (n > bcl) n = bcl & ~1;
    let start = this.done;
    if (this.source === Source.Disc) {
      n = Math.min(n, d.buf.length);
      const backend = d.backend;
      try {
        if (!backend) throw new Error('no disc');
        backend.read(this.discLba * CD_SECTOR_SIZE + this.done, d.buf.subarray(0, n));
      } catch {
        this.error(SENSE.MEDIUM_ERROR, ASC.UNRECOVERED_READ_ERROR);
        return;
      }
      start = 0;
    }
    this.done += n;
    d.lcyl = n & 0xff;
    d.hcyl = (n >>> 8) & 0xff;
    d.nsector = (d.nsector & ~7) | REASON_IO;
    d.status = ATA_STAT_DRDY | ATA_STAT_DSC;
    this.channel.atapiPioIn(d, start, start + n);
    this.channel.raiseIrq();
  }

  // ---- DMA (the channel's bus master calls these) ---------------------

  dmaBytes(): number { return this.total - this.done; }

  /** Fills `view` with the transfer's bytes from `offset`; false when the disc cannot be read. */
  dmaFill(view: Uint8Array, offset: number): boolean {
    if (this.source === Source.Reply) {
      // The reply already sits in the staging buffer (at most one chunk long).
      if (offset > 0) this.d.buf.copyWithin(0, offset, offset + view.length);
      return true;
    }
    const backend = this.d.backend;
    if (!backend) return false;
    try {
      backend.read(this.discLba * CD_SECTOR_SIZE + offset, view);
    } catch {
      return false;
    }
    return true;
  }

  dmaDone(): void { this.done = this.total; this.ok(); }

  /** The bus master hit memory outside RAM (or was not allowed to master): the command is aborted. */
  dmaAborted(): void { this.error(SENSE.ABORTED_COMMAND, 0); }

  /** The disc failed during DMA. */
  dmaIoError(): void { this.error(SENSE.MEDIUM_ERROR, ASC.UNRECOVERED_READ_ERROR); }

  // ---- Commands --------------------------------------------------------

  private execute(): void {
    const c = this.cdb;
    const op = c[0]!;
    if (op !== GPCMD.REQUEST_SENSE) { this.senseKey = 0; this.asc = 0; this.ascq = 0; }
    if (this.unitAttention && !ALLOW_UA.has(op)) {
      this.unitAttention = false;
      this.error(SENSE.UNIT_ATTENTION, ASC.MEDIUM_MAY_HAVE_CHANGED);
      return;
    }
    if (NEED_MEDIUM.has(op) && !this.mediumPresent) {
      this.error(SENSE.NOT_READY, ASC.MEDIUM_NOT_PRESENT, this.trayOpen ? 0x02 : 0x01);
      return;
    }
    const b = this.d.buf;
    switch (op) {
      case GPCMD.TEST_UNIT_READY: this.ok(); return;
      case GPCMD.REQUEST_SENSE: {
        // Fixed format sense data (SPC-3).
        if (this.unitAttention) {
          this.unitAttention = false;
          this.senseKey = SENSE.UNIT_ATTENTION; this.asc = ASC.MEDIUM_MAY_HAVE_CHANGED; this.ascq = 0;
        }
        b.fill(0, 0, 18);
        b[0] = 0x70;
        b[2] = this.senseKey;
        b[7] = 10;
        b[12] = this.asc;
        b[13] = this.ascq;
        this.senseKey = 0; this.asc = 0; this.ascq = 0;
        this.reply(18, c[4]!);
        return;
      }
      case GPCMD.INQUIRY: {
        if (c[1]! & 1) { this.error(SENSE.ILLEGAL_REQUEST, ASC.INVALID_FIELD); return; } // no VPD pages
        // Standard INQUIRY data (SPC-3): CD/DVD, removable, as QEMU's.
        b.fill(0, 0, 36);
        b[0] = 0x05;
        b[1] = 0x80;
        b[2] = 0x00;
        b[3] = 0x21; // response data format 1, ATAPI version 2
        b[4] = 36 - 5;
        putAscii(b, 8, 8, 'QEMU');
        putAscii(b, 16, 16, this.d.model);
        putAscii(b, 32, 4, this.d.firmware);
        this.reply(36, be16(c, 3));
        return;
      }
      case GPCMD.START_STOP_UNIT: {
        const loej = (c[4]! & 2) !== 0;
        const start = (c[4]! & 1) !== 0;
        if (loej && !start) {
          if (this.locked) { this.error(SENSE.ILLEGAL_REQUEST, ASC.MEDIUM_REMOVAL_PREVENTED, 0x02); return; }
          if (!this.trayOpen && this.d.backend) this.mediaEvent = 3;
          this.trayOpen = true;
        } else if (loej && start) {
          if (this.trayOpen && this.d.backend) this.mediaEvent = 2;
          this.trayOpen = false;
        }
        this.ok();
        return;
      }
      case GPCMD.PREVENT_ALLOW_MEDIUM_REMOVAL:
        this.locked = (c[4]! & 1) !== 0;
        this.ok();
        return;
      case GPCMD.READ_CAPACITY:
        put32(b, 0, this.sectors - 1);
        put32(b, 4, CD_SECTOR_SIZE);
        this.reply(8, 8);
        return;
      case GPCMD.READ_10: this.readSectors(be32(c, 2), be16(c, 7)); return;
      case GPCMD.READ_12: this.readSectors(be32(c, 2), be32(c, 6)); return;
      case GPCMD.SEEK_10:
        if (be32(c, 2) >= this.sectors) { this.error(SENSE.ILLEGAL_REQUEST, ASC.LBA_OUT_OF_RANGE); return; }
        this.ok();
        return;
      case GPCMD.READ_TOC: this.readToc(); return;
      case GPCMD.GET_CONFIGURATION: this.getConfiguration(); return;
      case GPCMD.GET_EVENT_STATUS_NOTIFICATION: this.getEventStatus(); return;
      case GPCMD.READ_DISC_INFORMATION: {
        if (c[1]! & 7) { this.error(SENSE.ILLEGAL_REQUEST, ASC.INVALID_FIELD); return; }
        // Disc information (MMC-3 READ DISC INFORMATION): a complete disc of one session with one track.
        b.fill(0, 0, 34);
        put16(b, 0, 32);
        b[2] = 0x0e; // last session complete, disc complete
        b[3] = 1; // first track
        b[4] = 1; // sessions
        b[5] = 1; // first track of the last session
        b[6] = 1; // last track of the last session
        b[7] = 0x20; // unrestricted use
        b[8] = 0x00; // CD-DA or CD-ROM
        put32(b, 16, 0xffffffff); // no lead-in of a next session
        put32(b, 20, 0xffffffff);
        this.reply(34, be16(c, 7));
        return;
      }
      case GPCMD.MODE_SENSE_10: this.modeSense(); return;
      case GPCMD.SET_CD_SPEED: this.ok(); return;
      case GPCMD.MECHANISM_STATUS:
        // MMC-3 MECHANISM STATUS: no changer, idle, the tray's state.
        b.fill(0, 0, 8);
        b[1] = this.trayOpen ? 0x10 : 0;
        this.reply(8, be16(c, 8));
        return;
      default:
        this.error(SENSE.ILLEGAL_REQUEST, ASC.INVALID_OPCODE);
    }
  }

  /** READ TOC/PMA/ATIP (MMC-3) formats 0 (TOC) and 1 (session info); one data track from block 0. */
  private readToc(): void {
    const c = this.cdb;
    const b = this.d.buf;
    const msf = (c[1]! & 2) !== 0;
    // SFF-8020i put the format in the top bits of byte 9.
    const format = (c[2]! & 0x0f) || (c[9]! >> 6);
    const startTrack = c[6]!;
    const alloc = be16(c, 7);
    if (format === 0) {
      if (startTrack > 1 && startTrack !== 0xaa) { this.error(SENSE.ILLEGAL_REQUEST, ASC.INVALID_FIELD); return; }
      let o = 4;
      if (startTrack <= 1) {
        b[o] = 0; b[o + 1] = 0x14; b[o + 2] = 1; b[o + 3] = 0; // ADR 1, data track
        putAddress(b, o + 4, 0, msf);
        o += 8;
      }
      b[o] = 0; b[o + 1] = 0x14; b[o + 2] = 0xaa; b[o + 3] = 0; // lead-out
      putAddress(b, o + 4, this.sectors, msf);
      o += 8;
      put16(b, 0, o - 2);
      b[2] = 1; b[3] = 1;
      this.reply(o, alloc);
      return;
    }
    if (format === 1) {
      put16(b, 0, 0x0a);
      b[2] = 1; b[3] = 1;
      b[4] = 0; b[5] = 0x14; b[6] = 1; b[7] = 0;
      putAddress(b, 8, 0, msf);
      this.reply(12, alloc);
      return;
    }
    this.error(SENSE.ILLEGAL_REQUEST, ASC.INVALID_FIELD);
  }

  /** GET CONFIGURATION (MMC-3, features and profiles): the profile list and the features a read-only drive has. */
  private getConfiguration(): void {
    const c = this.cdb;
    const b = this.d.buf;
    const rt = c[1]! & 3;
    const startFeature = be16(c, 2);
    const alloc = be16(c, 7);
    if (rt === 3) { this.error(SENSE.ILLEGAL_REQUEST, ASC.INVALID_FIELD); return; }
    const media = this.mediumPresent;
    const dvd = media && this.sectors > CD_MAX_SECTORS;
    const profile = !media ? 0 : dvd ? 0x0010 : 0x0008;
    b.fill(0, 0, 128);
    put16(b, 6, profile);
    let o = 8;
    const feature = (code: number, version: number, current: boolean, data: number[]): void => {
      const want = rt === 2 ? code === startFeature : code >= startFeature && (rt === 0 || current);
      if (!want) return;
      put16(b, o, code);
      b[o + 2] = (version << 2) | 0x02 /* persistent */ * (code <= 3 ? 1 : 0) | (current ? 1 : 0);
      b[o + 3] = data.length;
      for (let i = 0; i < data.length; i++) b[o + 4 + i] = data[i]!;
      o += 4 + data.length;
    };
    // Profile list: DVD-ROM then CD-ROM, each with its current flag.
    feature(0x0000, 0, true, [0x00, 0x10, profile === 0x10 ? 1 : 0, 0, 0x00, 0x08, profile === 0x08 ? 1 : 0, 0]);
    feature(0x0001, 0, true, [0, 0, 0, 2]); // core: ATAPI
    feature(0x0002, 1, true, [0x02, 0, 0, 0]); // morphing: operational change events
    feature(0x0003, 0, true, [0x29 | (this.locked ? 0x04 : 0), 0, 0, 0]); // removable: tray, eject, lock
    feature(0x0010, 0, media, [0, 0, 0x08, 0x00, 0, dvd ? 16 : 1, 0, 0]); // random readable, 2048-byte blocks
    feature(0x001e, 0, media && !dvd, []); // CD read
    feature(0x001f, 0, dvd, []); // DVD read
    put32(b, 0, o - 4);
    this.reply(o, alloc);
  }

  /** GET EVENT STATUS NOTIFICATION (MMC-3), polled, media class only. */
  private getEventStatus(): void {
    const c = this.cdb;
    const b = this.d.buf;
    if (!(c[1]! & 1)) { this.error(SENSE.ILLEGAL_REQUEST, ASC.INVALID_FIELD); return; } // asynchronous: not supported
    const alloc = be16(c, 7);
    b.fill(0, 0, 8);
    b[3] = 0x10; // supported classes: media
    if (!(c[4]! & 0x10)) {
      put16(b, 0, 2);
      b[2] = 0x80; // no event available
      this.reply(4, alloc);
      return;
    }
    put16(b, 0, 6);
    b[2] = 0x04; // media class
    b[4] = this.mediaEvent;
    b[5] = (this.trayOpen ? 1 : 0) | (this.mediumPresent ? 2 : 0);
    this.mediaEvent = 0;
    this.reply(8, alloc);
  }

  /** MODE SENSE(10) (SPC-3, MMC-3 mode pages): read error recovery (01h) and CD capabilities (2Ah), changeable values all 0. */
  private modeSense(): void {
    const c = this.cdb;
    const b = this.d.buf;
    const pc = c[2]! >> 6;
    const page = c[2]! & 0x3f;
    const alloc = be16(c, 7);
    if (pc === 3) { this.error(SENSE.ILLEGAL_REQUEST, ASC.SAVING_NOT_SUPPORTED); return; }
    if (page !== 0x01 && page !== 0x2a && page !== 0x3f) { this.error(SENSE.ILLEGAL_REQUEST, ASC.INVALID_FIELD); return; }
    const changeable = pc === 1;
    b.fill(0, 0, 64);
    b[2] = 0x70; // medium type as QEMU reports it
    let o = 8;
    if (page === 0x01 || page === 0x3f) {
      b[o] = 0x01; b[o + 1] = 6;
      if (!changeable) b[o + 3] = 5; // read retry count
      o += 8;
    }
    if (page === 0x2a || page === 0x3f) {
      b[o] = 0x2a; b[o + 1] = 20;
      if (!changeable) {
        b[o + 2] = 0x3b; // reads CD-R, CD-RW, DVD-ROM, DVD-R, DVD-RAM
        b[o + 4] = 0x71; // audio play (Linux looks for it), mode 2 forms, multisession
        b[o + 5] = 0x60;
        b[o + 6] = 0x29 | (this.locked ? 0x02 : 0); // lock, eject, tray loader
        put16(b, o + 8, 706); // maximum speed (KB/s)
        put16(b, o + 10, 2); // volume levels
        put16(b, o + 12, 512); // buffer (KiB)
        put16(b, o + 14, 706); // current speed
      }
      o += 22;
    }
    put16(b, 0, o - 2);
    this.reply(o, alloc);
  }
}
