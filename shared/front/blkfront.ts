// blkfront: the guest's virtual block device front end (Linux
// drivers/block/xen-blkfront.c, Mini-OS blkfront.c).
//
//   device/vbd/<devid>                         backend (blkback)
//     wait for the back end's InitWait
//     ring page granted, event channel allocated
//     ring-ref, event-channel, protocol, feature-persistent, Initialised ──>
//                                              <── Connected (sectors, info, features)
//     Connected; /dev/xvdX usable
//     back end Closing (xl block-detach) ──> finish in-flight I/O, Closed
//
// Data moves through a pool of guest pages granted once to the back end and
// reused (feature-persistent): a write copies into pool pages, a read copies
// out of them, so the back end maps each grant once. Queue depth is the ring
// (32 requests); a request carries up to 11 segments, or up to the back
// end's feature-max-indirect-segments with BLKIF_OP_INDIRECT (one indirect
// page per request slot, granted once too). Completion order is the back
// end's; each response is matched by its id.
import type { XenDomain } from '../xen/index.js';
import type { XsClient } from '../xenstore/client.js';
import { FrontRing } from '../abi/io/ring.js';
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_READ,
  BLKIF_OP_WRITE, BLKIF_RING_ENTRY_SIZE, BLKIF_RSP_OKAY, BLK_RING_SIZE, SEGS_PER_INDIRECT_FRAME, VDISK_READONLY,
  XEN_BLKIF_SECTOR_SIZE, XEN_IO_PROTO_ABI_X86_64, blkif_request, blkif_request_segment,
  decodeResponse, encodeRequest, encodeRequestDiscard, writeIndirectGref, writeRequestHead, writeRequestIndirectHead,
  writeSegment,
} from '../abi/io/blkif.js';
import {
  XenbusState, xenbusGather, xenbusSwitchState, xenbusWaitState, xenbusWatchState, xenbusWriteKeys,
  type XenbusWatch,
} from '../xen/xenbus.js';
import { PAGE_SIZE } from '../abi/xen.js';

/**
 * Data pages granted to the back end: 8 MiB, the most a sequential stream
 * keeps in flight (dd's window), when the guest has 64 MB or more; 4 MiB
 * below that. The pages in flight, not the ring, bound 1 MiB I/O: each
 * event crosses the hypervisor, and only what is queued keeps both ends busy
 * meanwhile (4 -> 8 MiB took sequential reads from 0.32x to 0.5x of direct
 * I/O, writes from 0.59x to 0.8x, docs/blk.md). With the ring's indirect
 * pages this is blkback's persistent budget (MAX_PERSISTENT_GRANTS).
 */
export const BLKFRONT_POOL_PAGES = 2048;
export const BLKFRONT_POOL_PAGES_SMALL = 1024;
const POOL_FULL_FROM_FRAMES = (64 << 20) / PAGE_SIZE;
/** Segments per indirect request we use (Linux xen_blkif_max_segments = 256 with 1 MiB requests in mind). */
export const BLKFRONT_MAX_INDIRECT = 256;
const SECT_PER_PAGE = PAGE_SIZE / XEN_BLKIF_SECTOR_SIZE;

export interface BlkfrontDeps {
  dom: XenDomain;
  xs: XsClient;
  /** Frames for rings and buffers that the balloon never gives back. */
  reservePages(n: number): number;
  log(msg: string): void;
}

export class BlkError extends Error {
  constructor(readonly status: number, what: string) { super(`${what}: I/O error (status ${status})`); this.name = 'BlkError'; }
}

interface Shadow { resolve(status: number): void }

/** Runs of reserved pages kept for the next device (a detach does not give frames back). */
const spareRuns: Array<{ base: number; count: number }> = [];

export function vbdName(devid: number, dev: string | null): string {
  if (dev && /^[a-z]+$/.test(dev)) return dev;
  if ((devid >> 8) === 202) {
    const n = (devid >> 4) & 0xf;
    return `xvd${String.fromCharCode(97 + n)}`;
  }
  return `vbd${devid}`;
}

export class Blkfront {
  name = '';
  sectors = 0;
  readonly = false;
  features = { flush: false, discard: false, persistent: false, maxIndirect: 0 };
  stats = { requests: 0, bytes: 0, notifiesSent: 0, notifiesReceived: 0, errors: 0 };
  state: 'connecting' | 'connected' | 'closing' | 'closed' = 'connecting';

  private ring!: FrontRing;
  private port = -1;
  private backend = '';
  private backendId = 0;
  private base = -1;
  private pages = 0;
  private ringRef = -1;
  private readonly grefs: number[] = [];
  private indirectFirst = 0;
  private readonly freeData: number[] = [];
  /** Pool pages lent as I/O buffers (allocBuffer): first page -> page count. */
  private readonly lent = new Map<number, number>();
  private poolFirst = 0;
  private poolPages = 0;
  private readonly freeIds: number[] = [];
  private readonly shadow: Array<Shadow | undefined> = new Array(BLK_RING_SIZE);
  private readonly waiters: Array<() => void> = [];
  private beWatch: XenbusWatch | undefined;
  private inflight = 0;
  private idle: Array<() => void> = [];
  onGone: (() => void) | undefined;

  constructor(private readonly deps: BlkfrontDeps, readonly devid: number, readonly dir: string) {}

  private log(m: string): void { this.deps.log(`blkfront: ${this.name || this.devid}: ${m}`); }

  /** talk_to_blkback + blkfront_connect: resolves once the device is usable. */
  async connect(timeoutMs = 10_000): Promise<void> {
    const { xs, dom } = this.deps;
    const k = await xenbusGather(xs, this.dir, ['backend', 'backend-id'] as const);
    if (!k.backend || k['backend-id'] === null) throw new Error(`${this.dir}: no backend`);
    this.backend = k.backend;
    this.backendId = Number(k['backend-id']);
    this.name = vbdName(this.devid, await xs.tryRead(`${this.backend}/dev`).catch(() => null));
    const be = await xenbusWaitState(xs, this.backend,
      (s) => s === XenbusState.InitWait || s === XenbusState.Connected || s >= XenbusState.Closing, { timeoutMs });
    if (be >= XenbusState.Closing) throw new Error(`back end is ${XenbusState[be]}`);
    const bf = await xenbusGather(xs, this.backend, ['feature-persistent', 'feature-max-indirect-segments'] as const);
    this.features.persistent = bf['feature-persistent'] === '1';
    const maxInd = Number(bf['feature-max-indirect-segments'] ?? 0);
    this.features.maxIndirect = Number.isInteger(maxInd) && maxInd > BLKIF_MAX_SEGMENTS_PER_REQUEST
      ? Math.min(maxInd, BLKFRONT_MAX_INDIRECT, SEGS_PER_INDIRECT_FRAME) : 0;

    // Frames: ring, one indirect page per request slot, the data pool.
    const pool = dom.memory.nrFrames >= POOL_FULL_FROM_FRAMES ? BLKFRONT_POOL_PAGES : BLKFRONT_POOL_PAGES_SMALL;
    this.pages = 1 + BLK_RING_SIZE + pool;
    const spare = spareRuns.findIndex((r) => r.count >= this.pages);
    this.base = spare >= 0 ? spareRuns.splice(spare, 1)[0]!.base : this.deps.reservePages(this.pages);
    if (this.base < 0) throw new Error(`no memory for ${this.pages} ring and buffer pages`);
    const ringPage = dom.memory.page(this.base);
    this.ring = FrontRing.init(ringPage, BLKIF_RING_ENTRY_SIZE);
    for (let i = 0; i < this.pages; i++) {
      const ref = dom.gnttab.grantAccess(this.backendId, this.base + i, false);
      if (ref < 0) { this.releaseGrants(); throw new Error('grant table full'); }
      this.grefs.push(ref);
    }
    this.ringRef = this.grefs[0]!;
    this.indirectFirst = 1;
    // Ascending: taken from the end (and given back in the same order), a request gets a run of consecutive frames.
    for (let i = 0; i < pool; i++) this.freeData.push(1 + BLK_RING_SIZE + i);
    this.poolFirst = 1 + BLK_RING_SIZE;
    this.poolPages = pool;
    for (let i = BLK_RING_SIZE - 1; i >= 0; i--) this.freeIds.push(i);
    this.port = await dom.evtchn.allocUnbound(this.backendId);
    dom.evtchn.on(this.port, () => { this.stats.notifiesReceived++; this.interrupt(); });

    await xenbusWriteKeys(xs, this.dir, {
      'ring-ref': this.ringRef, 'event-channel': this.port, protocol: XEN_IO_PROTO_ABI_X86_64, 'feature-persistent': 1,
    });
    await xenbusSwitchState(xs, this.dir, XenbusState.Initialised);
    const s = await xenbusWaitState(xs, this.backend, (st) => st === XenbusState.Connected || st >= XenbusState.Closing, { timeoutMs });
    if (s !== XenbusState.Connected) throw new Error(`back end went ${XenbusState[s]} during the handshake`);
    const info = await xenbusGather(xs, this.backend,
      ['sectors', 'info', 'sector-size', 'feature-flush-cache', 'feature-discard'] as const);
    this.sectors = Number(info.sectors ?? 0);
    this.readonly = (Number(info.info ?? 0) & VDISK_READONLY) !== 0;
    this.features.flush = info['feature-flush-cache'] === '1';
    this.features.discard = info['feature-discard'] === '1';
    await xenbusSwitchState(xs, this.dir, XenbusState.Connected);
    this.state = 'connected';
    this.beWatch = await xenbusWatchState(xs, this.backend, (st) => this.backendChanged(st));
    this.log(`${this.sectors} sectors (${((this.sectors * 512) / 1048576).toFixed(0)} MiB)${this.readonly ? ' ro' : ''}, ` +
      `ring-ref ${this.ringRef}, event-channel ${this.port}, persistent ${this.features.persistent ? 'yes' : 'no'}, ` +
      `indirect ${this.features.maxIndirect || 'no'}, pool ${pool} pages, flush ${this.features.flush ? 'yes' : 'no'}, discard ${this.features.discard ? 'yes' : 'no'}`);
  }

  /** blkback_changed: the back end closing (detach, or it refused us) closes us. */
  private async backendChanged(s: XenbusState): Promise<void> {
    if (s < XenbusState.Closing || this.state === 'closed') return;
    if (this.state !== 'closing') {
      this.state = 'closing';
      await xenbusSwitchState(this.deps.xs, this.dir, XenbusState.Closing).catch(() => undefined);
      // What is in flight finishes (or fails) before the front end says Closed.
      if (this.inflight > 0 && s === XenbusState.Closing) await new Promise<void>((r) => this.idle.push(r));
      await this.shutdown();
      await xenbusSwitchState(this.deps.xs, this.dir, XenbusState.Closed).catch(() => undefined);
      this.log('closed');
      this.onGone?.();
    }
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.beWatch?.close();
    const { dom } = this.deps;
    dom.evtchn.off(this.port);
    await dom.evtchn.close(this.port).catch(() => undefined);
    // Requests that never got an answer fail now.
    for (let i = 0; i < this.shadow.length; i++) { const sh = this.shadow[i]; this.shadow[i] = undefined; sh?.resolve(-1); }
    for (const w of this.waiters.splice(0)) w();
    this.releaseGrants();
  }

  private releaseGrants(): void {
    const { dom } = this.deps;
    let all = true;
    for (const ref of this.grefs.splice(0)) if (!dom.gnttab.endAccess(ref)) all = false;
    // Frames still mapped by a back end are not reused.
    if (this.base >= 0 && all) spareRuns.push({ base: this.base, count: this.pages });
    this.base = -1;
  }

  /** Responses arrived (blkif_interrupt). */
  private interrupt(): void {
    for (;;) {
      const { responses, overflow } = this.ring.takeResponses();
      if (overflow) { this.log('back end pushed more responses than requests; ignoring the ring'); return; }
      for (const b of responses) {
        const r = decodeResponse(b);
        const id = Number(r.id);
        const sh = id >= 0 && id < BLK_RING_SIZE ? this.shadow[id] : undefined;
        if (!sh) { this.log(`response for unknown id ${r.id}`); continue; }
        this.shadow[id] = undefined;
        this.freeIds.push(id);
        sh.resolve(r.status);
      }
      if (!this.ring.finalCheckForResponses()) break;
    }
    this.wake();
  }

  private wake(): void {
    while (this.waiters.length && this.freeIds.length) this.waiters.shift()!();
  }

  private async slot(): Promise<number> {
    for (;;) {
      if (this.state !== 'connected') throw new BlkError(-1, `${this.name} is not connected`);
      const id = this.freeIds.pop();
      if (id !== undefined) return id;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  private async dataPages(n: number): Promise<number[]> {
    for (;;) {
      if (this.state !== 'connected') throw new BlkError(-1, `${this.name} is not connected`);
      if (this.freeData.length >= n) return this.freeData.splice(this.freeData.length - n, n);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /**
   * An I/O buffer of `bytes` lent out of the granted pool, or null (pool
   * too busy). Reads into it and writes from it move no byte in the guest:
   * its pages are the request's segments, as Linux's blkfront grants a
   * bio's own pages when it does not copy through persistent grants (and as
   * O_DIRECT or io_uring's registered buffers hand the device user pages).
   * One request's worth of pages always stays in the pool, so that other
   * I/O goes on while buffers are out. Give it back with freeBuffer().
   */
  allocBuffer(bytes: number): Uint8Array | null {
    const n = Math.ceil(bytes / PAGE_SIZE);
    if (this.state !== 'connected' || n < 1 || this.freeData.length - n < this.maxRequestBytes / PAGE_SIZE) return null;
    const sorted = [...this.freeData].sort((a, b) => a - b);
    for (let i = 0; i + n <= sorted.length; i++) {
      if (sorted[i + n - 1] !== sorted[i]! + n - 1) continue;
      const first = sorted[i]!;
      const keep = this.freeData.filter((q) => q < first || q >= first + n);
      this.freeData.length = 0;
      this.freeData.push(...keep);
      this.lent.set(first, n);
      return this.deps.dom.memory.range(this.base + first, n).subarray(0, bytes);
    }
    return null;
  }

  /** Gives back a buffer from allocBuffer() (its I/O done). */
  freeBuffer(buf: Uint8Array): void {
    const first = this.lentFirst(buf);
    if (first < 0 || buf.byteOffset !== (this.base + first) * PAGE_SIZE) return;
    const n = this.lent.get(first)!;
    this.lent.delete(first);
    if (this.state !== 'connected') return; // the pool went with the device
    this.releasePages(Array.from({ length: n }, (_, i) => first + i));
  }

  /** The pool page a lent buffer's view starts at (page-aligned, inside one lent run), or -1. */
  private lentFirst(v: Uint8Array): number {
    if (this.base < 0 || v.buffer !== this.deps.dom.memory.sab || v.byteOffset % PAGE_SIZE !== 0) return -1;
    const page = v.byteOffset / PAGE_SIZE - this.base;
    if (page < this.poolFirst || page >= this.poolFirst + this.poolPages) return -1;
    for (const [first, n] of this.lent) {
      if (page >= first && page + Math.ceil(v.byteLength / PAGE_SIZE) <= first + n) return page;
    }
    return -1;
  }

  private releasePages(p: number[]): void {
    this.freeData.push(...p);
    this.wake();
  }

  private page(i: number): Uint8Array { return this.deps.dom.memory.page(this.base + i); }

  /** Fills ring slot for `id` (fill writes the request), pushes, notifies if the back end asked. */
  private submit(id: number, fill: (slot: Uint8Array) => void): Promise<number> {
    this.inflight++;
    const done = new Promise<number>((resolve) => { this.shadow[id] = { resolve }; });
    const slot = this.ring.nextRequest();
    if (!slot) throw new Error('ring full with a free id'); // cannot happen: ids = ring slots
    fill(slot);
    this.ring.produce();
    this.stats.requests++;
    if (this.ring.pushRequestsAndCheckNotify()) { this.stats.notifiesSent++; this.deps.dom.evtchn.notify(this.port); }
    return done.finally(() => {
      if (--this.inflight === 0) for (const r of this.idle.splice(0)) r();
    });
  }

  /** Largest transfer of one request, in bytes. */
  get maxRequestBytes(): number {
    return (this.features.maxIndirect || BLKIF_MAX_SEGMENTS_PER_REQUEST) * PAGE_SIZE;
  }

  /**
   * Copies between `data` and the pool pages, one copy per run of
   * consecutive frames (the pool hands out ascending runs, so a 1 MiB
   * request is usually one copy).
   */
  private copyPages(pages: number[], data: Uint8Array, toPages: boolean): void {
    const mem = this.deps.dom.memory;
    for (let i = 0; i < pages.length;) {
      let j = i + 1;
      while (j < pages.length && pages[j] === pages[j - 1]! + 1) j++;
      const off = i * PAGE_SIZE;
      const len = Math.min(data.byteLength, j * PAGE_SIZE) - off;
      const run = mem.range(this.base + pages[i]!, j - i).subarray(0, len);
      if (toPages) run.set(data.subarray(off, off + len)); else data.set(run, off);
      i = j;
    }
  }

  /** Writes the segment descriptors of `pages` at `at` in `dv` (a ring slot or an indirect page). */
  private encodeSegments(dv: DataView, at: number, pages: number[], nsect: number): void {
    for (let i = 0; i < pages.length; i++) {
      writeSegment(dv, at + i * blkif_request_segment.SIZE, this.grefs[pages[i]!]!, 0,
        i === pages.length - 1 ? ((nsect - 1) % SECT_PER_PAGE) : SECT_PER_PAGE - 1);
    }
  }

  /** One read or write of up to maxRequestBytes at a 512-byte sector; data.length a multiple of 512. */
  private async rw1(op: number, sector: number, data: Uint8Array): Promise<void> {
    const nsect = data.byteLength / XEN_BLKIF_SECTOR_SIZE;
    const npages = Math.ceil(nsect / SECT_PER_PAGE);
    // A lent buffer is its own segments; anything else goes through pool pages and a copy.
    const at = this.lentFirst(data);
    const pages = at >= 0 ? Array.from({ length: npages }, (_, i) => at + i) : await this.dataPages(npages);
    let id = -1;
    try {
      id = await this.slot();
      if (op === BLKIF_OP_WRITE && at < 0) this.copyPages(pages, data, true);
      const indirect = npages > BLKIF_MAX_SEGMENTS_PER_REQUEST;
      const rid = id;
      if (indirect) this.encodeSegments(this.indirectView(id), 0, pages, nsect);
      const status = await this.submit(id, (slot) => {
        const dv = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
        if (indirect) {
          writeRequestIndirectHead(dv, 0, op, npages, this.devid & 0xffff, rid, sector);
          writeIndirectGref(dv, 0, 0, this.grefs[this.indirectFirst + rid]!);
        } else {
          writeRequestHead(dv, 0, op, npages, this.devid & 0xffff, rid, sector);
          this.encodeSegments(dv, blkif_request.seg, pages, nsect);
        }
      });
      id = -1; // the interrupt handler freed it
      if (status !== BLKIF_RSP_OKAY) { this.stats.errors++; throw new BlkError(status, `${op === BLKIF_OP_READ ? 'read' : 'write'} at sector ${sector}`); }
      if (op === BLKIF_OP_READ && at < 0) this.copyPages(pages, data, false);
      this.stats.bytes += data.byteLength;
    } finally {
      if (id >= 0) { this.freeIds.push(id); }
      if (at < 0) this.releasePages(pages);
    }
  }

  /** The indirect page of request slot `id`. */
  private indirectView(id: number): DataView {
    return this.deps.dom.memory.dataView(this.base + this.indirectFirst + id);
  }

  private check(sector: number, bytes: number, write: boolean): void {
    if (bytes % XEN_BLKIF_SECTOR_SIZE !== 0) throw new RangeError('length is not a multiple of 512');
    if (!Number.isInteger(sector) || sector < 0 || sector + bytes / XEN_BLKIF_SECTOR_SIZE > this.sectors) {
      throw new RangeError(`sectors ${sector}+${bytes / 512} beyond the end of ${this.name} (${this.sectors})`);
    }
    if (write && this.readonly) throw new BlkError(-1, `${this.name} is read-only`);
  }

  /** Reads into `into` from `sector`; large transfers are split and issued together. */
  /** Resolves once no request is in flight (suspend), or after timeoutMs. */
  quiesce(timeoutMs = 5_000): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idle.push(() => { clearTimeout(t); resolve(); });
    });
  }

  async read(sector: number, into: Uint8Array): Promise<void> {
    this.check(sector, into.byteLength, false);
    const max = this.maxRequestBytes;
    const parts: Promise<void>[] = [];
    for (let off = 0; off < into.byteLength; off += max) {
      parts.push(this.rw1(BLKIF_OP_READ, sector + off / 512, into.subarray(off, Math.min(into.byteLength, off + max))));
    }
    await Promise.all(parts);
  }

  async write(sector: number, data: Uint8Array): Promise<void> {
    this.check(sector, data.byteLength, true);
    const max = this.maxRequestBytes;
    const parts: Promise<void>[] = [];
    for (let off = 0; off < data.byteLength; off += max) {
      parts.push(this.rw1(BLKIF_OP_WRITE, sector + off / 512, data.subarray(off, Math.min(data.byteLength, off + max))));
    }
    await Promise.all(parts);
  }

  /**
   * One READ or WRITE request exactly as given, without this driver's own
   * checks (range, read-only), so that the back end's checks are what answer:
   * the shell's `blkreq`, for seeing blkback refuse what Linux's block layer
   * would never send. Resolves with the response's status.
   */
  async request(op: typeof BLKIF_OP_READ | typeof BLKIF_OP_WRITE, sector: number, data: Uint8Array): Promise<number> {
    if (data.byteLength % XEN_BLKIF_SECTOR_SIZE !== 0 || data.byteLength === 0 || data.byteLength > this.maxRequestBytes) {
      throw new RangeError(`length must be 512 to ${this.maxRequestBytes} bytes, a multiple of 512`);
    }
    try {
      await this.rw1(op, sector, data);
      return BLKIF_RSP_OKAY;
    } catch (e) {
      if (e instanceof BlkError) return e.status;
      throw e;
    }
  }

  /** BLKIF_OP_FLUSH_DISKCACHE: resolves once what was written is on the back end's disk. */
  async flush(): Promise<void> {
    if (!this.features.flush) return;
    const id = await this.slot();
    const status = await this.submit(id, (slot) => encodeRequest(slot, {
      operation: BLKIF_OP_FLUSH_DISKCACHE, nr_segments: 0, handle: this.devid & 0xffff, id: BigInt(id),
      sector_number: 0n, seg: [],
    }));
    if (status !== BLKIF_RSP_OKAY) { this.stats.errors++; throw new BlkError(status, 'flush'); }
  }

  /** BLKIF_OP_DISCARD of `count` sectors. */
  async discard(sector: number, count: number): Promise<void> {
    if (!this.features.discard) throw new BlkError(-2, `${this.name} does not support discard`);
    this.check(sector, count * 512, true);
    const id = await this.slot();
    const status = await this.submit(id, (slot) => encodeRequestDiscard(slot, {
      operation: BLKIF_OP_DISCARD, flag: 0, handle: this.devid & 0xffff, id: BigInt(id),
      sector_number: BigInt(sector), nr_sectors: BigInt(count),
    }));
    if (status !== BLKIF_RSP_OKAY) { this.stats.errors++; throw new BlkError(status, 'discard'); }
  }
}
