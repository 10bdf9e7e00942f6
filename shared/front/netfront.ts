// netfront: the guest's network front end (Linux drivers/net/xen-netfront.c,
// Mini-OS netfront.c) for one vif, and the driver that finds vifs under
// device/vif (at boot and when the toolstack hot-plugs one).
//
//   probe:  read backend, backend-id, mac; wait for the back end's InitWait
//   setup:  tx and rx ring pages (SHARED_RING_INIT), granted to the back end;
//           an unbound event channel for it; 256 rx buffers posted; 256 tx buffers
//   talk:   tx-ring-ref, rx-ring-ref, event-channel, request-rx-copy=1 in one
//           transaction; state Connected; wait for the back end's Connected
//   close:  the back end goes Closing (network-detach) -> unbind, state Closed,
//           grants ended once the back end unmapped the rings
//
// Buffers: one page per slot, each with a grant kept for the life of the
// vif (read-only for tx, writable for rx) instead of Linux's grant per skb:
// granting is a table write here, but keeping them makes the data path a
// copy into the page and one ring slot. A buffer is only ever in one place:
// posted to the back end, or the guest's.
import { FrontRing } from '../abi/io/ring.js';
import {
  NETIF_RSP_NULL, NETIF_RSP_OKAY, NETIF_RX_SLOT, NETIF_TX_SLOT, NET_RX_RING_SIZE, NET_TX_RING_SIZE,
  readRxResponse, readTxResponse, writeRxRequest, writeTxRequest,
} from '../abi/io/netif.js';
import { PAGE_SIZE } from '../abi/xen.js';
import type { XenDomain } from '../xen/index.js';
import type { XsClient } from '../xenstore/client.js';
import {
  XenbusState, xenbusGather, xenbusSwitchState, xenbusWaitState, xenbusWatch, xenbusWatchState, xenbusWriteKeys,
  type XenbusWatch,
} from '../xen/xenbus.js';
import { parseMacAddr, type NetDevice, type NetDeviceStats, type PageReserve } from './netdev.js';

const PAGES_PER_VIF = 2 + NET_TX_RING_SIZE + NET_RX_RING_SIZE;

export interface NetfrontStats extends NetDeviceStats {
  /** Notifications to the back end, events from it. */
  notifiesOut: number; eventsIn: number;
}

/** Frames of closed vifs, reused by the next one (the balloon's floor never comes down). */
const spareRuns: number[] = [];

export class NetFront implements NetDevice {
  readonly name: string;
  mac: Uint8Array = new Uint8Array(6);
  readonly stats: NetfrontStats = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxDropped: 0, txDropped: 0, notifiesOut: 0, eventsIn: 0 };
  backend = '';
  backendId = 0;
  state: 'probing' | 'connected' | 'closed' = 'probing';
  txRingRef = -1;
  rxRingRef = -1;
  port = -1;
  private tx!: FrontRing;
  private rx!: FrontRing;
  private base = -1;
  private txGrefs: number[] = [];
  private rxGrefs: number[] = [];
  private readonly txFree: number[] = [];
  private receive: (f: Uint8Array) => void = () => undefined;
  private spaceWaiters: Array<() => void> = [];
  private flushQueued = false;
  private beWatch: XenbusWatch | null = null;
  private readonly closeHandlers: Array<() => void> = [];

  constructor(private readonly dom: XenDomain, private readonly xs: XsClient, private readonly balloon: PageReserve,
              readonly devid: number, private readonly log: (m: string) => void) {
    this.name = `eth${devid}`;
  }

  get dir(): string { return `/local/domain/${this.dom.domid}/device/vif/${this.devid}`; }

  onReceive(fn: (f: Uint8Array) => void): void { this.receive = fn; }
  onClose(fn: () => void): void { this.closeHandlers.push(fn); }

  private page(i: number): Uint8Array { return this.dom.memory.page(this.base + i); }

  /** netfront_probe + talk_to_netback + the wait for the back end's Connected. */
  async connect(timeoutMs = 10_000): Promise<void> {
    const { xs, dom } = this;
    const k = await xenbusGather(xs, this.dir, ['backend', 'backend-id', 'mac'] as const);
    if (!k.backend || k['backend-id'] === null) throw new Error(`${this.dir}: no backend`);
    this.backend = k.backend;
    this.backendId = Number(k['backend-id']);
    const mac = parseMacAddr(k.mac ?? '');
    if (!mac) throw new Error(`${this.dir}: bad mac '${k.mac}'`);
    this.mac = mac;
    await xenbusWaitState(xs, this.backend, (s) => s === XenbusState.InitWait || s === XenbusState.Connected, { timeoutMs });

    this.base = spareRuns.pop() ?? this.balloon.reserve(PAGES_PER_VIF);
    if (this.base < 0) throw new Error(`no memory for ${PAGES_PER_VIF} pages of rings and buffers`);
    const be = this.backendId;
    this.tx = FrontRing.init(this.page(0), NETIF_TX_SLOT);
    this.rx = FrontRing.init(this.page(1), NETIF_RX_SLOT);
    this.txRingRef = dom.gnttab.grantAccess(be, this.base);
    this.rxRingRef = dom.gnttab.grantAccess(be, this.base + 1);
    for (let i = 0; i < NET_TX_RING_SIZE; i++) { this.txGrefs.push(dom.gnttab.grantAccess(be, this.base + 2 + i, true)); this.txFree.push(NET_TX_RING_SIZE - 1 - i); }
    for (let i = 0; i < NET_RX_RING_SIZE; i++) this.rxGrefs.push(dom.gnttab.grantAccess(be, this.base + 2 + NET_TX_RING_SIZE + i));
    if ([this.txRingRef, this.rxRingRef, ...this.txGrefs, ...this.rxGrefs].some((r) => r < 0)) throw new Error('grant table full');
    for (let id = 0; id < NET_RX_RING_SIZE; id++) this.postRx(id);
    this.rx.pushRequests();

    this.port = await dom.evtchn.allocUnbound(be);
    dom.evtchn.on(this.port, () => { this.stats.eventsIn++; this.poll(); });
    await xs.transaction(async (t) => {
      await xenbusWriteKeys(xs, this.dir, {
        'tx-ring-ref': this.txRingRef, 'rx-ring-ref': this.rxRingRef, 'event-channel': this.port,
        'request-rx-copy': 1, 'feature-rx-notify': 1, 'feature-sg': 0,
      }, t);
      await xs.write(`${this.dir}/state`, String(XenbusState.Connected), t);
    });
    const st = await xenbusWaitState(xs, this.backend, (s) => s === XenbusState.Connected || s >= XenbusState.Closing, { timeoutMs });
    if (st !== XenbusState.Connected) throw new Error(`backend went ${XenbusState[st]}`);
    this.state = 'connected';
    this.beWatch = await xenbusWatchState(xs, this.backend, (s) => {
      if ((s === XenbusState.Closing || s === XenbusState.Closed || s === XenbusState.Unknown) && this.state === 'connected') void this.close();
    });
    this.poll();
  }

  private postRx(id: number): void {
    const s = this.rx.nextRequest();
    if (!s) return;
    writeRxRequest(new DataView(s.buffer, s.byteOffset, s.byteLength), { id, gref: this.rxGrefs[id]! });
    this.rx.produce();
  }

  private notify(): void {
    this.stats.notifiesOut++;
    this.dom.evtchn.notify(this.port);
  }

  /** NetDevice.transmit: the frame goes into a tx buffer and a request slot; pushed at the end of this turn. */
  transmit(frame: Uint8Array): boolean {
    if (this.state !== 'connected' || frame.length > PAGE_SIZE) return false;
    const id = this.txFree.pop();
    if (id === undefined) return false;
    const slot = this.tx.nextRequest();
    if (!slot) { this.txFree.push(id); return false; }
    this.page(2 + id).set(frame);
    writeTxRequest(new DataView(slot.buffer, slot.byteOffset, slot.byteLength),
      { gref: this.txGrefs[id]!, offset: 0, flags: 0, id, size: frame.length });
    this.tx.produce();
    this.stats.txPackets++;
    this.stats.txBytes += frame.length;
    if (!this.flushQueued) { this.flushQueued = true; queueMicrotask(() => this.flush()); }
    return true;
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.state !== 'connected') return;
    if (this.tx.pushRequestsAndCheckNotify()) this.notify();
  }

  txSpace(): Promise<void> {
    if (this.txFree.length > 0 || this.state !== 'connected') return Promise.resolve();
    return new Promise((r) => this.spaceWaiters.push(r));
  }

  /** The event handler: tx completions and received packets, until both rings are quiet. */
  private poll(): void {
    if (this.state !== 'connected') return;
    let more = true;
    while (more) {
      // tx: completed requests give their buffers back.
      const t = this.tx.takeResponses(4);
      if (t.overflow) { this.log(`${this.name}: back end's tx rsp_prod ran ahead; closing`); void this.close(); return; }
      for (const r of t.responses) {
        const rsp = readTxResponse(new DataView(r.buffer, r.byteOffset, r.byteLength));
        // NETIF_RSP_NULL: the slot of an extra info (we send none); its id means nothing.
        if (rsp.status === NETIF_RSP_NULL || rsp.id >= NET_TX_RING_SIZE || this.txFree.includes(rsp.id)) continue;
        if (rsp.status !== NETIF_RSP_OKAY) this.stats.txDropped++;
        this.txFree.push(rsp.id);
      }
      if (t.responses.length && this.spaceWaiters.length) for (const w of this.spaceWaiters.splice(0)) w();
      // rx: each response is a packet in the buffer it names; the buffer is posted again.
      const x = this.rx.takeResponses();
      if (x.overflow) { this.log(`${this.name}: back end's rx rsp_prod ran ahead; closing`); void this.close(); return; }
      for (const r of x.responses) {
        const rsp = readRxResponse(new DataView(r.buffer, r.byteOffset, r.byteLength));
        if (rsp.id >= NET_RX_RING_SIZE) continue;
        if (rsp.status > 0 && rsp.offset + rsp.status <= PAGE_SIZE) {
          this.stats.rxPackets++;
          this.stats.rxBytes += rsp.status;
          try { this.receive(this.page(2 + NET_TX_RING_SIZE + rsp.id).subarray(rsp.offset, rsp.offset + rsp.status)); } catch { /* the stack's problem */ }
        } else this.stats.rxDropped++;
        this.postRx(rsp.id);
      }
      if (x.responses.length && this.rx.pushRequestsAndCheckNotify()) this.notify();
      if (this.state !== 'connected') return;
      more = this.tx.finalCheckForResponses() || this.rx.finalCheckForResponses();
    }
  }

  /** The back end is closing (network-detach) or we are going away. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    for (const w of this.spaceWaiters.splice(0)) w();
    if (this.port > 0) { this.dom.evtchn.off(this.port); await this.dom.evtchn.close(this.port).catch(() => undefined); }
    await this.beWatch?.close();
    await xenbusSwitchState(this.xs, this.dir, XenbusState.Closed).catch(() => undefined);
    for (const h of this.closeHandlers) h();
    if (wasConnected) this.log(`${this.name}: disconnected from ${this.backend}`);
    // The back end unmaps the rings before going Closed; grants end once it has.
    void this.endGrants();
  }

  private async endGrants(): Promise<void> {
    const refs = [this.txRingRef, this.rxRingRef, ...this.txGrefs, ...this.rxGrefs].filter((r) => r >= 0);
    for (let i = 0; i < 100 && refs.length; i++) {
      for (let j = refs.length - 1; j >= 0; j--) if (this.dom.gnttab.endAccess(refs[j]!)) refs.splice(j, 1);
      if (refs.length) await new Promise((r) => setTimeout(r, 50));
    }
    if (refs.length === 0 && this.base >= 0) spareRuns.push(this.base);
  }
}

/** Finds vifs under device/vif, at boot and on hot-plug; tells `onDevice` about each connected one. */
export async function watchVifs(dom: XenDomain, xs: XsClient, balloon: PageReserve, log: (m: string) => void,
                                onDevice: (nf: NetFront) => void): Promise<XenbusWatch> {
  const known = new Map<number, NetFront>();
  const home = `/local/domain/${dom.domid}/device/vif`;
  return xenbusWatch(xs, home, async () => {
    const ids = (await xs.directory(home).catch(() => [] as string[])).filter((d) => /^\d+$/.test(d)).map(Number);
    for (const id of ids) {
      const cur = known.get(id);
      if (cur && cur.state !== 'closed') continue;
      const st = await xs.tryRead(`${home}/${id}/state`).catch(() => null);
      // Only a device the toolstack just wrote (Initialising) is ours to set up.
      if (st !== String(XenbusState.Initialising)) continue;
      const nf = new NetFront(dom, xs, balloon, id, log);
      known.set(id, nf);
      // Connecting may take a while (waits for the back end): others go on meanwhile.
      void nf.connect().then(() => onDevice(nf), (e: Error) => log(`netfront: vif/${id}: ${e.message}`));
    }
    for (const [id, nf] of known) if (!ids.includes(id)) { known.delete(id); void nf.close(); }
  }, 'netfront');
}
