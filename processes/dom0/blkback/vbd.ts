// One virtual block device's back end (Linux xen-blkback xenbus.c + the
// ring loop of blkback.c), found at
// /local/domain/0/backend/vbd/<domid>/<devid>:
//
//   toolstack                     blkback (this)                    blkfront
//   writes both dirs, state 1 ──> open params (mode r|w), write
//                                 sectors, sector-size, info,
//                                 feature-*, state InitWait(2) ───>
//                                                              <─── ring-ref, event-channel,
//                                                                   protocol, state Initialised(3)
//                                 map ring-ref (GNTTABOP_map_grant_ref),
//                                 bind event-channel, Connected(4) ─>
//                                                              <─── Connected(4)
//   state Closing(5), online 0 ───────────────────────────────────> Closing/Closed
//                                 frontend Closed: unmap, unbind, Closed(6)
//
// The ring loop: on an event, take every request (copied once), handle
// each (the data path does its preadv/pwritev on the spot), push the
// responses, then RING_FINAL_CHECK_FOR_REQUESTS. Requests that must wait
// (grant maps, flush, discard) complete in any order; their responses are
// pushed together at the end of a turn. RING_PUSH_RESPONSES_AND_CHECK_NOTIFY
// notifies the front end only when it asked to be. A front end that pushes more requests than the ring
// holds is disconnected (Closing, then Closed); others are not affected.
//
// Refusals of the front end's input are counted and logged under their names
// (reject.ts, ../backend_stats.ts); the statistics file is written before
// the responses that follow a refusal are pushed, so whoever sees the error
// response finds the refusal counted. Error responses wait for the end of the
// pass (or the next push) rather than being pushed one by one: a front end
// that sends nothing but bad requests costs one file write per pass.
import type { XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import { BackRing } from '../../../shared/abi/io/ring.js';
import {
  BLKIF_RING_ENTRY_SIZE, BLKIF_RSP_OKAY, BLKIF_XS, VDISK_READONLY, XEN_BLKIF_SECTOR_SIZE, XEN_IO_PROTO_ABI_X86_64, blkif_request,
  writeResponse,
} from '../../../shared/abi/io/blkif.js';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import {
  XenbusState, xenbusGather, xenbusReadInt, xenbusSwitchState, xenbusWatchState, xenbusWriteKeys, type XenbusWatch,
} from '../../../shared/xen/xenbus.js';
import type { BackendDevice, BackendDriver } from '../backend_stats.js';
import { DiskImage } from './disk.js';
import { VbdGrants } from './grants.js';
import { BlkifReject } from './reject.js';
import {
  MAX_INDIRECT_SEGMENTS, Segments, handleRequest, type BlkStats, type Outcome, type RequestContext,
} from './requests.js';
import type { BlkbackHooks } from './test_hooks.js';

/** Bytes of I/O one turn of the ring loop does before letting the event loop run. */
const TURN_BYTES = 8 << 20;

export interface VbdContext {
  dom0: XenDomain;
  xs: XsClient;
  log(msg: string): void;
  /** Statistics and rejections of every vbd. */
  driver: BackendDriver<BlkifReject>;
  /** Test hooks (XENEMU_TEST_HOOKS), null outside tests. */
  hooks: BlkbackHooks | null;
}

interface Connection {
  ring: BackRing;
  ringHandle: number;
  port: number;
  grants: VbdGrants;
  /** Every request still being served (mapping, I/O), reads included. */
  pending: Set<Promise<unknown>>;
  inflightWrites: Set<Promise<unknown>>;
  pendingPush: boolean;
  /** A turn that stopped at TURN_BYTES goes on at the next one. */
  resume: boolean;
  /** This pass of the ring loop sent an event already. */
  passNotified: boolean;
  /** The front end asked for an event this pass has not sent yet (sent at its end). */
  owed: boolean;
  processing: boolean;
  /** The private copy of the request being read (RING_COPY_REQUEST), reused. */
  req: Uint8Array;
  segs: Segments;
  rctx: RequestContext;
  /** The ring page, for writing responses in place. */
  view: DataView;
  again: boolean;
  dead: boolean;
  /** The test hook holds the ring loop (test_hooks.ts). */
  paused: boolean;
}

export class Vbd {
  readonly stats: BlkStats = { oo_req: 0, rd_req: 0, wr_req: 0, f_req: 0, ds_req: 0, rd_sect: 0, wr_sect: 0, io_errors: 0 };
  /** Event channel notifications sent to the front end, and received from it. */
  notifies = { sent: 0, received: 0 };
  /** Refusals of this front end's input, and the statistics file. */
  readonly dev: BackendDevice<BlkifReject>;
  private disk: DiskImage | undefined;
  private conn: Connection | undefined;
  private feWatch: XenbusWatch | undefined;
  private frontendDir = '';
  private frontendId = -1;
  private closed = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: VbdContext, readonly dir: string, readonly domid: number, readonly devid: number) {
    this.dev = ctx.driver.device(domid, devid, () => this.counters(), (m) => this.log(m));
  }

  private log(m: string): void { this.ctx.log(`blkback: vbd d${this.domid}/${this.devid}: ${m}`); }

  /** The statistics file's counters (Linux's names where it has them). */
  private counters(): Record<string, number> {
    return {
      ...this.stats, notify_sent: this.notifies.sent, notify_received: this.notifies.received,
      persistent_grants: this.conn?.grants.persistentCount ?? 0, grant_maps: this.conn?.grants.mapsDone ?? 0,
    };
  }

  /** Opens the image, advertises the features, InitWait, and follows the front end. */
  async start(): Promise<void> {
    const xs = this.ctx.xs;
    const k = await xenbusGather(xs, this.dir, ['params', 'mode', 'frontend', 'frontend-id'] as const);
    if (!k.params || !k.frontend || k['frontend-id'] === null) throw new Error(`incomplete backend directory ${this.dir}`);
    this.frontendDir = k.frontend;
    this.frontendId = Number(k['frontend-id']);
    const readonly = (k.mode ?? 'w').startsWith('r');
    try {
      this.disk = await DiskImage.open(k.params, readonly);
    } catch (e) {
      this.log(`cannot open ${k.params}: ${(e as Error).message}`);
      await xs.write(`${this.dir}/hotplug-error`, `${k.params}: ${(e as Error).message}`).catch(() => undefined);
      await xenbusSwitchState(xs, this.dir, XenbusState.Closed).catch(() => undefined);
      return;
    }
    const sectors = Math.floor(this.disk.bytes / XEN_BLKIF_SECTOR_SIZE);
    await xenbusWriteKeys(xs, this.dir, {
      [BLKIF_XS.sectors]: sectors,
      [BLKIF_XS.sectorSize]: XEN_BLKIF_SECTOR_SIZE,
      [BLKIF_XS.info]: readonly ? VDISK_READONLY : 0,
      [BLKIF_XS.featureFlushCache]: 1,
      [BLKIF_XS.featureBarrier]: 0,
      [BLKIF_XS.featureDiscard]: readonly ? 0 : 1,
      [BLKIF_XS.discardGranularity]: PAGE_SIZE,
      [BLKIF_XS.discardAlignment]: 0,
      [BLKIF_XS.discardSecure]: 0,
      [BLKIF_XS.featurePersistent]: 1,
      [BLKIF_XS.featureMaxIndirectSegments]: MAX_INDIRECT_SEGMENTS,
      'hotplug-status': 'connected',
    });
    await xenbusSwitchState(xs, this.dir, XenbusState.InitWait);
    this.log(`${k.params} (${sectors} sectors, ${readonly ? 'ro' : 'rw'}), InitWait`);
    this.feWatch = await xenbusWatchState(xs, this.frontendDir, (s) => this.serial(() => this.frontendChanged(s)));
  }

  /** One state change at a time. */
  private serial(fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(fn).catch((e: Error) => this.log(`error: ${e.message}`));
    return this.chain;
  }

  /** frontend_changed (Linux xen-blkback/xenbus.c). */
  private async frontendChanged(state: XenbusState): Promise<void> {
    if (this.closed) return;
    const xs = this.ctx.xs;
    switch (state) {
      case XenbusState.Initialised: case XenbusState.Connected:
        if (this.conn && !this.conn.dead) return;
        if ((await xenbusReadInt(xs, this.dir, 'state')) === XenbusState.Closed) return;
        await this.connect();
        return;
      case XenbusState.Closing:
        await this.disconnect();
        await xenbusSwitchState(xs, this.dir, XenbusState.Closing).catch(() => undefined);
        return;
      case XenbusState.Closed: case XenbusState.Unknown:
        await this.disconnect();
        await xenbusSwitchState(xs, this.dir, XenbusState.Closed).catch(() => undefined);
        return;
      default:
        return;
    }
  }

  private async connect(): Promise<void> {
    const xs = this.ctx.xs;
    const dom0 = this.ctx.dom0;
    const k = await xenbusGather(xs, this.frontendDir,
      ['ring-ref', 'event-channel', 'protocol', 'feature-persistent'] as const);
    const ringRef = Number(k['ring-ref']);
    const evtchn = Number(k['event-channel']);
    if (!Number.isInteger(ringRef) || k['ring-ref'] === null) {
      await this.fatal(BlkifReject.bad_ring_ref, `front end gave no usable ring-ref (${k['ring-ref']})`);
      return;
    }
    if (!Number.isInteger(evtchn) || k['event-channel'] === null) {
      await this.fatal(BlkifReject.bad_event_channel, `front end gave no usable event-channel (${k['event-channel']})`);
      return;
    }
    if (k.protocol !== null && k.protocol !== XEN_IO_PROTO_ABI_X86_64) {
      await this.fatal(BlkifReject.bad_protocol, `unsupported protocol ${k.protocol}`);
      return;
    }
    let map;
    try {
      map = await dom0.gnttab.mapGrant(this.frontendId, ringRef, false);
    } catch (e) {
      await this.fatal(BlkifReject.bad_ring_ref, `mapping ring-ref ${ringRef}: ${(e as Error).message}`);
      return;
    }
    let port: number;
    try {
      port = await dom0.evtchn.bindInterdomain(this.frontendId, evtchn);
    } catch (e) {
      await dom0.gnttab.unmapGrant(map.handle);
      await this.fatal(BlkifReject.bad_event_channel, `binding event-channel ${evtchn}: ${(e as Error).message}`);
      return;
    }
    const persistent = k['feature-persistent'] === '1';
    const grants = new VbdGrants(dom0.gnttab, this.frontendId, persistent);
    const inflightWrites = new Set<Promise<unknown>>();
    this.conn = {
      ring: BackRing.attach(map.page, BLKIF_RING_ENTRY_SIZE), ringHandle: map.handle, port, grants,
      pending: new Set(), inflightWrites, pendingPush: false, resume: false, passNotified: false, owed: false, processing: false,
      again: false, dead: false, paused: false,
      req: new Uint8Array(BLKIF_RING_ENTRY_SIZE), segs: new Segments(),
      rctx: {
        disk: this.disk!, grants, sectors: Math.floor(this.disk!.bytes / XEN_BLKIF_SECTOR_SIZE), stats: this.stats, inflightWrites,
        reject: (reason, detail) => this.dev.reject(reason, detail), log: (m) => this.dev.limitedLog(m),
      },
      view: new DataView(map.page.buffer, map.page.byteOffset, map.page.byteLength),
    };
    const conn = this.conn;
    if (this.ctx.hooks) conn.rctx.descriptorsCopied = (lo, hi) => this.holdAfterDescriptors(conn, lo, hi);
    dom0.evtchn.on(port, () => { this.notifies.received++; this.kick(conn); });
    await xenbusSwitchState(xs, this.dir, XenbusState.Connected);
    this.log(`connected: ring-ref ${ringRef}, event-channel ${evtchn} (local ${port}), persistent grants ${persistent ? 'on' : 'off'}`);
    this.kick(conn);
  }

  /** A front end that broke the protocol: Closing, unmapped, Closed. Others keep their service. */
  private async fatal(reason: BlkifReject, why: string): Promise<void> {
    this.dev.reject(reason, why);
    this.dev.sync();
    this.log(`disconnecting the front end (${reason}): ${why}`);
    await this.ctx.xs.write(`${this.dir}/error`, why).catch(() => undefined);
    await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closing).catch(() => undefined);
    await this.disconnect();
    await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closed).catch(() => undefined);
  }

  /**
   * The ring loop (xen_blkif_schedule / __do_block_io_op): req_prod read
   * once per pass and checked, each request copied out of its slot once into
   * the connection's buffer and handled. Requests done on the spot (the data
   * path, see requests.ts) get their responses at once, each pushed with
   * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY (Linux's make_response): the front
   * end gets an event only when it waits for one (rsp_event), and starts on
   * the first completion while the next requests are being read. A turn
   * moves at most TURN_BYTES; the rest waits for the next turn of the event
   * loop, so that a busy disk does not starve Domain-0's other services.
   */
  private kick(conn: Connection): void {
    if (conn.dead) return;
    if (conn.processing || conn.paused) { conn.again = true; return; }
    conn.processing = true;
    const ring = conn.ring;
    const sect0 = this.stats.rd_sect + this.stats.wr_sect;
    try {
      do {
        conn.again = false;
        for (;;) {
          const rp = ring.req_prod;
          if (ring.requestProdOverflow(rp)) {
            conn.dead = true;
            void this.serial(() => this.fatal(BlkifReject.req_prod_overflow,
              `front end provided bogus ring requests (req_prod ${rp}, rsp_prod_pvt ${ring.rsp_prod_pvt})`));
            return;
          }
          conn.passNotified = false;
          while (ring.req_cons !== rp && !ring.requestConsOverflow(ring.req_cons)) {
            if ((this.stats.rd_sect + this.stats.wr_sect - sect0) * XEN_BLKIF_SECTOR_SIZE >= TURN_BYTES) { this.later(conn); return; }
            ring.copyRequestTo(ring.req_cons, conn.req);
            ring.req_cons = (ring.req_cons + 1) >>> 0;
            if (this.ctx.hooks && this.holdAfterCopy(conn)) { this.pushNow(conn); return; }
            this.start1(conn);
            if (conn.paused) { this.pushNow(conn); return; }
          }
          this.pushNow(conn);
          if (conn.owed) this.notify(conn);
          if (!ring.finalCheckForRequests()) break;
        }
      } while (conn.again);
    } finally {
      conn.processing = false;
    }
  }

  /** Goes on at the next turn of the event loop (after pushing what is done). */
  private later(conn: Connection): void {
    this.pushNow(conn);
    if (conn.owed) this.notify(conn);
    if (conn.resume) return;
    conn.resume = true;
    setImmediate(() => { conn.resume = false; this.kick(conn); });
  }

  /**
   * Test hook: the request just copied is the one a test armed the pause
   * for. The loop stops here, before handling it; once the test lets go, the
   * copy is handled and the loop goes on.
   */
  private holdAfterCopy(conn: Connection): boolean {
    const d = new DataView(conn.req.buffer, conn.req.byteOffset, conn.req.byteLength);
    const gate = this.ctx.hooks!.pause(this.domid, this.devid, d.getUint32(blkif_request.id, true), d.getUint32(blkif_request.id + 4, true), 'request');
    if (!gate) return false;
    conn.paused = true;
    void gate.then(() => {
      conn.paused = false;
      if (conn.dead) return;
      this.start1(conn);
      if (!conn.paused) this.kick(conn);
    });
    return true;
  }

  /** Test hook: holds the ring loop while an indirect request's copied descriptors wait for the test. */
  private holdAfterDescriptors(conn: Connection, lo: number, hi: number): Promise<void> | undefined {
    const gate = this.ctx.hooks!.pause(this.domid, this.devid, lo, hi, 'descriptors');
    if (!gate) return undefined;
    conn.paused = true;
    // The request goes on (its .then runs first, from the copy); the loop at the next turn.
    void gate.then(() => setImmediate(() => { conn.paused = false; this.kick(conn); }));
    return gate;
  }

  private start1(conn: Connection): void {
    const r = handleRequest(conn.rctx, conn.req, conn.segs);
    if (!(r instanceof Promise)) {
      this.respond(conn, r);
      // An error response waits for the end of the pass (pushNow), when the
      // statistics are written once for every refusal of the pass.
      if (r.status !== BLKIF_RSP_OKAY) return;
      // Pushed at once, as make_response does. The first event of a pass goes
      // now, so that the front end refills the ring while this pass goes on;
      // any other it asks for meanwhile waits for the end of the pass (one
      // event instead of one per request: an event costs Domain-0 a message
      // to the hypervisor, about what a 1 MiB preadv costs).
      this.dev.sync();
      if (conn.ring.pushResponsesAndCheckNotify()) {
        if (conn.passNotified) conn.owed = true; else { conn.passNotified = true; this.notify(conn); }
      }
      return;
    }
    conn.pending.add(r);
    void r.then((out) => {
      conn.pending.delete(r);
      if (conn.dead) return;
      this.respond(conn, out);
      if (!conn.pendingPush) {
        conn.pendingPush = true;
        // Completions of one turn go out with one push (and at most one event).
        setImmediate(() => this.push(conn));
      }
    });
  }

  /** Writes a blkif_response into the next response slot (not yet pushed). */
  private respond(conn: Connection, out: Outcome): void {
    writeResponse(conn.view, conn.ring.slotOffset(conn.ring.rsp_prod_pvt), out.idLo, out.idHi, out.operation, out.status);
    conn.ring.produce();
  }

  private pushNow(conn: Connection): void {
    if (conn.dead) return;
    this.dev.sync();
    if (conn.ring.pushResponsesAndCheckNotify()) this.notify(conn);
  }

  private notify(conn: Connection): void {
    conn.owed = false;
    if (conn.dead) return;
    this.notifies.sent++;
    this.ctx.dom0.evtchn.notify(conn.port);
  }

  private push(conn: Connection): void {
    conn.pendingPush = false;
    if (conn.dead) return;
    this.pushNow(conn);
    // Slots freed by these responses may let more requests in.
    if (conn.ring.hasUnconsumedRequests()) this.kick(conn);
  }

  private async disconnect(): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    this.conn = undefined;
    conn.dead = true;
    const dom0 = this.ctx.dom0;
    dom0.evtchn.off(conn.port);
    await dom0.evtchn.close(conn.port).catch(() => undefined);
    // Every in-flight request, a read whose first grant map is still being
    // set up included, finishes on its pages before those are unmapped: after
    // this, nothing of this front end's memory is touched again.
    await Promise.allSettled([...conn.inflightWrites, ...conn.pending]);
    await conn.grants.clear();
    await dom0.gnttab.unmapGrant(conn.ringHandle).catch(() => undefined);
    this.log('disconnected');
  }

  /** The backend directory went away (destroy or detach done): release everything. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.feWatch?.close();
    await this.chain;
    await this.disconnect();
    await this.disk?.close();
    this.disk = undefined;
    this.dev.remove();
  }
}
