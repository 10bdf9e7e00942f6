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
// than an Ethernet header or larger than a frame gets NETIF_RSP_ERROR and
// the vif goes on; a request crossing its page or a req_prod that runs ahead
// of the ring (RING_REQUEST_PROD_OVERFLOW) is fatal, as xenvif_fatal_tx_err:
// the vif is disconnected and its state set to Closed. Other vifs are not
// affected: each vif's work is its own, and a copy failure is per op.
import { BackRing } from '../../../shared/abi/io/ring.js';
import {
  NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETRXF_data_validated, NETTXF_extra_info, NETTXF_more_data, NETIF_TX_SLOT, NETIF_RX_SLOT,
  readRxRequest, readTxRequest, writeRxResponse, writeTxResponse, type NetifTxRequest,
} from '../../../shared/abi/io/netif.js';
import { GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTST_okay, type gnttab_copy } from '../../../shared/abi/grant_table.js';
import { DOMID_SELF, PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { GrantMapping, XenDomain } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import {
  XenbusState, xenbusGather, xenbusReadState, xenbusStateName, xenbusSwitchState, xenbusWatchState, xenbusWriteKeys,
  type XenbusWatch,
} from '../../../shared/xen/xenbus.js';
import type { Bridge, BridgePort } from './bridge.js';
import type { FramePool } from './pool.js';

const ETH_HLEN = 14;
/** Largest frame on a vif without feature-sg: MTU 1500 + Ethernet header. */
export const VIF_MAX_FRAME = 1514;
/** Requests per batched copy. */
const BATCH = 64;
/** Packets waiting for the guest's rx buffers before the bridge's are dropped (txqueuelen). */
const RX_QUEUE_MAX = 512;

export interface VifStats {
  txPackets: number; txBytes: number; txErrors: number;
  rxPackets: number; rxBytes: number; rxDropped: number;
  /** Events from the front end, notifications sent to it. */
  eventsIn: number; notifiesOut: number;
}

export interface VifContext {
  dom0: XenDomain;
  xs: XsClient;
  pool: FramePool;
  bridge(name: string): Bridge;
  log(msg: string): void;
}

interface Connection {
  tx: BackRing;
  rx: BackRing;
  txMap: GrantMapping;
  rxMap: GrantMapping;
  port: number;
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
  readonly stats: VifStats = { txPackets: 0, txBytes: 0, txErrors: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0, eventsIn: 0, notifiesOut: 0 };
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

  constructor(private readonly ctx: VifContext, readonly domid: number, readonly devid: number, readonly dir: string) {
    this.name = `vif${domid}.${devid}`;
    this.kickTx = serial(() => this.txWork(), (e) => this.ctx.log(`${this.name}: tx: ${e.message}`));
    this.kickRx = serial(() => this.rxWork(), (e) => this.ctx.log(`${this.name}: rx: ${e.message}`));
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
    if (![txRef, rxRef, evtchn].every(Number.isSafeInteger)) throw new Error('frontend did not give tx-ring-ref, rx-ring-ref and event-channel');
    if (f['request-rx-copy'] !== '1') throw new Error('frontend does not do rx-copy (rx-flip is not supported)');
    const txMap = await dom0.gnttab.mapGrant(this.domid, txRef, false);
    let rxMap: GrantMapping;
    try {
      rxMap = await dom0.gnttab.mapGrant(this.domid, rxRef, false);
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
      throw e;
    }
    this.conn = {
      tx: BackRing.attach(txMap.page, NETIF_TX_SLOT), rx: BackRing.attach(rxMap.page, NETIF_RX_SLOT), txMap, rxMap, port,
    };
    this.bridge = this.ctx.bridge(this.bridgeName);
    this.bridge.addPort(this);
    dom0.evtchn.on(port, () => { this.stats.eventsIn++; this.kickTx(); this.kickRx(); });
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
    this.ctx.log(`${this.name}: disconnected (tx ${s.txPackets} pkts ${s.txBytes} B, ${s.txErrors} errors; rx ${s.rxPackets} pkts ${s.rxBytes} B, ${s.rxDropped} dropped)`);
  }

  /** xenvif_fatal_tx_err: the front end broke the protocol; it is cut off. */
  private async fatal(why: string): Promise<void> {
    this.ctx.log(`${this.name}: fatal error from d${this.domid}: ${why}; disconnecting`);
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
  }

  private notify(c: Connection): void {
    this.stats.notifiesOut++;
    this.ctx.dom0.evtchn.notify(c.port);
  }

  // --- tx: guest -> bridge ---------------------------------------------

  private inChain = false;

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
      if (overflow) { await this.fatal(`tx req_prod ${c.tx.req_prod} is ahead of the ring (rsp_prod_pvt ${c.tx.rsp_prod_pvt})`); return; }
      if (requests.length === 0) {
        if (c.tx.finalCheckForRequests()) continue;
        return;
      }
      const reqs: NetifTxRequest[] = requests.map((r) => readTxRequest(new DataView(r.buffer, r.byteOffset, r.byteLength)));
      const status = new Array<number>(reqs.length).fill(NETIF_RSP_ERROR);
      const ops: gnttab_copy[] = [];
      const opReq: number[] = [];
      const frames: number[] = [];
      let fatal = '';
      for (let i = 0; i < reqs.length; i++) {
        const r = reqs[i]!;
        const chained = this.inChain;
        this.inChain = (r.flags & NETTXF_more_data) !== 0;
        if (r.offset + r.size > PAGE_SIZE) { fatal = `tx request id ${r.id} crosses its page (offset ${r.offset} size ${r.size})`; break; }
        // No feature-sg, no extra info: such requests (and the rest of their chain) are refused.
        if (chained || (r.flags & (NETTXF_more_data | NETTXF_extra_info)) || r.size < ETH_HLEN || r.size > VIF_MAX_FRAME) continue;
        const pfn = pool.alloc();
        if (pfn < 0) continue;
        frames[i] = pfn;
        ops.push({ source: { ref: r.gref, domid: this.domid, offset: r.offset },
                   dest: { gmfn: pfn, domid: DOMID_SELF, offset: 0 }, len: r.size, flags: GNTCOPY_source_gref });
        opReq.push(i);
      }
      const st = await dom0.gnttab.copyBatch(ops);
      for (let j = 0; j < opReq.length; j++) if (st[j] === GNTST_okay) status[opReq[j]!] = NETIF_RSP_OKAY;
      if (fatal) {
        for (const f of frames) if (f !== undefined) pool.unref(f);
        await this.fatal(fatal);
        return;
      }
      if (this.conn !== c) { for (const f of frames) if (f !== undefined) pool.unref(f); return; }
      for (let i = 0; i < reqs.length; i++) {
        writeTxResponse(new DataView(c.tx.page.buffer, c.tx.page.byteOffset + c.tx.slotOffset(c.tx.rsp_prod_pvt)), { id: reqs[i]!.id, status: status[i]! });
        c.tx.produce();
      }
      if (c.tx.pushResponsesAndCheckNotify()) this.notify(c);
      for (let i = 0; i < reqs.length; i++) {
        const pfn = frames[i];
        if (pfn === undefined) continue;
        if (status[i] === NETIF_RSP_OKAY) {
          this.stats.txPackets++;
          this.stats.txBytes += reqs[i]!.size;
          this.bridge?.input(this, pool.view(pfn, reqs[i]!.size));
        } else this.stats.txErrors++;
        pool.unref(pfn);
      }
      for (let i = 0; i < reqs.length; i++) if (frames[i] === undefined) this.stats.txErrors++;
    }
  }

  // --- rx: bridge -> guest ---------------------------------------------

  /** BridgePort.deliver: queue the frame for the guest (a reference to its pool frame). */
  deliver(frame: Uint8Array): void {
    if (!this.conn) return;
    if (this.rxQueue.length >= RX_QUEUE_MAX) { this.stats.rxDropped++; return; }
    const { pool } = this.ctx;
    let pfn = pool.pfnOf(frame);
    if (pfn < 0) {
      pfn = pool.alloc();
      if (pfn < 0) { this.stats.rxDropped++; return; }
      pool.view(pfn, frame.length).set(frame);
    } else pool.ref(pfn);
    this.rxQueue.push({ pfn, len: frame.length });
    if (this.rxQueue.length === 1) setImmediate(this.kickRx);
  }

  private async rxWork(): Promise<void> {
    const { pool, dom0 } = this.ctx;
    while (this.rxQueue.length > 0) {
      const c = this.conn;
      if (!c) return;
      const { requests, overflow } = c.rx.takeRequests(Math.min(BATCH, this.rxQueue.length));
      if (overflow) { await this.fatal(`rx req_prod ${c.rx.req_prod} is ahead of the ring`); return; }
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
        if (ok) { this.stats.rxPackets++; this.stats.rxBytes += pkts[i]!.len; } else this.stats.rxDropped++;
      }
      if (c.rx.pushResponsesAndCheckNotify()) this.notify(c);
    }
  }

  /** For `xm network-list`-style reporting and tests. */
  async backendState(): Promise<string> { return xenbusStateName(await xenbusReadState(this.ctx.xs, this.dir)); }
}
