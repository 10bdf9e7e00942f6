// An NVM Express 1.4 controller with one namespace (PCI 1b36:0010, the ID of
// QEMU's `nvme`), after the NVM Express Base Specification 1.4c with Linux's
// nvme driver (drivers/nvme/host/pci.c, core.c) as the judge of what must
// work. Register and status names are in nvme_regs.ts.
//
// Two layers, as the e1000: `Nvme` is the controller (registers, admin and
// I/O queues, commands) and needs only guest memory for DMA, a clock, a
// BlockBackend and an interrupt sink, so a device process can host it as a
// "physical" disk of a host; `NvmePci` puts it on PCI: BAR0 64-bit, 16 KiB,
// with the registers at 0, doorbells at 0x1000 (CAP.DSTRD 0), the MSI-X
// table at 0x2000 and its PBA at 0x3000; MSI-X and INTA#, a PCI Express
// capability with function-level reset.
//
// Queues are physically contiguous (CAP.CQR); data moves through PRPs only
// (no SGLs), with 4 KiB memory pages (CAP.MPSMIN = MPSMAX = 0). The
// namespace has 512-byte LBAs, as many as the back end holds. Commands run
// to completion inside the doorbell write that submits them (the back end
// is synchronous, shared/hw/backend.ts), so Abort never finds its target.
//
// A hostile driver cannot make the model throw or spin: a PRP or queue
// outside guest memory completes the command with Data Transfer Error (or,
// for a queue entry that cannot be read or written, stops that queue),
// misaligned PRPs with Invalid PRP Offset, transfers over MDTS with Invalid
// Field, LBAs past the namespace with LBA Out of Range, doorbells of queues
// that do not exist or with values past the queue's size are ignored and
// reported as asynchronous error events (5.2), and each is counted in
// `faults` under a named reason. A doorbell write does at most IO_BUDGET
// commands and bytes; the rest continues on a timer.
import type { BlockBackend } from './backend.js';
import { dmaRead, dmaView, dmaWrite, type AccessSize, type Clock, type GuestMemory } from './machine.js';
import * as N from './nvme_regs.js';

export const NVME_VENDOR_ID = 0x1b36; // Red Hat, QEMU's
export const NVME_DEVICE_ID = 0x0010;
export const NVME_SUBSYS_VENDOR_ID = 0x1af4;
export const NVME_SUBSYS_ID = 0x1100;
export const NVME_CLASS = 0x010802; // mass storage, non-volatile memory, NVMe
export const NVME_BAR0_SIZE = 0x4000;
export const NVME_MSIX_TABLE = 0x2000;
export const NVME_MSIX_PBA = 0x3000;
export const NVME_LBA_SIZE = 512;
const NVME_LBA_SHIFT = 9;
/** The memory page size (CC.MPS 0). */
const MPS = 4096;

/** Most entries a queue may have (CAP.MQES + 1). */
export const NVME_MAX_QUEUE_ENTRIES = 1024;
/** I/O queue pairs offered (Set Features Number of Queues). */
export const NVME_MAX_IO_QUEUES = 16;
/** Admin commands: AERs the controller keeps at once (AERL + 1). */
export const NVME_AER_LIMIT = 4;
/** Work one doorbell write may do before the rest is left to a timer. */
export const IO_BUDGET_COMMANDS = 256;
export const IO_BUDGET_BYTES = 4 << 20;
/** Error log entries kept (ELPE + 1). */
const ERROR_LOG_ENTRIES = 4;

/** Why the controller refused or could not do something, counted in `faults`. */
export const NVME_FAULT_REASONS = [
  'bad_enable', // CC.EN set with admin queues or CC fields the controller cannot use (CSTS.CFS)
  'doorbell_invalid', // a doorbell of a queue that does not exist
  'doorbell_value', // an SQ tail or CQ head past the queue's size
  'sq_dma_fault', // a submission entry outside guest memory: the queue stops there
  'cq_dma_fault', // a completion entry outside guest memory: the completion is lost
  'prp_dma_fault', // a PRP list outside guest memory
  'prp_offset', // a PRP entry with an offset where the spec allows none
  'data_dma_fault', // a data buffer outside guest memory
  'mdts_exceeded', // a transfer longer than MDTS
  'lba_range', // LBAs past the namespace
  'backend_error', // the back end threw (media error)
  'invalid_opcode', // an opcode the controller does not implement
  'invalid_field', // a field the command does not allow
  'internal', // the model itself failed a command (a bug; lastInternal says what)
] as const;
export type NvmeFault = (typeof NVME_FAULT_REASONS)[number];

export interface NvmeOptions {
  serial?: string;
  /** MDTS: the largest transfer is 2^mdts pages of 4 KiB (default 7: 512 KiB, as QEMU's). */
  mdts?: number;
}

/** What the controller needs of whoever hosts it. */
export interface NvmeHost { mem: GuestMemory; clock: Clock }

/** Where the controller's interrupts go (NvmePci: MSI-X vectors or INTA#). */
export interface NvmeIrq {
  /** Whether vectors are messages (MSI-X on); otherwise the pin follows `pin`. */
  readonly msix: boolean;
  /** Completions were posted to a queue bound to `vector`. */
  message(vector: number): void;
  /** The level of the pin interrupt (INTx). */
  pin(level: 0 | 1): void;
}

interface Sq { id: number; base: number; size: number; head: number; tail: number; cqid: number }
interface Cq { id: number; base: number; size: number; head: number; tail: number; phase: number; ien: boolean; iv: number; sqs: number }

/** A command's outcome: status field (SCT << 8 | SC, with DNR) and DW0. */
interface Done { status: number; dw0: number }

const ok = (dw0 = 0): Done => ({ status: N.NVME_SC_SUCCESS, dw0 });
const err = (status: number): Done => ({ status: status | N.NVME_SC_DNR, dw0: 0 });

/** A PRP walk's result: the pages of a transfer, or why it cannot be done. */
type Segments = { segs: [number, number][] } | { fault: NvmeFault; status: number };

export class Nvme {
  private cc = 0;
  private csts = 0;
  private intms = 0;
  private aqa = 0;
  private asq = 0;
  private acq = 0;
  private readonly sqs: (Sq | undefined)[] = [];
  private readonly cqs: (Cq | undefined)[] = [];
  private pinLevel: 0 | 1 = 0;
  private dmaOn = true;
  private busy = false;
  private again = false;
  private timer: number | null = null;
  private readonly aerPending: number[] = []; // CIDs of outstanding AERs
  private readonly events: number[] = []; // DW0s of events waiting for an AER
  private errorMasked = false; // an error event was reported and its log not yet read
  private readonly errorLog: Uint8Array[] = [];
  private errorCount = 0;
  private readonly features = new Map<number, number>();
  private readonly ivConfig = new Map<number, number>();
  private readonly stats = { readUnits: 0, writeUnits: 0, reads: 0, writes: 0, mediaErrors: 0, powerCycles: 1 };
  readonly faults = Object.fromEntries(NVME_FAULT_REASONS.map((k) => [k, 0])) as Record<NvmeFault, number>;
  /** The exception behind the last `internal` fault. */
  lastInternal = '';
  readonly serial: string;
  readonly mdts: number;
  /** LBAs in namespace 1. */
  readonly nsze: number;
  private readonly sqe = new Uint8Array(N.NVME_SQE_SIZE);
  private readonly sqeView = new DataView(this.sqe.buffer);
  private readonly cqe = new Uint8Array(N.NVME_CQE_SIZE);
  private readonly cqeView = new DataView(this.cqe.buffer);
  private readonly entry8 = new Uint8Array(8);

  constructor(private readonly host: NvmeHost, private readonly disk: BlockBackend, private readonly irq: NvmeIrq,
    opts: NvmeOptions = {}) {
    this.serial = (opts.serial ?? 'XENEMU0001').slice(0, 20);
    this.mdts = opts.mdts ?? 7;
    if (!Number.isInteger(this.mdts) || this.mdts < 1 || this.mdts > 12) throw new RangeError(`nvme: MDTS ${this.mdts}`);
    this.nsze = Math.floor(disk.size / NVME_LBA_SIZE);
    this.reset();
  }

  /** Largest transfer in bytes. */
  get maxTransfer(): number { return MPS << this.mdts; }

  /** Whether DMA is allowed (the PCI command register's bus master bit). Turning it on resumes waiting work. */
  get busMaster(): boolean { return this.dmaOn; }
  set busMaster(on: boolean) {
    if (on === this.dmaOn) return;
    this.dmaOn = on;
    if (on) this.kick();
  }

  /** Controller reset (CC.EN 1 -> 0, power on, function-level reset): queues gone, AQA/ASQ/ACQ kept unless `all`. */
  reset(all = false): void {
    this.sqs.length = 0;
    this.cqs.length = 0;
    if (this.timer !== null) this.host.clock.cancel(this.timer);
    this.timer = null;
    this.aerPending.length = 0;
    this.events.length = 0;
    this.errorMasked = false;
    this.features.clear();
    this.ivConfig.clear();
    this.features.set(N.NVME_FEAT_TEMP_THRESH, 0x157);
    this.features.set(N.NVME_FEAT_VOLATILE_WC, 1);
    this.features.set(N.NVME_FEAT_NUM_QUEUES, (NVME_MAX_IO_QUEUES - 1) * 0x10001);
    this.intms = 0;
    this.csts &= ~(N.NVME_CSTS_RDY | N.NVME_CSTS_CFS);
    this.cc &= ~N.NVME_CC_EN;
    if (all) { this.cc = 0; this.csts = 0; this.aqa = 0; this.asq = 0; this.acq = 0; }
    this.updatePin();
  }

  /** CAP (3.1.1), low and high halves. */
  private capLow(): number {
    // MQES 15:0 (0's based), CQR 16, TO 31:24 in 500 ms units.
    return ((NVME_MAX_QUEUE_ENTRIES - 1) | 1 << 16 | 0x0f << 24) >>> 0;
  }
  private capHigh(): number {
    // DSTRD 35:32 = 0, CSS 44:37 bit 37 NVM command set, MPSMIN 51:48 = MPSMAX 55:52 = 0 (4 KiB).
    return 1 << (37 - 32);
  }

  /** The level the controller drives on its pin. */
  get interruptLevel(): 0 | 1 { return this.pinLevel; }

  /** Controller status as the host reads it. */
  get status(): number { return this.csts; }

  // --- Registers.

  mmioRead(offset: number, size: AccessSize): number {
    const dw = this.readDword(offset & ~3);
    const shift = 8 * (offset & 3);
    if (size === 4 && shift === 0) return dw;
    return (dw >>> shift) & (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1);
  }

  private readDword(off: number): number {
    switch (off) {
      case N.NVME_REG_CAP: return this.capLow();
      case N.NVME_REG_CAP + 4: return this.capHigh();
      case N.NVME_REG_VS: return N.NVME_VS_1_4;
      case N.NVME_REG_INTMS: case N.NVME_REG_INTMC: return this.intms;
      case N.NVME_REG_CC: return this.cc;
      case N.NVME_REG_CSTS: return this.csts;
      case N.NVME_REG_AQA: return this.aqa;
      case N.NVME_REG_ASQ: return this.asq % 0x100000000;
      case N.NVME_REG_ASQ + 4: return Math.floor(this.asq / 0x100000000);
      case N.NVME_REG_ACQ: return this.acq % 0x100000000;
      case N.NVME_REG_ACQ + 4: return Math.floor(this.acq / 0x100000000);
      default: return 0; // reserved, CMB absent, doorbells read 0
    }
  }

  mmioWrite(offset: number, size: AccessSize, value: number): void {
    const off = offset & ~3;
    let v = value >>> 0;
    if (size !== 4 || (offset & 3) !== 0) {
      // A narrow write merges into the register; doorbells take only dword writes.
      if (off >= N.NVME_REG_DBS) return;
      const shift = 8 * (offset & 3);
      const mask = (size === 4 ? 0xffffffff : ((1 << (8 * size)) - 1)) << shift;
      // INTMS and INTMC are write-1-to-set/clear: the bytes not written are 0, not the current mask.
      const keep = off === N.NVME_REG_INTMS || off === N.NVME_REG_INTMC ? 0 : this.readDword(off) & ~mask;
      v = (keep | ((v << shift) & mask)) >>> 0;
    }
    if (off >= N.NVME_REG_DBS) { this.doorbell((off - N.NVME_REG_DBS) >> 2, v); return; }
    switch (off) {
      case N.NVME_REG_INTMS: this.intms = (this.intms | v) >>> 0; this.updatePin(); break;
      case N.NVME_REG_INTMC: this.intms = (this.intms & ~v) >>> 0; this.updatePin(); break;
      case N.NVME_REG_CC: this.writeCc(v); break;
      case N.NVME_REG_AQA: this.aqa = v & 0x0fff0fff; break;
      case N.NVME_REG_ASQ: this.asq = Math.floor(this.asq / 0x100000000) * 0x100000000 + ((v & ~0xfff) >>> 0); break;
      case N.NVME_REG_ASQ + 4: this.asq = v * 0x100000000 + this.asq % 0x100000000; break;
      case N.NVME_REG_ACQ: this.acq = Math.floor(this.acq / 0x100000000) * 0x100000000 + ((v & ~0xfff) >>> 0); break;
      case N.NVME_REG_ACQ + 4: this.acq = v * 0x100000000 + this.acq % 0x100000000; break;
      default: break; // CAP, VS, CSTS read-only; NSSR unsupported (CAP.NSSRS 0)
    }
  }

  private writeCc(v: number): void {
    const was = this.cc;
    // Writable: EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES.
    this.cc = v & 0x00fffff1;
    if ((was & N.NVME_CC_EN) && !(v & N.NVME_CC_EN)) {
      this.reset();
      this.cc = v & 0x00fffff0;
      this.csts &= ~(3 << N.NVME_CSTS_SHST_SHIFT);
    } else if (!(was & N.NVME_CC_EN) && (v & N.NVME_CC_EN)) {
      this.enable();
    }
    const shn = (v >>> N.NVME_CC_SHN_SHIFT) & 3;
    if (shn !== 0) {
      // Shutdown: nothing is cached outside the back end, so it completes at once (after a flush).
      try { this.disk.flush(); } catch { this.faults.backend_error++; }
      this.csts = (this.csts & ~(3 << N.NVME_CSTS_SHST_SHIFT)) | N.NVME_CSTS_SHST_CMPLT << N.NVME_CSTS_SHST_SHIFT;
    } else if (((this.csts >>> N.NVME_CSTS_SHST_SHIFT) & 3) === N.NVME_CSTS_SHST_CMPLT) {
      this.csts &= ~(3 << N.NVME_CSTS_SHST_SHIFT);
    }
  }

  private enable(): void {
    const css = (this.cc >>> N.NVME_CC_CSS_SHIFT) & 7;
    const mps = (this.cc >>> N.NVME_CC_MPS_SHIFT) & 0xf;
    const ams = (this.cc >>> N.NVME_CC_AMS_SHIFT) & 7;
    const asqs = (this.aqa & 0xfff) + 1;
    const acqs = ((this.aqa >>> 16) & 0xfff) + 1;
    if (css !== 0 || mps !== 0 || ams !== 0 || asqs < 2 || acqs < 2 || this.asq === 0 || this.acq === 0) {
      this.faults.bad_enable++;
      this.csts |= N.NVME_CSTS_CFS;
      return;
    }
    this.cqs[0] = { id: 0, base: this.acq, size: acqs, head: 0, tail: 0, phase: 1, ien: true, iv: 0, sqs: 1 };
    this.sqs[0] = { id: 0, base: this.asq, size: asqs, head: 0, tail: 0, cqid: 0 };
    this.csts = (this.csts | N.NVME_CSTS_RDY) & ~N.NVME_CSTS_CFS;
  }

  private get ready(): boolean { return (this.csts & N.NVME_CSTS_RDY) !== 0; }

  // --- Doorbells.

  private doorbell(index: number, value: number): void {
    if (!this.ready) return;
    const qid = index >> 1;
    if (index & 1) {
      const cq = this.cqs[qid];
      if (!cq) { this.fault('doorbell_invalid', N.NVME_AER_ERROR_INVALID_DB_REG); return; }
      if (value >= cq.size) { this.fault('doorbell_value', N.NVME_AER_ERROR_INVALID_DB_VALUE); return; }
      const wasFull = this.cqFull(cq);
      cq.head = value;
      this.updatePin();
      if (wasFull) this.kick();
      return;
    }
    const sq = this.sqs[qid];
    if (!sq) { this.fault('doorbell_invalid', N.NVME_AER_ERROR_INVALID_DB_REG); return; }
    if (value >= sq.size) { this.fault('doorbell_value', N.NVME_AER_ERROR_INVALID_DB_VALUE); return; }
    sq.tail = value;
    this.kick();
  }

  /** A doorbell error: counted, and an asynchronous error event (5.2, Figure 146). */
  private fault(reason: NvmeFault, info: number): void {
    this.faults[reason]++;
    this.logError(0xffff, 0xffff, N.NVME_SC_INVALID_FIELD);
    if (this.errorMasked) return; // one error event until the host reads the error log
    this.errorMasked = true;
    this.events.push(N.NVME_AER_ERROR | info << 8 | N.NVME_LOG_ERROR << 16);
    this.deliverEvents();
  }

  private logError(sqid: number, cid: number, status: number): void {
    const e = new Uint8Array(N.NVME_LOG_SIZE_ERROR_ENTRY);
    const v = new DataView(e.buffer);
    this.errorCount++;
    v.setUint32(0, this.errorCount % 0x100000000, true); // error count (low half of the 64-bit field)
    v.setUint16(8, sqid, true);
    v.setUint16(10, cid, true);
    v.setUint16(12, status << 1, true);
    this.errorLog.unshift(e);
    this.errorLog.length = Math.min(this.errorLog.length, ERROR_LOG_ENTRIES);
  }

  // --- Queue processing.

  private cqFull(cq: Cq): boolean { return (cq.tail + 1) % cq.size === cq.head; }

  /** Processes submission queues within the budget; what is left goes to a timer. */
  private kick(): void {
    if (this.busy) { this.again = true; return; }
    if (this.timer !== null || !this.dmaOn || !this.ready) return;
    this.busy = true;
    const fire = new Set<number>();
    try {
      let commands = IO_BUDGET_COMMANDS;
      const budget = { bytes: IO_BUDGET_BYTES };
      do {
        this.again = false;
        // The admin queue first, then I/O queues round robin (arbitration burst 1 each pass).
        let progress = true;
        while (progress && commands > 0 && budget.bytes > 0 && this.ready) {
          progress = false;
          for (const sq of this.sqs) {
            if (!sq || sq.head === sq.tail) continue;
            const cq = this.cqs[sq.cqid];
            if (!cq || this.cqFull(cq)) continue;
            if (!this.runOne(sq, cq, budget, fire)) continue;
            progress = true;
            if (--commands === 0) break;
          }
        }
        if (commands === 0 || budget.bytes <= 0) {
          if (this.hasWork()) {
            this.timer = this.host.clock.setTimer(this.host.clock.now(), () => { this.timer = null; this.kick(); });
          }
          break;
        }
      } while (this.again);
    } finally {
      this.busy = false;
    }
    this.signal(fire);
  }

  private hasWork(): boolean {
    return this.sqs.some((sq) => sq && sq.head !== sq.tail && this.cqs[sq.cqid] && !this.cqFull(this.cqs[sq.cqid]!));
  }

  /** Fetches and runs the command at `sq`'s head; false if it could not be fetched. */
  private runOne(sq: Sq, cq: Cq, budget: { bytes: number }, fire: Set<number>): boolean {
    if (!this.dmaRead(sq.base + sq.head * N.NVME_SQE_SIZE, this.sqe)) {
      // The entry cannot be read, so there is no command ID to complete: the queue stops here.
      this.faults.sq_dma_fault++;
      return false;
    }
    sq.head = (sq.head + 1) % sq.size;
    const cid = this.sqeView.getUint16(2, true);
    let done: Done;
    try {
      done = sq.id === 0 ? this.admin(cid) : this.io(budget);
    } catch (e) {
      // A model bug must not end the host: the command fails and the reason shows.
      this.faults.internal++;
      this.lastInternal = String(e);
      done = err(N.NVME_SC_INTERNAL);
    }
    if (done.status < 0) return true; // an AER kept pending: no completion now
    if (done.status !== N.NVME_SC_SUCCESS) this.logError(sq.id, cid, done.status);
    this.post(cq, sq, cid, done, fire);
    return true;
  }

  private post(cq: Cq, sq: Sq, cid: number, done: Done, fire: Set<number>): void {
    const v = this.cqeView;
    v.setUint32(0, done.dw0 >>> 0, true);
    v.setUint32(4, 0, true);
    v.setUint16(8, sq.head, true);
    v.setUint16(10, sq.id, true);
    v.setUint16(12, cid, true);
    v.setUint16(14, (cq.phase | (done.status & 0x7fff) << 1) & 0xffff, true);
    // DW3 (CID, status, phase tag) goes last and on its own: a driver in
    // another process polls the phase tag and must find DW0-DW2 already there.
    const at = cq.base + cq.tail * N.NVME_CQE_SIZE;
    if (!this.dmaWrite(at, this.cqe.subarray(0, 12)) || !this.dmaWrite(at + 12, this.cqe.subarray(12))) {
      this.faults.cq_dma_fault++;
      return;
    }
    cq.tail++;
    if (cq.tail === cq.size) { cq.tail = 0; cq.phase ^= 1; }
    if (cq.ien) fire.add(cq.iv);
  }

  /** Interrupts for the vectors that got completions. */
  private signal(fire: Set<number>): void {
    if (fire.size === 0) return;
    if (this.irq.msix) for (const v of fire) this.irq.message(v);
    else this.updatePin();
  }

  /**
   * The pin (INTx, 7.5.1.1): asserted while a completion queue with
   * interrupts enabled holds entries the host has not consumed, unless
   * INTMS masks vector 0. With MSI-X on the pin is not used.
   */
  updatePin(): void {
    let level: 0 | 1 = 0;
    if (!this.irq.msix && !(this.intms & 1)) {
      for (const cq of this.cqs) if (cq && cq.ien && cq.head !== cq.tail) { level = 1; break; }
    }
    if (level === this.pinLevel) return;
    this.pinLevel = level;
    this.irq.pin(level);
  }

  // --- Asynchronous events.

  private deliverEvents(): void {
    const sq = this.sqs[0];
    const cq = this.cqs[0];
    if (!sq || !cq) return;
    const fire = new Set<number>();
    while (this.events.length > 0 && this.aerPending.length > 0 && !this.cqFull(cq)) {
      const cid = this.aerPending.shift()!;
      this.post(cq, sq, cid, ok(this.events.shift()!), fire);
    }
    this.signal(fire);
  }

  // --- Admin commands (5).

  private dw(n: number): number { return this.sqeView.getUint32(4 * n, true); }
  private prp1(): number { return this.dw(6) + this.dw(7) * 0x100000000; }
  private prp2(): number { return this.dw(8) + this.dw(9) * 0x100000000; }

  private admin(cid: number): Done {
    const opc = this.sqe[0]!;
    if ((this.sqe[1]! & 0xc0) !== 0) return this.invalid('invalid_field'); // PSDT: SGLs are not supported
    switch (opc) {
      case N.nvme_admin_identify: return this.identify();
      case N.nvme_admin_create_cq: return this.createCq();
      case N.nvme_admin_create_sq: return this.createSq();
      case N.nvme_admin_delete_sq: return this.deleteSq();
      case N.nvme_admin_delete_cq: return this.deleteCq();
      case N.nvme_admin_set_features: return this.setFeatures();
      case N.nvme_admin_get_features: return this.getFeatures();
      case N.nvme_admin_get_log_page: return this.getLogPage();
      case N.nvme_admin_async_event:
        if (this.aerPending.length >= NVME_AER_LIMIT) return err(N.NVME_SC_ASYNC_LIMIT);
        if (this.events.length > 0) return ok(this.events.shift()!);
        this.aerPending.push(cid);
        return { status: -1, dw0: 0 };
      case N.nvme_admin_abort_cmd: return ok(1); // bit 0: not aborted (every command has completed already)
      case N.nvme_admin_keep_alive: return ok();
      default: return this.invalid('invalid_opcode', N.NVME_SC_INVALID_OPCODE);
    }
  }

  private invalid(reason: NvmeFault, status = N.NVME_SC_INVALID_FIELD): Done {
    this.faults[reason]++;
    return err(status);
  }

  private identify(): Done {
    const cns = this.dw(10) & 0xff;
    const nsid = this.dw(1);
    const data = new Uint8Array(N.NVME_IDENTIFY_DATA_SIZE);
    const v = new DataView(data.buffer);
    switch (cns) {
      case N.NVME_ID_CNS_CTRL: this.identifyController(data, v); break;
      case N.NVME_ID_CNS_NS:
        if (nsid !== 1 && nsid !== 0xffffffff) return err(N.NVME_SC_INVALID_NS);
        this.identifyNamespace(v, nsid === 1);
        break;
      case N.NVME_ID_CNS_NS_ACTIVE_LIST:
        if (nsid >= 0xfffffffe) return err(N.NVME_SC_INVALID_NS);
        if (nsid < 1) v.setUint32(0, 1, true);
        break;
      case N.NVME_ID_CNS_NS_DESC_LIST:
        if (nsid !== 1) return err(N.NVME_SC_INVALID_NS);
        data[0] = N.NVME_NIDT_NGUID;
        data[1] = 16;
        data.set(this.nguid(), 4);
        break;
      case N.NVME_ID_CNS_CS_NS: case N.NVME_ID_CNS_CS_CTRL:
        // The NVM command set's specific structures (CSI 0) are all zero: no limits beyond MDTS.
        if (((this.dw(11) >>> 24) & 0xff) !== 0) return this.invalid('invalid_field');
        if (cns === N.NVME_ID_CNS_CS_NS && nsid !== 1) return err(N.NVME_SC_INVALID_NS);
        break;
      default: return this.invalid('invalid_field');
    }
    return this.toHost(data);
  }

  private identifyController(data: Uint8Array, v: DataView): void {
    const C = N.ID_CTRL;
    const ascii = (at: number, len: number, s: string) => { for (let i = 0; i < len; i++) data[at + i] = i < s.length ? s.charCodeAt(i) & 0x7f : 0x20; };
    v.setUint16(C.vid, NVME_VENDOR_ID, true);
    v.setUint16(C.ssvid, NVME_SUBSYS_VENDOR_ID, true);
    ascii(C.sn, 20, this.serial);
    ascii(C.mn, 40, 'xenemu NVMe');
    ascii(C.fr, 8, '1.0');
    data[C.rab] = 6;
    data[C.ieee] = 0x00; data[C.ieee + 1] = 0x54; data[C.ieee + 2] = 0x52; // 52:54:00, as QEMU's OUI
    data[C.mdts] = this.mdts;
    v.setUint16(C.cntlid, 0, true);
    v.setUint32(C.ver, N.NVME_VS_1_4, true);
    data[C.cntrltype] = 1; // I/O controller
    v.setUint16(C.oacs, 0, true); // no security, format, firmware, namespace management
    data[C.acl] = 3;
    data[C.aerl] = NVME_AER_LIMIT - 1;
    data[C.frmw] = 1 << 1 | 1; // one slot, read-only
    data[C.lpa] = 0;
    data[C.elpe] = ERROR_LOG_ENTRIES - 1;
    data[C.npss] = 0;
    v.setUint16(C.wctemp, 0x157, true);
    v.setUint16(C.cctemp, 0x175, true);
    data[C.sqes] = N.NVME_SQES << 4 | N.NVME_SQES;
    data[C.cqes] = N.NVME_CQES << 4 | N.NVME_CQES;
    v.setUint16(C.maxcmd, 0, true);
    v.setUint32(C.nn, 1, true);
    v.setUint16(C.oncs, 1 << 2 | 1 << 3, true); // Dataset Management, Write Zeroes
    data[C.vwc] = 1;
    v.setUint32(C.sgls, 0, true);
    const nqn = `nqn.2026-01.org.xenemu:nvme:${this.serial}`;
    for (let i = 0; i < nqn.length; i++) data[C.subnqn + i] = nqn.charCodeAt(i);
    v.setUint16(C.psd0, 2500, true); // 25 W, in centiwatts
  }

  private identifyNamespace(v: DataView, one: boolean): void {
    const S = N.ID_NS;
    if (one) {
      v.setBigUint64(S.nsze, BigInt(this.nsze), true);
      v.setBigUint64(S.ncap, BigInt(this.nsze), true);
      v.setBigUint64(S.nuse, BigInt(this.nsze), true);
      new Uint8Array(v.buffer).set(this.nguid(), S.nguid);
    }
    v.setUint8(S.nlbaf, 0);
    v.setUint8(S.flbas, 0);
    v.setUint32(S.lbaf0, NVME_LBA_SHIFT << 16, true); // MS 0, LBADS 9, RP 0
  }

  private nguid(): Uint8Array {
    const g = new Uint8Array(16);
    g.set([0x52, 0x54, 0x00], 0);
    for (let i = 0; i < this.serial.length; i++) g[3 + (i % 13)] ^= this.serial.charCodeAt(i);
    g[15] = 1;
    return g;
  }

  private createCq(): Done {
    const qid = this.dw(10) & 0xffff;
    const size = (this.dw(10) >>> 16) + 1;
    const flags = this.dw(11);
    const iv = flags >>> 16;
    const base = this.prp1();
    if (qid === 0 || qid > NVME_MAX_IO_QUEUES || this.cqs[qid]) return err(N.NVME_SC_QID_INVALID);
    if (size < 2 || size > NVME_MAX_QUEUE_ENTRIES) return err(N.NVME_SC_QUEUE_SIZE);
    if (!(flags & 1)) return this.invalid('invalid_field'); // CAP.CQR: contiguous only
    if (base % MPS !== 0) return this.invalid('prp_offset', N.NVME_SC_PRP_INVALID_OFFSET);
    if ((flags & 2) && (iv >= NVME_MAX_IO_QUEUES + 1 || (!this.irq.msix && iv !== 0))) return err(N.NVME_SC_INVALID_VECTOR);
    this.cqs[qid] = { id: qid, base, size, head: 0, tail: 0, phase: 1, ien: (flags & 2) !== 0, iv, sqs: 0 };
    return ok();
  }

  private createSq(): Done {
    const qid = this.dw(10) & 0xffff;
    const size = (this.dw(10) >>> 16) + 1;
    const flags = this.dw(11);
    const cqid = flags >>> 16;
    const base = this.prp1();
    if (cqid === 0 || !this.cqs[cqid]) return err(N.NVME_SC_CQ_INVALID);
    if (qid === 0 || qid > NVME_MAX_IO_QUEUES || this.sqs[qid]) return err(N.NVME_SC_QID_INVALID);
    if (size < 2 || size > NVME_MAX_QUEUE_ENTRIES) return err(N.NVME_SC_QUEUE_SIZE);
    if (!(flags & 1)) return this.invalid('invalid_field');
    if (base % MPS !== 0) return this.invalid('prp_offset', N.NVME_SC_PRP_INVALID_OFFSET);
    this.sqs[qid] = { id: qid, base, size, head: 0, tail: 0, cqid };
    this.cqs[cqid]!.sqs++;
    return ok();
  }

  private deleteSq(): Done {
    const qid = this.dw(10) & 0xffff;
    const sq = qid === 0 ? undefined : this.sqs[qid];
    if (!sq) return err(N.NVME_SC_QID_INVALID);
    this.sqs[qid] = undefined;
    const cq = this.cqs[sq.cqid];
    if (cq) cq.sqs--;
    return ok();
  }

  private deleteCq(): Done {
    const qid = this.dw(10) & 0xffff;
    const cq = qid === 0 ? undefined : this.cqs[qid];
    if (!cq) return err(N.NVME_SC_QID_INVALID);
    if (cq.sqs > 0) return err(N.NVME_SC_INVALID_QUEUE);
    this.cqs[qid] = undefined;
    this.updatePin();
    return ok();
  }

  private setFeatures(): Done {
    const fid = this.dw(10) & 0xff;
    const save = (this.dw(10) >>> 31) !== 0;
    const v = this.dw(11);
    if (save) return err(N.NVME_SC_FEATURE_NOT_SAVEABLE);
    switch (fid) {
      case N.NVME_FEAT_NUM_QUEUES: {
        if ((v & 0xffff) === 0xffff || (v >>> 16) === 0xffff) return this.invalid('invalid_field');
        // The controller allocates its maximum whatever is asked (5.21.1.7 allows more or fewer).
        return ok((NVME_MAX_IO_QUEUES - 1) * 0x10001);
      }
      case N.NVME_FEAT_IRQ_CONFIG: {
        if ((v & 0xffff) > NVME_MAX_IO_QUEUES) return this.invalid('invalid_field');
        this.ivConfig.set(v & 0xffff, v & 0x1ffff);
        return ok();
      }
      case N.NVME_FEAT_ARBITRATION: case N.NVME_FEAT_POWER_MGMT: case N.NVME_FEAT_TEMP_THRESH:
      case N.NVME_FEAT_ERR_RECOVERY: case N.NVME_FEAT_VOLATILE_WC: case N.NVME_FEAT_IRQ_COALESCE:
      case N.NVME_FEAT_WRITE_ATOMIC: case N.NVME_FEAT_ASYNC_EVENT: case N.NVME_FEAT_KATO:
        if (fid === N.NVME_FEAT_POWER_MGMT && (v & 0x1f) !== 0) return this.invalid('invalid_field'); // one power state
        this.features.set(fid, fid === N.NVME_FEAT_VOLATILE_WC ? v & 1 : v);
        return ok();
      default: return this.invalid('invalid_field');
    }
  }

  private getFeatures(): Done {
    const fid = this.dw(10) & 0xff;
    const sel = (this.dw(10) >>> 8) & 7;
    if (sel === 3) return ok(1 << 2); // supported capabilities: changeable, not saveable
    if (sel > 3) return this.invalid('invalid_field');
    switch (fid) {
      case N.NVME_FEAT_NUM_QUEUES: return ok((NVME_MAX_IO_QUEUES - 1) * 0x10001);
      case N.NVME_FEAT_IRQ_CONFIG: {
        const iv = this.dw(11) & 0xffff;
        if (iv > NVME_MAX_IO_QUEUES) return this.invalid('invalid_field');
        return ok(this.ivConfig.get(iv) ?? iv);
      }
      case N.NVME_FEAT_ARBITRATION: case N.NVME_FEAT_POWER_MGMT: case N.NVME_FEAT_TEMP_THRESH:
      case N.NVME_FEAT_ERR_RECOVERY: case N.NVME_FEAT_VOLATILE_WC: case N.NVME_FEAT_IRQ_COALESCE:
      case N.NVME_FEAT_WRITE_ATOMIC: case N.NVME_FEAT_ASYNC_EVENT: case N.NVME_FEAT_KATO:
        return ok(sel === 1 ? (fid === N.NVME_FEAT_VOLATILE_WC ? 1 : fid === N.NVME_FEAT_TEMP_THRESH ? 0x157 : 0) : this.features.get(fid) ?? 0);
      default: return this.invalid('invalid_field');
    }
  }

  private getLogPage(): Done {
    const lid = this.dw(10) & 0xff;
    const rae = (this.dw(10) >>> 15) & 1;
    const numd = (this.dw(10) >>> 16) + (this.dw(11) & 0xffff) * 0x10000 + 1;
    const lpo = this.dw(12) + this.dw(13) * 0x100000000;
    const len = numd * 4;
    if (lpo % 4 !== 0) return this.invalid('invalid_field');
    let log: Uint8Array;
    switch (lid) {
      case N.NVME_LOG_ERROR: {
        log = new Uint8Array(N.NVME_LOG_SIZE_ERROR_ENTRY * ERROR_LOG_ENTRIES);
        this.errorLog.forEach((e, i) => log.set(e, i * N.NVME_LOG_SIZE_ERROR_ENTRY));
        if (!rae) this.errorMasked = false;
        break;
      }
      case N.NVME_LOG_SMART: log = this.smartLog(); break;
      case N.NVME_LOG_FW_SLOT: {
        log = new Uint8Array(N.NVME_LOG_SIZE_FW_SLOT);
        log[0] = 1; // AFI: slot 1 active
        const fr = '1.0     ';
        for (let i = 0; i < 8; i++) log[8 + i] = fr.charCodeAt(i);
        break;
      }
      default: return err(N.NVME_SC_INVALID_LOG_PAGE);
    }
    if (lpo > log.length) return this.invalid('invalid_field');
    if (len > this.maxTransfer) return this.invalid('mdts_exceeded');
    // What the host asks beyond the page's end reads as zeros.
    const out = new Uint8Array(len);
    out.set(log.subarray(lpo, Math.min(log.length, lpo + len)));
    return this.toHost(out);
  }

  private smartLog(): Uint8Array {
    const log = new Uint8Array(N.NVME_LOG_SIZE_SMART);
    const v = new DataView(log.buffer);
    v.setUint16(1, 273 + 30, true); // composite temperature, Kelvin
    log[3] = 100; // available spare
    log[4] = 10; // spare threshold
    v.setBigUint64(32, BigInt(Math.ceil(this.stats.readUnits / 1000)), true);
    v.setBigUint64(48, BigInt(Math.ceil(this.stats.writeUnits / 1000)), true);
    v.setBigUint64(64, BigInt(this.stats.reads), true);
    v.setBigUint64(80, BigInt(this.stats.writes), true);
    v.setBigUint64(112, BigInt(this.stats.powerCycles), true);
    v.setBigUint64(160, BigInt(this.stats.mediaErrors), true);
    v.setBigUint64(176, BigInt(this.errorCount), true);
    return log;
  }

  // --- NVM commands (6).

  private io(budget: { bytes: number }): Done {
    const opc = this.sqe[0]!;
    if ((this.sqe[1]! & 0xc0) !== 0) return this.invalid('invalid_field');
    const nsid = this.dw(1);
    if (opc === N.nvme_cmd_flush) {
      if (nsid !== 1 && nsid !== 0xffffffff) return err(N.NVME_SC_INVALID_NS);
      try { this.disk.flush(); } catch { return this.media(N.NVME_SC_WRITE_FAULT); }
      return ok();
    }
    if (nsid !== 1) return err(N.NVME_SC_INVALID_NS);
    const slba = this.dw(10) + this.dw(11) * 0x100000000;
    const nlb = (this.dw(12) & 0xffff) + 1;
    switch (opc) {
      case N.nvme_cmd_read: case N.nvme_cmd_write: {
        const len = nlb * NVME_LBA_SIZE;
        if (len > this.maxTransfer) return this.invalid('mdts_exceeded');
        if (slba + nlb > this.nsze) return this.invalid('lba_range', N.NVME_SC_LBA_RANGE);
        const prps = this.prps(this.prp1(), this.prp2(), len);
        if ('fault' in prps) return this.invalid(prps.fault, prps.status);
        budget.bytes -= len;
        const off = slba * NVME_LBA_SIZE;
        if (opc === N.nvme_cmd_write && this.disk.readOnly) return err(N.NVME_SC_NS_WRITE_PROTECTED);
        // Straight between the back end and guest memory where the memory allows it (the IOMMU's view).
        const direct = this.views(prps.segs, opc === N.nvme_cmd_read ? 'write' : 'read');
        if (direct === null) return this.invalid('data_dma_fault', N.NVME_SC_DATA_XFER_ERROR);
        if (direct) {
          try {
            let at = off;
            for (const v of direct) {
              if (opc === N.nvme_cmd_read) this.disk.read(at, v); else this.disk.write(at, v);
              at += v.length;
            }
          } catch { return this.media(opc === N.nvme_cmd_read ? N.NVME_SC_READ_ERROR : N.NVME_SC_WRITE_FAULT); }
          if (opc === N.nvme_cmd_read) { this.stats.reads++; this.stats.readUnits += nlb; } else { this.stats.writes++; this.stats.writeUnits += nlb; }
          return ok();
        }
        const buf = new Uint8Array(len);
        if (opc === N.nvme_cmd_read) {
          try { this.disk.read(off, buf); } catch { return this.media(N.NVME_SC_READ_ERROR); }
          if (!this.scatter(prps.segs, buf, true)) return this.invalid('data_dma_fault', N.NVME_SC_DATA_XFER_ERROR);
          this.stats.reads++;
          this.stats.readUnits += nlb;
        } else {
          if (!this.scatter(prps.segs, buf, false)) return this.invalid('data_dma_fault', N.NVME_SC_DATA_XFER_ERROR);
          try { this.disk.write(off, buf); } catch { return this.media(N.NVME_SC_WRITE_FAULT); }
          this.stats.writes++;
          this.stats.writeUnits += nlb;
        }
        return ok();
      }
      case N.nvme_cmd_write_zeroes: {
        if (slba + nlb > this.nsze) return this.invalid('lba_range', N.NVME_SC_LBA_RANGE);
        if (this.disk.readOnly) return err(N.NVME_SC_NS_WRITE_PROTECTED);
        const zeros = new Uint8Array(Math.min(nlb * NVME_LBA_SIZE, 1 << 20));
        budget.bytes -= nlb * NVME_LBA_SIZE;
        try {
          for (let done = 0; done < nlb * NVME_LBA_SIZE; done += zeros.length) {
            const n = Math.min(zeros.length, nlb * NVME_LBA_SIZE - done);
            this.disk.write(slba * NVME_LBA_SIZE + done, zeros.subarray(0, n));
          }
        } catch { return this.media(N.NVME_SC_WRITE_FAULT); }
        return ok();
      }
      case N.nvme_cmd_dsm: {
        // The ranges are read and checked; deallocation is advisory and nothing is discarded.
        const nr = (this.dw(10) & 0xff) + 1;
        const prps = this.prps(this.prp1(), this.prp2(), nr * 16);
        if ('fault' in prps) return this.invalid(prps.fault, prps.status);
        const ranges = new Uint8Array(nr * 16);
        if (!this.scatter(prps.segs, ranges, false)) return this.invalid('data_dma_fault', N.NVME_SC_DATA_XFER_ERROR);
        const rv = new DataView(ranges.buffer);
        for (let i = 0; i < nr; i++) {
          const n = rv.getUint32(16 * i + 4, true);
          const s = rv.getUint32(16 * i + 8, true) + rv.getUint32(16 * i + 12, true) * 0x100000000;
          if (s + n > this.nsze) return this.invalid('lba_range', N.NVME_SC_LBA_RANGE);
        }
        return ok();
      }
      default: return this.invalid('invalid_opcode', N.NVME_SC_INVALID_OPCODE);
    }
  }

  private media(status: number): Done {
    this.faults.backend_error++;
    this.stats.mediaErrors++;
    return err(status);
  }

  /**
   * The pages of a `len`-byte transfer described by PRP1 and PRP2 (4.3):
   * PRP1 may start inside a page; PRP2 is the second page when two do, or
   * else a PRP list whose entries are page-aligned and whose last entry
   * chains to the next list page when more entries are needed. The walk is
   * bounded by `len` (at most MDTS), so a list that loops cannot spin.
   */
  private prps(prp1: number, prp2: number, len: number): Segments {
    if (prp1 % 4 !== 0) return { fault: 'prp_offset', status: N.NVME_SC_PRP_INVALID_OFFSET };
    const segs: [number, number][] = [];
    const first = Math.min(len, MPS - (prp1 % MPS));
    segs.push([prp1, first]);
    let left = len - first;
    if (left === 0) return { segs };
    if (left <= MPS) {
      if (prp2 % MPS !== 0) return { fault: 'prp_offset', status: N.NVME_SC_PRP_INVALID_OFFSET };
      segs.push([prp2, left]);
      return { segs };
    }
    if (prp2 % 8 !== 0) return { fault: 'prp_offset', status: N.NVME_SC_PRP_INVALID_OFFSET };
    let list = prp2;
    while (left > 0) {
      const slots = (MPS - (list % MPS)) / 8;
      const pages = Math.ceil(left / MPS);
      const take = pages > slots ? slots - 1 : pages; // the last slot chains when more are needed
      const raw = new Uint8Array(8 * (pages > slots ? slots : take));
      if (!this.dmaRead(list, raw)) return { fault: 'prp_dma_fault', status: N.NVME_SC_DATA_XFER_ERROR };
      const rv = new DataView(raw.buffer);
      for (let i = 0; i < take; i++) {
        const a = rv.getUint32(8 * i, true) + rv.getUint32(8 * i + 4, true) * 0x100000000;
        if (a % MPS !== 0) return { fault: 'prp_offset', status: N.NVME_SC_PRP_INVALID_OFFSET };
        const n = Math.min(MPS, left);
        segs.push([a, n]);
        left -= n;
      }
      if (left > 0) {
        const next = rv.getUint32(8 * (slots - 1), true) + rv.getUint32(8 * (slots - 1) + 4, true) * 0x100000000;
        if (next % MPS !== 0) return { fault: 'prp_offset', status: N.NVME_SC_PRP_INVALID_OFFSET };
        list = next;
      }
    }
    return { segs };
  }

  /**
   * The transfer's guest memory as views, runs of adjacent pages merged (a
   * driver's contiguous buffer is one); every page is checked before any
   * byte moves. null: a page is refused (DMA fault); undefined: the memory
   * gives no views (copy through read and write).
   */
  private views(segs: [number, number][], dir: 'read' | 'write'): Uint8Array[] | null | undefined {
    if (!this.host.mem.view) return undefined;
    const runs: [number, number][] = [];
    for (const [a, n] of segs) {
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === a) last[1] += n; else runs.push([a, n]);
    }
    const out: Uint8Array[] = [];
    for (const [a, n] of runs) {
      const v = dmaView(this.host.mem, a, n, dir);
      if (v === undefined) return undefined;
      if (v === null) return null;
      out.push(v);
    }
    return out;
  }

  /** Copies between `buf` and the pages: toHost writes guest memory, else reads it. */
  private scatter(segs: [number, number][], buf: Uint8Array, toHost: boolean): boolean {
    let at = 0;
    for (const [a, n] of segs) {
      const part = buf.subarray(at, at + n);
      if (!(toHost ? this.dmaWrite(a, part) : this.dmaRead(a, part))) return false;
      at += n;
    }
    return true;
  }

  /** Copies a command's data to the host through PRP1/PRP2. */
  private toHost(data: Uint8Array): Done {
    const prps = this.prps(this.prp1(), this.prp2(), data.length);
    if ('fault' in prps) return this.invalid(prps.fault, prps.status);
    if (!this.scatter(prps.segs, data, true)) return this.invalid('data_dma_fault', N.NVME_SC_DATA_XFER_ERROR);
    return ok();
  }

  // --- DMA.

  private dmaRead(gpa: number, dst: Uint8Array): boolean { return dmaRead(this.host.mem, gpa, dst); }

  private dmaWrite(gpa: number, src: Uint8Array): boolean { return dmaWrite(this.host.mem, gpa, src); }
}
