// One vif: the back end of a guest's network interface (Linux
// drivers/net/xen-netback/{xenbus,interface,netback}.c), on the shared rings
// from io/netif.h and the ring library of io/ring.h.
//
//   handshake (xenbus):  InitWait ── frontend Initialised/Connected ──> map tx/rx rings
//                        (GNTTABOP_map_grant_ref), bind the event channel, Connected
//   tx (guest -> bridge): requests copied out of the ring once, validated, then
//                        one batched GNTTABOP_copy gref -> Dom0 frame for the batch;
//                        each good packet enters the bridge; one response per request
//   rx (bridge -> guest): packets queue (bounded); each posted rx request gets one by
//                        a batched GNTTABOP_copy Dom0 frame -> gref; responses carry the length
//
// Notifications go through the ring macros: RING_PUSH_RESPONSES_AND_CHECK_NOTIFY
// to notify, RING_FINAL_CHECK_FOR_REQUESTS before going idle.
//
// A hostile front end: a bad gref, another domain's gref, a request smaller
// than an Ethernet header or larger than a frame, a packet of several slots
// (NETTXF_more_data: feature-sg=0) or with extra info slots (none offered)
// gets NETIF_RSP_ERROR (NETIF_RSP_NULL for each extra slot, as Linux's
// make_tx_response) and the vif goes on; a request crossing its page, an
// extra info of no known type, or a req_prod that runs ahead of the ring
// (RING_REQUEST_PROD_OVERFLOW) is fatal, as xenvif_fatal_tx_err: the vif is
// disconnected and its state set to Closed. An rx buffer whose gref cannot be
// copied into loses its packet. Each refusal is counted and logged under its
// name (reject.ts: NetifReject), once per packet. Other vifs are not
// affected: each vif's work is its own, a copy failure is per op, and a guest
// that posts no rx buffers holds at most RX_QUEUE_MAX of Domain-0's packet
// frames, and none of the pool's reserve.
//
// A tx packet's slots, as io/netif.h lays them out (the parse state is kept
// across batches, so a packet may straddle two):
//
//   [req flags=more_data|extra_info] [extra flags=MORE] [extra] [req more_data] [req]
//    head                             extra info slots            continuation slots
import { BackRing } from '../../../shared/abi/io/ring.js';
import {
  NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_data_validated, NETTXF_extra_info, NETTXF_more_data,
  NETIF_TX_SLOT, NETIF_RX_SLOT, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_MAX, XEN_NETIF_EXTRA_TYPE_NONE,
  readExtraInfo, readRxRequest, readTxRequest, writeRxResponse, writeTxResponse,
} from '../../../shared/abi/io/netif.js';
import { GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTST_okay, type gnttab_copy } from '../../../shared/abi/grant_table.js';
import { DOMID_SELF, PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { GrantMapping, XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import {
  XenbusState, xenbusGather, xenbusReadState, xenbusStateName, xenbusSwitchState, xenbusWatchState, xenbusWriteKeys,
  type XenbusWatch,
} from '../../../shared/xen/xenbus.js';
import type { BackendDevice, BackendDriver } from '../backend_stats.js';
import type { Bridge, BridgePort } from './bridge.js';
import type { FramePool } from './pool.js';
import { NetifReject } from './reject.js';

const ETH_HLEN = 14;
/** Largest frame on a vif without feature-sg: MTU 1500 + Ethernet header. */
export const VIF_MAX_FRAME = 1514;
/** Requests per batched copy. */
const BATCH = 64;
/** Packets waiting for the guest's rx buffers before the bridge's are dropped (txqueuelen). */
export const RX_QUEUE_MAX = 512;

/** A vif's counters, as its statistics file names them (tx, rx: the rings of io/netif.h). */
export interface VifStats {
  tx_packets: number; tx_bytes: number; tx_errors: number;
  rx_packets: number; rx_bytes: number; rx_dropped: number;
  /** Events from the front end, notifications sent to it. */
  events_in: number; notifies_out: number;
}

export interface VifContext {
  dom0: XenDomain;
  xs: XsClient;
  pool: FramePool;
  bridge(name: string): Bridge;
  log(msg: string): void;
  /** Statistics and rejections of every vif. */
  driver: BackendDriver<NetifReject>;
}

interface Connection {
  tx: BackRing;
  rx: BackRing;
  txMap: GrantMapping;
  rxMap: GrantMapping;
  port: number;
  /** The tx packet being parsed: its continuation slots come next (NETTXF_more_data). */
  txChain: boolean;
  /** Extra info slots come next (NETTXF_extra_info, XEN_NETIF_EXTRA_FLAG_MORE). */
  txExtras: boolean;
  /** The refusal of the packet whose extra info slots are being read, counted once they are all valid. */
  txRefusal: [NetifReject, string] | null;
}

/** A front end that cannot be connected, and why. */
class ConnectRefused extends Error {
  constructor(readonly reason: NetifReject, message: string) { super(message); }
}

/** Runs `fn` so that calls never overlap; a call while it runs makes it run once more. */
function serial(fn: () => Promise<void>, onError: (e: Error) => void): () => void {
  let running = false;
  let again = false;
  const go = (): void => {
    if (running) { again = true; return; }
    running = true;
    again = false;
    fn().catch(onError).finally(() => { running = false; if (again) go(); });
  };
  return go;
}

export class Vif implements BridgePort {
  readonly name: string;
  readonly stats: VifStats = { tx_packets: 0, tx_bytes: 0, tx_errors: 0, rx_packets: 0, rx_bytes: 0, rx_dropped: 0, events_in: 0, notifies_out: 0 };
  /** Refusals of this front end's input, and the statistics file. */
  readonly dev: BackendDevice<NetifReject>;
  frontendDir = '';
  bridgeName = 'xenbr0';
  private conn: Connection | null = null;
  private connecting: Promise<void> | null = null;
  private watch: XenbusWatch | null = null;
  private bridge: Bridge | null = null;
  private readonly rxQueue: Array<{ pfn: number; len: number }> = [];
  private removed = false;
  private readonly kickTx: () => void;
  private readonly kickRx: () => void;
  private txRetry: NodeJS.Timeout | null = null;
  private syncQueued = false;

  constructor(private readonly ctx: VifContext, readonly domid: number, readonly devid: number, readonly dir: string) {
    this.name = `vif${domid}.${devid}`;
    this.kickTx = serial(() => this.txWork(), (e) => this.ctx.log(`${this.name}: tx: ${e.message}`));
    this.kickRx = serial(() => this.rxWork(), (e) => this.ctx.log(`${this.name}: rx: ${e.message}`));
    this.dev = ctx.driver.device(domid, devid, () => ({ ...this.stats, rx_queue: this.rxQueue.length }),
      (m) => ctx.log(`${this.name}: ${m}`));
  }

  get connected(): boolean { return this.conn !== null; }

  /** netback_probe: advertise features, InitWait, follow the front end's state. */
  async probe(): Promise<void> {
    const { xs } = this.ctx;
    const k = await xenbusGather(xs, this.dir, ['frontend', 'bridge'] as const);
    if (!k.frontend) throw new Error(`${this.dir}: no frontend`);
    this.frontendDir = k.frontend;
    this.bridgeName = k.bridge || 'xenbr0';
    await xenbusWriteKeys(xs, this.dir, { 'feature-rx-copy': 1, 'feature-rx-flip': 0, 'feature-sg': 0, 'feature-gso-tcpv4': 0 });
    await xenbusSwitchState(xs, this.dir, XenbusState.InitWait);
    this.watch = await xenbusWatchState(xs, this.frontendDir, (s) => this.frontendChanged(s));
  }

  private async frontendChanged(s: XenbusState): Promise<void> {
    if (this.removed) return;
    switch (s) {
      case XenbusState.Initialised:
      case XenbusState.Connected:
        if (!this.conn && !this.connecting) {
          this.connecting = this.connect().catch(async (e: Error) => {
            if (e instanceof ConnectRefused) {
              this.dev.reject(e.reason, e.message);
              this.dev.sync();
              await this.ctx.xs.write(`${this.dir}/error`, e.message).catch(() => undefined);
            }
            this.ctx.log(`${this.name}: connect failed: ${e.message}`);
            await this.release();
            await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closed).catch(() => undefined);
          }).finally(() => { this.connecting = null; });
        }
        break;
      case XenbusState.Closing:
        await this.disconnect();
        await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closing).catch(() => undefined);
        break;
      case XenbusState.Closed:
      case XenbusState.Unknown: {
        await this.disconnect();
        await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closed).catch(() => undefined);
        // Still online: wait for the front end to come back (netback's frontend_changed).
        const online = await this.ctx.xs.tryRead(`${this.dir}/online`).catch(() => null);
        if (s === XenbusState.Closed && online === '1') {
          await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.InitWait).catch(() => undefined);
        }
        break;
      }
      default:
        break;
    }
  }

  /** connect(): map both rings, bind the event channel, join the bridge. */
  private async connect(): Promise<void> {
    const { xs, dom0 } = this.ctx;
    const f = await xenbusGather(xs, this.frontendDir, ['tx-ring-ref', 'rx-ring-ref', 'event-channel', 'request-rx-copy'] as const);
    const num = (v: string | null) => (v !== null && /^\d+$/.test(v) ? Number(v) : NaN);
    const txRef = num(f['tx-ring-ref']);
    const rxRef = num(f['rx-ring-ref']);
    const evtchn = num(f['event-channel']);
    if (!Number.isSafeInteger(txRef) || !Number.isSafeInteger(rxRef)) {
      throw new ConnectRefused(NetifReject.bad_ring_ref, `front end gave no usable tx-ring-ref/rx-ring-ref (${f['tx-ring-ref']}, ${f['rx-ring-ref']})`);
    }
    if (!Number.isSafeInteger(evtchn)) throw new ConnectRefused(NetifReject.bad_event_channel, `front end gave no usable event-channel (${f['event-channel']})`);
    if (f['request-rx-copy'] !== '1') throw new ConnectRefused(NetifReject.no_rx_copy, 'front end does not do rx-copy (rx-flip is not supported)');
    const map = async (ref: number, which: string) => {
      try {
        return await dom0.gnttab.mapGrant(this.domid, ref, false);
      } catch (e) {
        throw new ConnectRefused(NetifReject.bad_ring_ref, `mapping ${which}-ring-ref ${ref}: ${(e as Error).message}`);
      }
    };
    const txMap = await map(txRef, 'tx');
    let rxMap: GrantMapping;
    try {
      rxMap = await map(rxRef, 'rx');
    } catch (e) {
      await dom0.gnttab.unmapGrant(txMap.handle);
      throw e;
    }
    let port: number;
    try {
      port = await dom0.evtchn.bindInterdomain(this.domid, evtchn);
    } catch (e) {
      await dom0.gnttab.unmapGrant(txMap.handle);
      await dom0.gnttab.unmapGrant(rxMap.handle);
      throw new ConnectRefused(NetifReject.bad_event_channel, `binding event-channel ${evtchn}: ${(e as Error).message}`);
    }
    this.conn = {
      tx: BackRing.attach(txMap.page, NETIF_TX_SLOT), rx: BackRing.attach(rxMap.page, NETIF_RX_SLOT), txMap, rxMap, port,
      txChain: false, txExtras: false, txRefusal: null,
    };
    this.bridge = this.ctx.bridge(this.bridgeName);
    this.bridge.addPort(this);
    dom0.evtchn.on(port, () => { this.stats.events_in++; this.kickTx(); this.kickRx(); });
    await xenbusSwitchState(xs, this.dir, XenbusState.Connected);
    this.ctx.log(`${this.name}: connected (tx-ring-ref ${txRef}, rx-ring-ref ${rxRef}, evtchn ${evtchn} -> Dom0 port ${port}, bridge ${this.bridgeName})`);
    this.kickTx();
  }

  /** Unbinds, unmaps, leaves the bridge, drops queued packets. Idempotent. */
  async disconnect(): Promise<void> {
    await this.connecting?.catch(() => undefined);
    await this.release();
  }

  /**
   * Disconnect without waiting for a connect in progress: for the connect's
   * own failure path and for fatal errors, which may run inside it (waiting
   * there for `connecting` would wait for itself, and wedge netback).
   */
  private async release(): Promise<void> {
    const c = this.conn;
    if (!c) return;
    this.conn = null;
    if (this.txRetry) { clearTimeout(this.txRetry); this.txRetry = null; }
    this.bridge?.removePort(this);
    this.bridge = null;
    for (const p of this.rxQueue.splice(0)) this.ctx.pool.unref(p.pfn);
    const { dom0 } = this.ctx;
    dom0.evtchn.off(c.port);
    await dom0.evtchn.close(c.port).catch(() => undefined);
    await dom0.gnttab.unmapGrant(c.txMap.handle).catch(() => undefined);
    await dom0.gnttab.unmapGrant(c.rxMap.handle).catch(() => undefined);
    const s = this.stats;
    this.ctx.log(`${this.name}: disconnected (tx ${s.tx_packets} pkts ${s.tx_bytes} B, ${s.tx_errors} errors; rx ${s.rx_packets} pkts ${s.rx_bytes} B, ${s.rx_dropped} dropped; ${this.dev.rejected} rejected)`);
  }

  /** xenvif_fatal_tx_err: the front end broke the protocol; it is cut off. */
  private async fatal(reason: NetifReject, why: string): Promise<void> {
    this.dev.reject(reason, why);
    this.dev.sync();
    this.ctx.log(`${this.name}: fatal error from d${this.domid} (${reason}): ${why}; disconnecting`);
    await this.release();
    await this.ctx.xs.write(`${this.dir}/error`, why).catch(() => undefined);
    await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closed).catch(() => undefined);
  }

  /** The toolstack set online=0 (network-detach): ask the front end to close. */
  async offline(): Promise<void> {
    const st = await xenbusReadState(this.ctx.xs, this.dir);
    if (st !== XenbusState.Closing && st !== XenbusState.Closed) {
      await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closing).catch(() => undefined);
    }
    const fe = await xenbusReadState(this.ctx.xs, this.frontendDir);
    if (fe === XenbusState.Closed || fe === XenbusState.Unknown) {
      await this.disconnect();
      await xenbusSwitchState(this.ctx.xs, this.dir, XenbusState.Closed).catch(() => undefined);
    }
  }

  /** The backend directory is gone (detach finished, or the domain was destroyed). */
  async remove(): Promise<void> {
    this.removed = true;
    await this.watch?.close();
    this.watch = null;
    await this.disconnect();
    this.dev.remove();
  }

  private notify(c: Connection): void {
    this.stats.notifies_out++;
    this.ctx.dom0.evtchn.notify(c.port);
  }

  // --- tx: guest -> bridge ---------------------------------------------

  private async txWork(): Promise<void> {
    const { pool, dom0 } = this.ctx;
    for (;;) {
      const c = this.conn;
      if (!c) return;
      const max = Math.min(BATCH, pool.available);
      if (max === 0) {
        // Every frame is in flight towards slow receivers: look again shortly.
        this.txRetry ??= setTimeout(() => { this.txRetry = null; this.kickTx(); }, 2);
        return;
      }
      const { requests, overflow } = c.tx.takeRequests(max);
      if (overflow) {
        await this.fatal(NetifReject.tx_req_prod_overflow, `tx req_prod ${c.tx.req_prod} is ahead of the ring (rsp_prod_pvt ${c.tx.rsp_prod_pvt})`);
        return;
      }
      if (requests.length === 0) {
        if (c.tx.finalCheckForRequests()) continue;
        return;
      }
      const n = requests.length;
      const status = new Array<number>(n).fill(NETIF_RSP_ERROR);
      const ids = new Array<number>(n).fill(0);
      const sizes = new Array<number>(n).fill(0);
      const frames: Array<number | undefined> = [];
      const ops: gnttab_copy[] = [];
      const opSlot: number[] = [];
      let fatal: [NetifReject, string] | null = null;
      for (let i = 0; i < n && !fatal; i++) {
        const dv = new DataView(requests[i]!.buffer, requests[i]!.byteOffset, requests[i]!.byteLength);
        if (c.txExtras) {
          // An extra info slot: no response of its own (NETIF_RSP_NULL); its packet is refused at its head,
          // and counted once its extra infos are read (unless one of them is fatal).
          const e = readExtraInfo(dv);
          status[i] = NETIF_RSP_NULL;
          if (e.type === XEN_NETIF_EXTRA_TYPE_NONE || e.type >= XEN_NETIF_EXTRA_TYPE_MAX) {
            fatal = [NetifReject.bad_extra_type, `extra info type ${e.type}`];
            continue;
          }
          c.txExtras = (e.flags & XEN_NETIF_EXTRA_FLAG_MORE) !== 0;
          if (!c.txExtras && c.txRefusal) { this.dev.reject(...c.txRefusal); c.txRefusal = null; }
          continue;
        }
        const r = readTxRequest(dv);
        ids[i] = r.id;
        const continuation = c.txChain;
        const more = (r.flags & NETTXF_more_data) !== 0;
        c.txChain = more;
        if (!continuation) c.txExtras = (r.flags & NETTXF_extra_info) !== 0;
        // A packet's first slot gives the whole packet's size; every other slot, its own.
        if ((continuation || !more) && r.offset + r.size > PAGE_SIZE) {
          fatal = [NetifReject.page_crossing, `tx request id ${r.id} crosses its page (offset ${r.offset} size ${r.size})`];
          continue;
        }
        if (continuation) continue; // refused with its first slot
        const why = `tx request id ${r.id} (gref ${r.gref} offset ${r.offset} flags ${r.flags} size ${r.size})`;
        if (more || c.txExtras) {
          const refusal: [NetifReject, string] = [more ? NetifReject.more_data_unsupported : NetifReject.extra_info_unsupported, why];
          if (c.txExtras) c.txRefusal = refusal; else this.dev.reject(...refusal);
          continue;
        }
        if (r.size < ETH_HLEN) { this.dev.reject(NetifReject.runt_frame, why); continue; }
        if (r.size > VIF_MAX_FRAME) { this.dev.reject(NetifReject.oversized_frame, why); continue; }
        const pfn = pool.alloc();
        if (pfn < 0) continue;
        frames[i] = pfn;
        sizes[i] = r.size;
        ops.push({ source: { ref: r.gref, domid: this.domid, offset: r.offset },
                   dest: { gmfn: pfn, domid: DOMID_SELF, offset: 0 }, len: r.size, flags: GNTCOPY_source_gref });
        opSlot.push(i);
      }
      const st = await dom0.gnttab.copyBatch(ops);
      for (let j = 0; j < opSlot.length; j++) {
        const i = opSlot[j]!;
        if (st[j] === GNTST_okay) status[i] = NETIF_RSP_OKAY;
        else if (!fatal) this.dev.reject(NetifReject.bad_gref, `tx request id ${ids[i]} (gref ${ops[j]!.source.ref}): GNTTABOP_copy status ${st[j]}`);
      }
      if (fatal) {
        for (const f of frames) if (f !== undefined) pool.unref(f);
        await this.fatal(...fatal);
        return;
      }
      if (this.conn !== c) { for (const f of frames) if (f !== undefined) pool.unref(f); return; }
      for (let i = 0; i < n; i++) {
        writeTxResponse(new DataView(c.tx.page.buffer, c.tx.page.byteOffset + c.tx.slotOffset(c.tx.rsp_prod_pvt)), { id: ids[i]!, status: status[i]! });
        c.tx.produce();
        if (status[i] === NETIF_RSP_ERROR) this.stats.tx_errors++;
      }
      this.dev.sync();
      if (c.tx.pushResponsesAndCheckNotify()) this.notify(c);
      for (let i = 0; i < n; i++) {
        const pfn = frames[i];
        if (pfn === undefined) continue;
        if (status[i] === NETIF_RSP_OKAY) {
          this.stats.tx_packets++;
          this.stats.tx_bytes += sizes[i]!;
          this.bridge?.input(this, pool.view(pfn, sizes[i]!));
        }
        pool.unref(pfn);
      }
    }
  }

  // --- rx: bridge -> guest ---------------------------------------------

  /**
   * BridgePort.deliver: queue the frame for the guest (a reference to its
   * pool frame). A guest that posts no rx buffers keeps at most
   * RX_QUEUE_MAX frames waiting, and gets no new one while the pool is
   * down to its reserve: the frames it holds are not the other vifs'.
   */
  deliver(frame: Uint8Array): void {
    if (!this.conn) return;
    const { pool } = this.ctx;
    if (this.rxQueue.length >= RX_QUEUE_MAX || (this.rxQueue.length > 0 && pool.available < pool.reserve)) {
      this.stats.rx_dropped++;
      this.dev.reject(NetifReject.no_rx_buffers,
        `${frame.length}-byte packet dropped: ${this.rxQueue.length} waiting for rx buffers, ${pool.available} of ${pool.count} packet frames free`);
      // No response follows a drop: the statistics are written once this turn's packets are through.
      if (!this.syncQueued) { this.syncQueued = true; setImmediate(() => { this.syncQueued = false; this.dev.sync(); }); }
      return;
    }
    let pfn = pool.pfnOf(frame);
    if (pfn < 0) {
      pfn = pool.alloc();
      if (pfn < 0) { this.stats.rx_dropped++; return; }
      pool.view(pfn, frame.length).set(frame);
    } else pool.ref(pfn);
    this.rxQueue.push({ pfn, len: frame.length });
    if (this.rxQueue.length === 1) setImmediate(this.kickRx);
  }

  private async rxWork(): Promise<void> {
    const { pool, dom0 } = this.ctx;
    for (;;) {
      const c = this.conn;
      if (!c) return;
      // Checked on every event, packets waiting or not.
      if (c.rx.requestProdOverflow(c.rx.req_prod)) {
        await this.fatal(NetifReject.rx_req_prod_overflow, `rx req_prod ${c.rx.req_prod} is ahead of the ring (rsp_prod_pvt ${c.rx.rsp_prod_pvt})`);
        return;
      }
      if (this.rxQueue.length === 0) return;
      const { requests, overflow } = c.rx.takeRequests(Math.min(BATCH, this.rxQueue.length));
      if (overflow) {
        await this.fatal(NetifReject.rx_req_prod_overflow, `rx req_prod ${c.rx.req_prod} is ahead of the ring (rsp_prod_pvt ${c.rx.rsp_prod_pvt})`);
        return;
      }
      if (requests.length === 0) {
        if (c.rx.finalCheckForRequests()) continue;
        return; // no buffers posted: the front end's next push notifies us
      }
      const pkts = this.rxQueue.splice(0, requests.length);
      const reqs = requests.map((r) => readRxRequest(new DataView(r.buffer, r.byteOffset, r.byteLength)));
      const ops: gnttab_copy[] = reqs.map((r, i) => ({
        source: { gmfn: pkts[i]!.pfn, domid: DOMID_SELF, offset: 0 },
        dest: { ref: r.gref, domid: this.domid, offset: 0 }, len: pkts[i]!.len, flags: GNTCOPY_dest_gref,
      }));
      const st = await dom0.gnttab.copyBatch(ops);
      for (const p of pkts) pool.unref(p.pfn);
      if (this.conn !== c) return;
      for (let i = 0; i < reqs.length; i++) {
        const ok = st[i] === GNTST_okay;
        writeRxResponse(new DataView(c.rx.page.buffer, c.rx.page.byteOffset + c.rx.slotOffset(c.rx.rsp_prod_pvt)),
          { id: reqs[i]!.id, offset: 0, flags: NETRXF_data_validated, status: ok ? pkts[i]!.len : NETIF_RSP_ERROR });
        c.rx.produce();
        if (ok) { this.stats.rx_packets++; this.stats.rx_bytes += pkts[i]!.len; continue; }
        this.stats.rx_dropped++;
        this.dev.reject(NetifReject.bad_rx_gref, `rx request id ${reqs[i]!.id} (gref ${reqs[i]!.gref}): GNTTABOP_copy status ${st[i]}`);
      }
      this.dev.sync();
      if (c.rx.pushResponsesAndCheckNotify()) this.notify(c);
    }
  }

  /** For `xm network-list`-style reporting and tests. */
  async backendState(): Promise<string> { return xenbusStateName(await xenbusReadState(this.ctx.xs, this.dir)); }
}
