// The PV kernel's NVMe driver: a passed-through NVMe controller (the host's
// emulated one, shared/hw/nvme.ts, or any NVMe 1.x) reached through a
// PciDeviceHandle (pci_device.ts), as Linux's drivers/nvme/host/pci.c does
// on real hardware, reduced to what a disk needs:
//
//   probe      memory decode and bus mastering on; CC.EN 0 and wait for
//              CSTS.RDY 0; admin queues in DMA memory (AQA, ASQ, ACQ); CC.EN 1
//              and wait for RDY (CAP.TO bounds both waits); MSI-X with one
//              vector for the admin queue and one for I/O, or INTx
//   identify   controller (MDTS, VWC, ONCS) and namespace 1 (size, LBA format:
//              512-byte blocks only); Set Features Number of Queues
//   queues     one I/O CQ and SQ pair (Create I/O CQ, then SQ)
//   I/O        Read, Write of up to MDTS (capped at 4 MiB) per command from
//              pages of a DMA pool, PRP1/PRP2 and PRP lists chained through
//              the last entry of each list page; Flush when a volatile write
//              cache is present; Dataset Management (deallocate) as discard
//              (a buffer lent by allocBuffer, as dd takes them, is DMA memory
//              itself: no copy); the SQ tail doorbell once per batch of
//              submissions (blk-mq's bd->last)
//   completion interrupt-driven: the vector's queues are reaped while the
//              phase tag matches, then the CQ head doorbell and, for INTx,
//              the EOI; one watchdog timer fails commands past their timeout
//
// The namespace is a BlockDevice (blkdev.ts) named nvme<N>n1, so the shell's
// lsblk, dd and md5sum and the file system use it as they use a vbd.
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import * as N from '../../../shared/hw/nvme_regs.js';
import type { BlockDevice, BlockDevices } from './blkdev.js';
import type { PciBar, PciDeviceHandle, PciDmaBuffer } from './pci_device.js';

const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;
const PCI_CLASS_STORAGE_EXPRESS = 0x010802;
/** Linux's blkext major, where nvme namespaces live. */
export const BLOCK_EXT_MAJOR = 259;
const SECTOR = 512;
const ADMIN_DEPTH = 32;
/** I/O queue entries (Linux's io_queue_depth default 1024, the queue in pages of the pool). */
const IO_DEPTH = 256;
/** Largest transfer of one command the driver makes (MDTS may allow less). */
const MAX_TRANSFER = 4 << 20;
/** nvme_io_timeout / admin_timeout: a command that takes longer fails. */
const DEFAULT_TIMEOUT_MS = 30_000;
/** Pages the driver keeps for data and PRP lists between commands. */
const POOL_KEEP = 2048;
/** DMA memory lent out as I/O buffers at most (dd's 8 MiB in flight, and more). */
const LEND_MAX_BYTES = 32 << 20;

/** A 64-bit little-endian field from a number below 2^53, as two dwords (no BigInt on the I/O path). */
function set64(v: DataView, at: number, n: number): void {
  v.setUint32(at, n % 0x100000000, true);
  v.setUint32(at + 4, Math.floor(n / 0x100000000), true);
}

export class NvmeError extends Error {
  constructor(readonly status: number, what: string) {
    super(`${what}: I/O error, status 0x${status.toString(16)} (SCT ${(status >> 8) & 7}, SC 0x${(status & 0xff).toString(16)})`);
    this.name = 'NvmeError';
  }
}

export interface NvmeDriverOptions {
  /** nvme<index>n1 (default 0). */
  index?: number;
  log?: (msg: string) => void;
  timeoutMs?: number;
}

interface Completion { status: number; dw0: number }
interface Pending { resolve(c: Completion): void; reject(e: Error): void; deadline: number; cid: number; timedOut: boolean }

/** One SQ/CQ pair. Commands in flight are bounded by depth - 1, so the SQ never overflows. */
class QueuePair {
  tail = 0;
  /** A tail doorbell write is due (ringLater). */
  ringing = false;
  /** Completions consumed since the last CQ head doorbell. */
  unreported = 0;
  head = 0;
  phase = 1;
  readonly pending = new Map<number, Pending>();
  private readonly freeCids: number[];
  private readonly waiters: Array<() => void> = [];

  constructor(readonly qid: number, readonly depth: number, readonly sq: PciDmaBuffer, readonly cq: PciDmaBuffer, readonly vector: number) {
    this.freeCids = Array.from({ length: depth - 1 }, (_, i) => depth - 2 - i);
  }

  /** Command IDs free now. */
  get idle(): number { return this.freeCids.length; }

  take(): number { return this.freeCids.pop()!; }

  async cid(): Promise<number> {
    while (this.freeCids.length === 0) await new Promise<void>((r) => this.waiters.push(r));
    return this.freeCids.pop()!;
  }

  release(cid: number): void {
    this.freeCids.push(cid);
    this.waiters.shift()?.();
  }

  get busy(): number { return this.depth - 1 - this.freeCids.length; }
}

export class NvmeDriver implements BlockDevice {
  readonly name: string;
  readonly devid: number;
  sectors = 0;
  readonly readonly = false;
  maxRequestBytes = PAGE_SIZE;
  readonly stats = { requests: 0, bytes: 0, notifiesSent: 0, notifiesReceived: 0, errors: 0 };
  features = { discard: false, flush: false };
  serial = '';
  model = '';
  /** How interrupts arrive: MSI-X vectors granted, or 0 for INTx. */
  msixVectors = 0;

  private readonly bar: PciBar;
  private admin!: QueuePair;
  private io: QueuePair | undefined;
  private readonly pool: PciDmaBuffer[] = [];
  /** Buffers lent by allocBuffer, and their bytes. */
  private readonly lent: PciDmaBuffer[] = [];
  private lentBytes = 0;
  private readonly idle: Array<() => void> = [];
  private readonly timeoutMs: number;
  private readonly log: (m: string) => void;
  private capTimeoutMs = 500;
  private dead = false;
  private watchdog: NodeJS.Timeout | undefined;

  private constructor(readonly dev: PciDeviceHandle, opts: NvmeDriverOptions) {
    const index = opts.index ?? 0;
    this.name = `nvme${index}n1`;
    this.devid = BLOCK_EXT_MAJOR << 8 | index;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.log = (m) => opts.log?.(`nvme nvme${index}: ${m}`);
    this.bar = dev.bar(0);
  }

  /** nvme_probe + nvme_reset_work: a usable namespace, or an Error saying which step failed. */
  static async probe(dev: PciDeviceHandle, opts: NvmeDriverOptions = {}): Promise<NvmeDriver> {
    const d = new NvmeDriver(dev, opts);
    try {
      await d.init();
    } catch (e) {
      d.dead = true;
      d.releaseMemory();
      throw e;
    }
    return d;
  }

  // --- Registers.

  private rd(off: number): number { return this.bar.read(off, 4) >>> 0; }
  private wr(off: number, v: number): void { this.bar.write(off, 4, v >>> 0); }
  /** lo_hi_writeq: a 64-bit register as two dword writes, low first. */
  private wr64(off: number, v: number): void { this.wr(off, v % 0x100000000); this.wr(off + 4, Math.floor(v / 0x100000000)); }

  private async waitReady(want: boolean, what: string): Promise<void> {
    const deadline = Date.now() + this.capTimeoutMs;
    for (;;) {
      const csts = this.rd(N.NVME_REG_CSTS);
      if (csts === 0xffffffff) throw new Error(`${what}: the device is gone (CSTS all-ones)`);
      if (want && (csts & N.NVME_CSTS_CFS)) throw new Error(`${what}: controller fatal status`);
      if (((csts & N.NVME_CSTS_RDY) !== 0) === want) return;
      if (Date.now() > deadline) throw new Error(`${what}: CSTS.RDY did not become ${want ? 1 : 0} in ${this.capTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  private async init(): Promise<void> {
    const dev = this.dev;
    const cls = (await dev.cfgRead(0x08, 4)) >>> 8;
    if (cls !== PCI_CLASS_STORAGE_EXPRESS) throw new Error(`${dev.bdf}: class 0x${cls.toString(16)} is not NVMe`);
    const cmd = await dev.cfgRead(PCI_COMMAND, 2);
    await dev.cfgWrite(PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

    const capLo = this.rd(N.NVME_REG_CAP);
    const capHi = this.rd(N.NVME_REG_CAP + 4);
    if (capLo === 0xffffffff && capHi === 0xffffffff) throw new Error(`${dev.bdf}: BAR0 reads all-ones`);
    const mqes = (capLo & 0xffff) + 1;
    this.capTimeoutMs = Math.max(500, ((capLo >>> 24) & 0xff) * 500);
    if ((capHi & 0xf) !== 0) throw new Error(`doorbell stride ${4 << (capHi & 0xf)} not supported`);
    if (!(capHi & (1 << (37 - 32)))) throw new Error('no NVM command set in CAP.CSS');
    if (((capHi >>> 16) & 0xf) !== 0) throw new Error('4 KiB pages not supported (CAP.MPSMIN)');

    // nvme_disable_ctrl, then the admin queue (nvme_pci_configure_admin_queue).
    if (this.rd(N.NVME_REG_CC) & N.NVME_CC_EN) {
      this.wr(N.NVME_REG_CC, this.rd(N.NVME_REG_CC) & ~N.NVME_CC_EN);
      await this.waitReady(false, 'disable');
    } else if (this.rd(N.NVME_REG_CSTS) & N.NVME_CSTS_RDY) {
      await this.waitReady(false, 'disable');
    }

    // Interrupts before the first command: MSI-X (admin + I/O), else INTx.
    this.msixVectors = await dev.enableMsix(2).catch(() => 0);
    const ioVector = this.msixVectors >= 2 ? 1 : 0;
    const adminDepth = Math.min(ADMIN_DEPTH, mqes);
    this.admin = new QueuePair(0, adminDepth, this.alloc(adminDepth * N.NVME_SQE_SIZE), this.alloc(adminDepth * N.NVME_CQE_SIZE), 0);
    dev.onInterrupt(0, () => this.interrupt(0));
    if (ioVector !== 0) dev.onInterrupt(ioVector, () => this.interrupt(ioVector));

    this.wr(N.NVME_REG_AQA, (adminDepth - 1) << 16 | (adminDepth - 1));
    this.wr64(N.NVME_REG_ASQ, this.admin.sq.busAddr);
    this.wr64(N.NVME_REG_ACQ, this.admin.cq.busAddr);
    this.wr(N.NVME_REG_CC, N.NVME_CC_EN | N.NVME_SQES << N.NVME_CC_IOSQES_SHIFT | N.NVME_CQES << N.NVME_CC_IOCQES_SHIFT);
    await this.waitReady(true, 'enable');

    // Identify Controller.
    const id = this.alloc(PAGE_SIZE);
    try {
      await this.adminCmd('identify controller', N.nvme_admin_identify, { prp1: id.busAddr, cdw10: N.NVME_ID_CNS_CTRL });
      const b = id.bytes;
      const v = new DataView(b.buffer, b.byteOffset, PAGE_SIZE);
      const str = (at: number, n: number) => Buffer.from(b.subarray(at, at + n)).toString('latin1').replace(/[\0 ]+$/, '');
      this.serial = str(N.ID_CTRL.sn, 20);
      this.model = str(N.ID_CTRL.mn, 40);
      const mdts = b[N.ID_CTRL.mdts]!;
      this.maxRequestBytes = Math.min(MAX_TRANSFER, mdts === 0 ? MAX_TRANSFER : PAGE_SIZE * 2 ** mdts);
      this.features.flush = (b[N.ID_CTRL.vwc]! & 1) !== 0;
      this.features.discard = (v.getUint16(N.ID_CTRL.oncs, true) & (1 << 2)) !== 0;
      if (v.getUint32(N.ID_CTRL.nn, true) < 1) throw new Error('no namespaces');

      // Identify Namespace 1: its size and LBA format.
      b.fill(0);
      await this.adminCmd('identify namespace', N.nvme_admin_identify, { nsid: 1, prp1: id.busAddr, cdw10: N.NVME_ID_CNS_NS });
      const nsze = Number(v.getBigUint64(N.ID_NS.nsze, true));
      const lbaf = v.getUint32(N.ID_NS.lbaf0 + 4 * (b[N.ID_NS.flbas]! & 0xf), true);
      const lbads = (lbaf >>> 16) & 0xff;
      if (lbads !== 9 || (lbaf & 0xffff) !== 0) throw new Error(`namespace 1: LBA format of 2^${lbads} bytes with metadata ${lbaf & 0xffff} not supported`);
      this.sectors = nsze;
    } finally {
      id.free();
    }

    // One I/O queue pair (nvme_set_queue_count, nvme_create_queue).
    const nq = await this.adminCmd('set features (queues)', N.nvme_admin_set_features, { cdw10: N.NVME_FEAT_NUM_QUEUES, cdw11: 0 });
    if ((nq.dw0 & 0xffff) === 0xffff) throw new Error('no I/O queues');
    const depth = Math.min(IO_DEPTH, mqes);
    const io = new QueuePair(1, depth, this.alloc(depth * N.NVME_SQE_SIZE), this.alloc(depth * N.NVME_CQE_SIZE), ioVector);
    await this.adminCmd('create I/O CQ', N.nvme_admin_create_cq, {
      prp1: io.cq.busAddr, cdw10: (depth - 1) << 16 | 1, cdw11: ioVector << 16 | 2 /* IEN */ | 1 /* PC */,
    });
    await this.adminCmd('create I/O SQ', N.nvme_admin_create_sq, { prp1: io.sq.busAddr, cdw10: (depth - 1) << 16 | 1, cdw11: 1 << 16 | 1 });
    this.io = io;
    this.log(`${this.model} ${this.serial}: ${this.name} ${(this.sectors * SECTOR / 1048576).toFixed(0)} MiB, ` +
      `${this.msixVectors ? `MSI-X ${this.msixVectors}` : 'INTx'}, ${this.maxRequestBytes >> 10} KiB per command`);
  }

  /** Contiguous DMA memory for a queue or an identify buffer (a queue fits in one allocation). */
  private alloc(bytes: number): PciDmaBuffer {
    const b = this.dev.dmaAlloc(Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE);
    b.bytes.fill(0);
    return b;
  }

  // --- Commands.

  private async adminCmd(what: string, opc: number, f: { nsid?: number; prp1?: number; cdw10?: number; cdw11?: number }): Promise<Completion> {
    const c = await this.submit(this.admin, (v) => {
      v.setUint8(0, opc);
      v.setUint32(4, f.nsid ?? 0, true);
      v.setBigUint64(24, BigInt(f.prp1 ?? 0), true);
      v.setUint32(40, (f.cdw10 ?? 0) >>> 0, true);
      v.setUint32(44, (f.cdw11 ?? 0) >>> 0, true);
    });
    if (c.status !== 0) throw new NvmeError(c.status, `${this.name}: ${what}`);
    return c;
  }

  /** nvme_submit_cmd: the entry at the SQ tail, the tail doorbell; resolves with the completion. */
  private async submit(q: QueuePair, fill: (v: DataView) => void): Promise<Completion> {
    if (this.dead) throw new Error(`${this.name}: controller is gone`);
    const cid = q.idle > 0 ? q.take() : await q.cid();
    const at = q.tail * N.NVME_SQE_SIZE;
    const b = q.sq.bytes;
    b.fill(0, at, at + N.NVME_SQE_SIZE);
    const v = new DataView(b.buffer, b.byteOffset + at, N.NVME_SQE_SIZE);
    fill(v);
    v.setUint16(2, cid, true);
    const done = new Promise<Completion>((resolve, reject) => {
      q.pending.set(cid, { resolve, reject, deadline: performance.now() + this.timeoutMs, cid, timedOut: false });
    });
    this.armWatchdog();
    q.tail = (q.tail + 1) % q.depth;
    this.ringLater(q);
    return done;
  }

  /**
   * The SQ tail doorbell once for every command submitted in this turn
   * (Linux's blk-mq writes it at the last request of a batch, bd->last):
   * process.nextTick from a submission's promise continuation runs once
   * every continuation queued with it has submitted.
   */
  private ringLater(q: QueuePair): void {
    if (q.ringing) return;
    q.ringing = true;
    process.nextTick(() => {
      q.ringing = false;
      if (this.dead) return;
      if (q.unreported > 0 && !this.headRoom(q)) this.ringHead(q);
      this.stats.notifiesSent++;
      this.wr(N.NVME_REG_DBS + 8 * q.qid, q.tail);
    });
  }

  /**
   * One timer for every command in flight (blk-mq's timeout work, not a
   * timer per request): at the earliest deadline, each command past its
   * deadline fails; its ID stays taken until the controller completes it.
   */
  private armWatchdog(): void {
    if (this.watchdog || this.dead) return;
    let first = Infinity;
    for (const q of [this.admin, this.io]) for (const p of q?.pending.values() ?? []) if (!p.timedOut && p.deadline < first) first = p.deadline;
    if (first === Infinity) return;
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      const now = performance.now();
      for (const q of [this.admin, this.io]) {
        for (const p of q?.pending.values() ?? []) {
          if (p.timedOut || p.deadline > now) continue;
          p.timedOut = true;
          this.stats.errors++;
          p.reject(new Error(`${this.name}: command ${p.cid} on queue ${q!.qid} timed out after ${this.timeoutMs} ms`));
        }
      }
      this.armWatchdog();
    }, Math.max(1, first - performance.now()));
    this.watchdog.unref?.();
  }

  /** An interrupt of `vector`: reap its queues (nvme_irq), then end the interrupt. */
  private interrupt(vector: number): void {
    this.stats.notifiesReceived++;
    if (this.admin.vector === vector || this.msixVectors === 0) this.reap(this.admin);
    if (this.io && (this.io.vector === vector || this.msixVectors === 0)) this.reap(this.io);
    this.dev.eoi(vector);
  }

  /** nvme_process_cq: entries whose phase tag matches, then one CQ head doorbell write. */
  private reap(q: QueuePair): void {
    const b = q.cq.bytes;
    const v = new DataView(b.buffer, b.byteOffset, q.depth * N.NVME_CQE_SIZE);
    let n = 0;
    // At most one lap per interrupt: a device that keeps flipping phase tags cannot hold the kernel here.
    while (n < q.depth) {
      const at = q.head * N.NVME_CQE_SIZE;
      const dw3 = v.getUint32(at + 12, true);
      if (((dw3 >>> 16) & 1) !== q.phase) break;
      const c: Completion = { dw0: v.getUint32(at, true), status: (dw3 >>> 17) & 0x7ff };
      const cid = dw3 & 0xffff;
      if (++q.head === q.depth) { q.head = 0; q.phase ^= 1; }
      n++;
      const p = q.pending.get(cid);
      if (!p) { this.log(`completion of unknown command ${cid} on queue ${q.qid}`); continue; }
      q.pending.delete(cid);
      q.release(cid);
      if (!p.timedOut) p.resolve(c);
    }
    q.unreported += n;
    // The CQ head doorbell: at once for the admin queue and with INTx (the
    // pin stays asserted while the controller sees entries); with MSI-X an
    // I/O queue's head is told once half the queue was consumed, or when
    // the controller could otherwise find it full (headRoom), as SPDK's
    // driver delays it: the spec lets the host free entries when it likes.
    if (q.unreported > 0 && (q.qid === 0 || this.msixVectors === 0 || q.unreported >= q.depth >> 1 || !this.headRoom(q))) this.ringHead(q);
    if (this.inflight() === 0) for (const r of this.idle.splice(0)) r();
  }

  /** The CQ head doorbell with every entry consumed so far. */
  private ringHead(q: QueuePair): void {
    q.unreported = 0;
    this.wr(N.NVME_REG_DBS + 8 * q.qid + 4, q.head);
  }

  /**
   * Whether the controller can post a completion for every command in
   * flight: the entries it has not been told are free, plus those commands,
   * stay below the depth - 1 that make a full CQ.
   */
  private headRoom(q: QueuePair): boolean { return q.unreported + q.busy < q.depth - 1; }

  private inflight(): number { return this.admin.busy + (this.io?.busy ?? 0); }

  // --- Data pages and PRPs.

  private page(): PciDmaBuffer { return this.pool.pop() ?? this.dev.dmaAlloc(PAGE_SIZE); }

  private give(pages: PciDmaBuffer[]): void {
    for (const p of pages) {
      if (this.pool.length < POOL_KEEP && !this.dead) this.pool.push(p);
      else p.free();
    }
  }

  /**
   * nvme_pci_setup_prps: PRP1 is the first data page, PRP2 the second when
   * there are two, else the first PRP list page; a list page holds 512
   * entries and chains through its last one when more follow.
   */
  private prps(data: number[], lists: PciDmaBuffer[]): { prp1: number; prp2: number } {
    const prp1 = data[0]!;
    if (data.length === 1) return { prp1, prp2: 0 };
    if (data.length === 2) return { prp1, prp2: data[1]! };
    const per = PAGE_SIZE / 8;
    let list = this.page();
    lists.push(list);
    const prp2 = list.busAddr;
    let v = new DataView(list.bytes.buffer, list.bytes.byteOffset, PAGE_SIZE);
    // An entry as two dwords, low first: a bus address is below 2^53.
    const put = (slot: number, a: number) => { v.setUint32(8 * slot, a % 0x100000000, true); v.setUint32(8 * slot + 4, Math.floor(a / 0x100000000), true); };
    let slot = 0;
    for (let i = 1; i < data.length; i++) {
      const left = data.length - i;
      if (slot === per - 1 && left > 1) {
        const next = this.page();
        lists.push(next);
        put(slot, next.busAddr);
        list = next;
        v = new DataView(list.bytes.buffer, list.bytes.byteOffset, PAGE_SIZE);
        slot = 0;
      }
      put(slot++, data[i]!);
    }
    return { prp1, prp2 };
  }

  /** One Read or Write of `buf` (at most maxRequestBytes) at `sector`. */
  private async rw(opc: number, sector: number, buf: Uint8Array): Promise<void> {
    const io = this.io;
    if (!io) throw new Error(`${this.name}: not connected`);
    // A buffer lent by allocBuffer is DMA memory: the device reads or writes
    // it in place, as Linux maps a request's pages. Anything else goes
    // through pages of the pool and a copy.
    const at = this.lentBusAddr(buf);
    const pages = Math.ceil(buf.length / PAGE_SIZE);
    const data = at === null ? Array.from({ length: pages }, () => this.page()) : [];
    const lists: PciDmaBuffer[] = [];
    try {
      if (opc === N.nvme_cmd_write) data.forEach((p, i) => p.bytes.set(buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)));
      const bus = at === null ? data.map((p) => p.busAddr) : Array.from({ length: pages }, (_, i) => at + i * PAGE_SIZE);
      const { prp1, prp2 } = this.prps(bus, lists);
      this.stats.requests++;
      const c = await this.submit(io, (v) => {
        v.setUint8(0, opc);
        v.setUint32(4, 1, true);
        set64(v, 24, prp1);
        set64(v, 32, prp2);
        set64(v, 40, sector);
        v.setUint32(48, buf.length / SECTOR - 1, true);
      });
      if (c.status !== 0) { this.stats.errors++; throw new NvmeError(c.status, `${this.name}: ${opc === N.nvme_cmd_read ? 'read' : 'write'} of sector ${sector}`); }
      if (opc === N.nvme_cmd_read) data.forEach((p, i) => buf.set(p.bytes.subarray(0, Math.min(PAGE_SIZE, buf.length - i * PAGE_SIZE)), i * PAGE_SIZE));
      this.stats.bytes += buf.length;
    } finally {
      this.give(lists);
      this.give(data);
    }
  }

  private check(sector: number, bytes: number): void {
    if (!Number.isSafeInteger(sector) || sector < 0 || bytes % SECTOR !== 0 || sector + bytes / SECTOR > this.sectors) {
      throw new RangeError(`${this.name}: ${bytes} bytes at sector ${sector} outside the ${this.sectors} sectors`);
    }
  }

  /** Commands of at most maxRequestBytes each; a request of one command is that command's promise. */
  private split(opc: number, sector: number, buf: Uint8Array): Promise<void> {
    try { this.check(sector, buf.length); } catch (e) { return Promise.reject(e); }
    if (buf.length <= this.maxRequestBytes) return this.rw(opc, sector, buf);
    const parts: Promise<void>[] = [];
    for (let off = 0; off < buf.length; off += this.maxRequestBytes) {
      const part = buf.subarray(off, Math.min(buf.length, off + this.maxRequestBytes));
      parts.push(this.rw(opc, sector + off / SECTOR, part));
    }
    return Promise.all(parts).then(() => undefined);
  }

  read(sector: number, into: Uint8Array): Promise<void> { return this.split(N.nvme_cmd_read, sector, into); }
  write(sector: number, data: Uint8Array): Promise<void> { return this.split(N.nvme_cmd_write, sector, data); }

  /** Flush of namespace 1 when the controller has a volatile write cache (else every write is durable). */
  async flush(): Promise<void> {
    if (!this.features.flush || !this.io) return;
    const c = await this.submit(this.io, (v) => { v.setUint8(0, N.nvme_cmd_flush); v.setUint32(4, 1, true); });
    if (c.status !== 0) { this.stats.errors++; throw new NvmeError(c.status, `${this.name}: flush`); }
  }

  /** Dataset Management with the deallocate attribute, one range. */
  async discard(sector: number, count: number): Promise<void> {
    this.check(sector, count * SECTOR);
    if (!this.features.discard || !this.io || count === 0) return;
    const page = this.page();
    try {
      const v = new DataView(page.bytes.buffer, page.bytes.byteOffset, 16);
      v.setUint32(0, 0, true);
      v.setUint32(4, count, true);
      v.setBigUint64(8, BigInt(sector), true);
      const c = await this.submit(this.io, (s) => {
        s.setUint8(0, N.nvme_cmd_dsm);
        s.setUint32(4, 1, true);
        s.setBigUint64(24, BigInt(page.busAddr), true);
        s.setUint32(40, 0, true); // one range
        s.setUint32(44, 1 << 2, true); // AD
      });
      if (c.status !== 0) throw new NvmeError(c.status, `${this.name}: discard`);
    } finally {
      this.give([page]);
    }
  }

  quiesce(timeoutMs = 5_000): Promise<void> {
    if (this.inflight() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      t.unref?.();
      this.idle.push(() => { clearTimeout(t); resolve(); });
    });
  }

  /**
   * A buffer of DMA memory (contiguous frames of the guest) the device reads
   * into and writes from without a copy; null past LEND_MAX_BYTES out at once.
   */
  allocBuffer(bytes: number): Uint8Array | null {
    if (this.dead || bytes <= 0 || this.lentBytes + bytes > LEND_MAX_BYTES) return null;
    let b: PciDmaBuffer;
    try { b = this.dev.dmaAlloc(Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE); } catch { return null; }
    this.lent.push(b);
    this.lentBytes += b.bytes.length;
    return b.bytes.subarray(0, bytes);
  }

  freeBuffer(buf: Uint8Array): void {
    const i = this.lent.findIndex((b) => b.bytes.buffer === buf.buffer && b.bytes.byteOffset === buf.byteOffset);
    if (i < 0) return;
    const [b] = this.lent.splice(i, 1);
    this.lentBytes -= b!.bytes.length;
    b!.free();
  }

  /** The bus address of `buf` when it lies in a lent buffer, page-aligned; else null. */
  private lentBusAddr(buf: Uint8Array): number | null {
    for (const b of this.lent) {
      const off = buf.byteOffset - b.bytes.byteOffset;
      if (b.bytes.buffer === buf.buffer && off >= 0 && off + buf.length <= b.bytes.length) return off % PAGE_SIZE === 0 ? b.busAddr + off : null;
    }
    return null;
  }

  /**
   * nvme_disable_ctrl(shutdown): CC.SHN normal, wait for SHST complete. CC.EN
   * stays set, as Linux leaves it: the next probe's reset clears it.
   */
  async shutdown(): Promise<void> {
    if (this.dead) return;
    await this.quiesce();
    this.wr(N.NVME_REG_CC, (this.rd(N.NVME_REG_CC) & ~(3 << N.NVME_CC_SHN_SHIFT)) | 1 << N.NVME_CC_SHN_SHIFT);
    const deadline = Date.now() + this.capTimeoutMs;
    while (((this.rd(N.NVME_REG_CSTS) >>> N.NVME_CSTS_SHST_SHIFT) & 3) !== N.NVME_CSTS_SHST_CMPLT && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
    }
    this.dead = true;
    for (const q of [this.admin, this.io]) {
      for (const p of q?.pending.values() ?? []) p.reject(new Error(`${this.name}: controller shut down`));
      q?.pending.clear();
    }
    this.releaseMemory();
  }

  private releaseMemory(): void {
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
    for (const q of [this.admin, this.io]) { q?.sq.free(); q?.cq.free(); }
    for (const p of this.pool.splice(0)) p.free();
  }
}

/**
 * Probes an NVMe function and registers its namespace with the kernel's
 * disks (pcifront calls this for each passed-through function of class
 * 0x010802); the driver is returned for shutdown on unplug.
 */
export async function registerNvme(disks: Pick<BlockDevices, 'devices' | 'register'>, dev: PciDeviceHandle, opts: NvmeDriverOptions = {}): Promise<NvmeDriver> {
  let index = opts.index ?? 0;
  while (opts.index === undefined && disks.devices.has(`nvme${index}n1`)) index++;
  const d = await NvmeDriver.probe(dev, { ...opts, index });
  await disks.register(d);
  return d;
}
