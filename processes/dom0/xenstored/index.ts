// xenstored: Xen's registry, speaking xs_wire byte for byte (docs/design.md §2,
// docs/misc/xenstore.txt). Runs inside Domain-0 in a virtual host, or alone
// with `xenemu xenstored --socket PATH`.
//
//   socket clients ──► SocketConnection ─┐
//                                        ├─► XenstoreCore (dispatch table)
//   guest rings ─────► RingConnection ───┘       │ Tree / Transaction / WatchTable
//                                                ▼
//                              commit(): log batch (persist.ts), then replies
import { createServer, type Server, type Socket } from 'node:net';
import { unlinkSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { XENSTORE_PAYLOAD_MAX, XSD_SOCKMSG_SIZE, XS_TYPE_NAMES, type XsdError } from '../../../shared/abi/io/xs_wire.js';
import { Tree, EMPTY, type XsValue } from './store.js';
import { WatchTable } from './watch.js';
import { Domains, type Quotas, type DomainInfo } from './domain.js';
import { XenstoreCore } from './core.js';
import { Connection, type ConnectionHost, type Frame } from './connection.js';
import { SocketConnection, directIo } from './socket_connection.js';
import { RingConnection } from './ring_connection.js';
import { Persistence, type LogRecord, type Snapshot } from './persist.js';
import { ownerPerms, intern, parsePerms, permsKey } from './permissions.js';
import { parentOf, childPath } from './path.js';
import { runControl } from './control.js';
import { EAGAIN, frameSpec, spinRecv } from '../../../shared/sockio.js';

/** How the host lets xenstored talk to a guest's event channel. */
export interface XsEventChannel {
  /**
   * Binds to the guest's port (EVTCHNOP_bind_interdomain); onEvent runs when
   * the guest notifies. notify() raises the guest's side.
   */
  bind(domid: number, remotePort: number, onEvent: () => void): { notify(): void; close(): void };
}

export interface XenstoredOptions {
  /** Unix socket path (what clients find in XENSTORED_PATH). */
  socketPath: string;
  /** Where the tree survives restarts. */
  stateDir: string;
  quotas?: Partial<Quotas>;
  log?: (msg: string) => void;
  /** Maps a guest's xenstore ring page given at INTRODUCE. */
  mapRing?: (domid: number, mfn: number) => Uint8Array;
  /** Event channels; without it, introduced rings are polled every pollMs. */
  evtchn?: XsEventChannel;
  pollMs?: number;
  /** Every message in and out goes to this file (Xen's --trace-file). */
  traceFile?: string;
  /** Log size that triggers a snapshot (default 8 MiB). */
  compactBytes?: number;
}

/** Busy-poll window after a reply (ms); XENSTORED_BUSY_POLL_US=0 turns it off. */
const BUSY_POLL_MS = Number(process.env.XENSTORED_BUSY_POLL_US ?? '50') / 1000;
/** Socket I/O on the descriptors during the busy poll; XENSTORED_DIRECT_IO=0 leaves all of it to libuv. */
const DIRECT_IO = process.env.XENSTORED_DIRECT_IO !== '0';
/**
 * xs_wire framing for the busy poll's reads (io/xs_wire.h: struct
 * xsd_sockmsg, `len` at offset 12), and how long it waits for the rest of a
 * frame it has the start of (us): beyond that, libuv delivers the rest.
 */
const XS_FRAMES = frameSpec(XSD_SOCKMSG_SIZE, 12, XENSTORE_PAYLOAD_MAX, 50);

/**
 * The socket clients the busy poll waits on, and their descriptors for
 * spinRecv, rebuilt only when the set changes (not once per request).
 */
class HotClients {
  private readonly set = new Set<SocketConnection>();
  conns: SocketConnection[] = [];
  fds = new Int32Array(0);
  private stale = false;

  get size(): number { return this.set.size; }
  add(c: SocketConnection): void { if (!this.set.has(c)) { this.set.add(c); this.stale = true; } }
  delete(c: SocketConnection): void { if (this.set.delete(c)) this.stale = true; }
  clear(): void { if (this.set.size) { this.set.clear(); this.stale = true; } }

  /** Drops the clients that may not be read directly now; `conns` and `fds` are the rest. */
  keepReadable(): void {
    for (const c of this.set) if (!c.directReadable) this.delete(c);
    if (!this.stale) return;
    this.conns = [...this.set];
    this.fds = Int32Array.from(this.conns, (c) => c.fd);
    this.stale = false;
  }
}

interface RingDomain {
  info: DomainInfo;
  conn: RingConnection;
  channel: { notify(): void; close(): void } | undefined;
}

/** Xen's trace format, roughly: direction, connection, type, ids, payload. */
function traceTo(file: string): NonNullable<ConnectionHost['trace']> {
  const fd = openSync(file, 'a');
  return (conn, dir, msg) => {
    const type = msg.readUInt32LE(0);
    const body = msg.subarray(16).toString('latin1').replace(/\0/g, ' ').replace(/[^\x20-\x7e]/g, '.');
    writeSync(fd, `${new Date().toISOString()} ${dir} ${conn.describe()} ${XS_TYPE_NAMES[type] ?? type} req ${msg.readUInt32LE(4)} tx ${msg.readUInt32LE(8)} (${body.slice(0, 200)})\n`);
  };
}

export class Xenstored implements ConnectionHost {
  readonly tree: Tree;
  readonly watches: WatchTable;
  readonly domains: Domains;
  readonly core: XenstoreCore;
  private readonly opts: XenstoredOptions;
  private readonly persist: Persistence;
  private server: Server | undefined;
  private readonly sockets = new Set<SocketConnection>();
  private readonly rings = new Map<number, RingDomain>();
  private readonly dirty = new Set<Connection>();
  private pending: LogRecord[] = [];
  private poller: NodeJS.Timeout | undefined;
  private pollUntil = 0;
  private polling = false;
  /** Socket clients answered since the busy poll began: the ones whose next request it waits for. */
  private readonly hot = new HotClients();
  private readonly scratch = Buffer.allocUnsafe(64 << 10);
  private readonly spinAt = new Int32Array(1);
  readonly log: (msg: string) => void;
  readonly trace: ConnectionHost['trace'];

  private constructor(opts: XenstoredOptions) {
    this.opts = opts;
    this.log = opts.log ?? ((m) => process.stderr.write(`xenstored: ${m}\n`));
    this.domains = new Domains(opts.quotas);
    this.tree = new Tree(ownerPerms(0));
    this.watches = new WatchTable((path) => this.tree.get(path)?.perms);
    this.tree.onOwner = (owner, d) => this.domains.countOwner(owner, d);
    this.core = new XenstoreCore(this.tree, this.watches, this.domains, {
      introduce: (domid, mfn, port) => this.introduce(domid, mfn, port, true),
      release: (domid) => this.release(domid),
      setTarget: (domid, target) => this.setTarget(domid, target),
      control: (args) => runControl(this, args),
      specialPerms: (name, perms) => this.pending.push({ t: 'sp', p: name, perms: permsKey(perms) }),
    });
    this.persist = new Persistence(opts.stateDir, opts.compactBytes);
    if (opts.traceFile) this.trace = traceTo(opts.traceFile);
  }

  static async start(opts: XenstoredOptions): Promise<Xenstored> {
    const xs = new Xenstored(opts);
    xs.restore();
    await xs.listen();
    return xs;
  }

  // ---- ConnectionHost ------------------------------------------------------

  handle(conn: Connection, frame: Frame): void {
    try {
      this.core.handle(conn, frame);
    } catch (e) {
      this.log(`internal error handling ${frame.type} from ${conn.describe()}: ${(e as Error).stack}`);
    }
  }

  targetOf(domid: number): number | undefined {
    return this.domains.targetOf(domid);
  }

  markDirty(conn: Connection): void {
    this.dirty.add(conn);
  }

  /** Durability first, then every queued reply and event goes out. */
  commit(): void {
    const effects = this.tree.takeEffects();
    if (effects.length || this.pending.length) {
      const batch: LogRecord[] = this.pending.length ? [...this.pending, ...effects] : effects;
      this.pending = [];
      this.persist.append(batch);
      if (this.persist.wantsCompaction) this.persist.compact(this.snapshot());
    }
    if (this.dirty.size) {
      for (const c of this.dirty) {
        c.flush();
        if (c instanceof SocketConnection && c.fd >= 0 && !c.closed) this.hot.add(c);
      }
      this.dirty.clear();
      this.busyPoll();
    }
  }

  /**
   * Adaptive busy polling. A libxenstore client keeps one request in flight:
   * the next one arrives tens of microseconds after our reply. If this
   * process's CPU went idle meanwhile, waking it again (another CPU's IPI, a
   * halted vCPU on a VM) costs more than serving the request. So after
   * replying, the daemon keeps waiting without sleeping (pollStep) for a
   * short window that every reply extends; an idle daemon stops at once
   * after it.
   *
   * Measured (docs/benchmarks.md): with client and daemon on different CPUs
   * write+read pairs go from ~11,600/s to 17,000-21,700/s. With the
   * setImmediate polling of old, a longer window delayed a client on the
   * same CPU, and 20 us was the best of 10/20/40/50/100 us; since the wait
   * is a native spin that yields the CPU (serveDirect), a longer window
   * costs that client nothing (31,000-32,000 pairs/s at 20 and 50 us), and
   * 50 us catches the watch client's next request, which comes after two
   * wake-ups of its own (reader thread, then caller): watch round trips
   * 25,900-29,800/s at 20 us, 28,400-31,100/s at 50 and 100 us, unpinned;
   * pairs and transactions the same. What it costs is up to 50 us of CPU
   * after the last reply to a client that then goes quiet.
   * (Detecting the placement from whether requests land inside the window
   * did not work: the client's own wake-up often lands just after it.)
   */
  private busyPoll(): void {
    if (BUSY_POLL_MS <= 0) return;
    this.pollUntil = performance.now() + BUSY_POLL_MS;
    if (this.polling) return;
    this.polling = true;
    setImmediate(this.pollStep);
  }

  /**
   * Waits up to `budgetUs` for a request from one of the hot clients (just
   * answered), reading it with the system call that notices it, then
   * handles it and answers.
   */
  private serveDirect(budgetUs: number): void {
    const scratch = this.scratch;
    const at = this.spinAt;
    const n = spinRecv(this.hot.fds, scratch, budgetUs, true, at, XS_FRAMES);
    if (n === EAGAIN) return;
    const c = this.hot.conns[at[0]!]!;
    if (n <= 0) {
      // End of file or an error, now consumed here: libuv's read gets end
      // of file in turn and closes the connection.
      directIo.ends++;
      this.hot.delete(c);
      return;
    }
    // libxenstore writes a request in pieces (the header, then each part of
    // the payload): the spin reads on until the frame is whole.
    c.feedDirect(scratch, n);
    this.commit();
  }

  /**
   * One turn of the busy poll. With socket clients just answered, the wait
   * for their next request is a spin in native code on their descriptors
   * (shared/sockio.ts), and the request is read, handled and answered on the
   * descriptor without the event loop's machinery: through libuv a request
   * cost a loop turn, an epoll_wait and the stream's read and write paths,
   * and the daemon answered a client on another CPU in ~25 us where a
   * zero-work C server answers in ~16. The spin yields the CPU between
   * rounds (sched_yield), so a client on this same CPU runs at once instead
   * of waiting for the window to end: the old setImmediate polling cost that
   * placement a fifth of its pairs. Then back to the event loop for one
   * turn, so that guests' rings and other clients are served in between.
   */
  private readonly pollStep = (): void => {
    const leftUs = (this.pollUntil - performance.now()) * 1000;
    if (leftUs <= 0) {
      this.polling = false;
      this.hot.clear();
      return;
    }
    if (DIRECT_IO && this.hot.size) {
      this.hot.keepReadable();
      if (this.hot.size) this.serveDirect(leftUs);
    }
    setImmediate(this.pollStep);
  };

  // ---- socket transport ----------------------------------------------------

  private listen(): Promise<void> {
    const path = this.opts.socketPath;
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) unlinkSync(path); // a stale socket from a killed daemon
    const server = createServer((sock: Socket) => {
      const conn = new SocketConnection(this, sock, (c) => this.connectionGone(c), DIRECT_IO);
      this.sockets.add(conn);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => { server.off('error', reject); resolve(); });
    });
  }

  private connectionGone(c: Connection): void {
    if (c instanceof SocketConnection) { this.sockets.delete(c); this.hot.delete(c); }
    this.core.dropConnectionState(c, true);
    this.dirty.delete(c);
  }

  // ---- domains -------------------------------------------------------------

  private introduce(domid: number, mfn: number, port: number, record: boolean): XsdError | undefined {
    const existing = this.rings.get(domid);
    if (existing) {
      if (existing.info.mfn !== mfn) return 'EINVAL';
      // Re-introduction recreates the event channel (Xen: after resume).
      existing.channel?.close();
      existing.info.port = port;
      existing.channel = this.bindChannel(domid, port);
      if (record) this.pending.push({ t: 'intro', domid, mfn, port });
      return undefined;
    }
    if (!this.opts.mapRing) return 'EINVAL';
    let page: Uint8Array;
    try {
      page = this.opts.mapRing(domid, mfn);
    } catch (e) {
      this.log(`introduce ${domid}: cannot map ring page ${mfn}: ${(e as Error).message}`);
      return 'EINVAL';
    }
    const info: DomainInfo = { domid, mfn, port, target: undefined, shutdown: false };
    let channel: RingDomain['channel'];
    const conn = new RingConnection(this, domid, page, () => channel?.notify(), this.domains.quotas.outstanding, record);
    channel = this.bindChannel(domid, port);
    this.rings.set(domid, { info, conn, channel });
    this.domains.introduced.set(domid, info);
    if (record) {
      this.pending.push({ t: 'intro', domid, mfn, port });
      this.watches.fireSpecial('@introduceDomain');
    }
    this.updatePoller();
    conn.kick(); // requests may be waiting already (e.g. after a restart)
    return undefined;
  }

  private bindChannel(domid: number, port: number): RingDomain['channel'] {
    if (!this.opts.evtchn) return undefined;
    return this.opts.evtchn.bind(domid, port, () => this.kick(domid));
  }

  private release(domid: number): XsdError | undefined {
    const d = this.rings.get(domid);
    if (!d) return 'ENOENT';
    d.channel?.close();
    d.conn.close();
    this.connectionGone(d.conn);
    this.rings.delete(domid);
    this.domains.introduced.delete(domid);
    this.pending.push({ t: 'rel', domid });
    this.watches.fireSpecial('@releaseDomain');
    this.updatePoller();
    return undefined;
  }

  /** Domain-0 counts as a connected domain, as in Xen (where it has its ring); it needs no target. */
  private setTarget(domid: number, target: number): XsdError | undefined {
    const d = this.domains.introduced.get(domid);
    if ((!d && domid !== 0) || (target !== 0 && !this.domains.introduced.has(target))) return 'ENOENT';
    if (!d) return undefined;
    d.target = target;
    this.pending.push({ t: 'tgt', domid, target });
    return undefined;
  }

  /** The guest's event channel fired (or a poll): serve its ring. */
  kick(domid: number): void {
    const d = this.rings.get(domid);
    if (!d) return;
    d.conn.kick();
    this.commit();
  }

  private updatePoller(): void {
    const want = !this.opts.evtchn && this.rings.size > 0;
    if (want && !this.poller) {
      this.poller = setInterval(() => { for (const id of this.rings.keys()) this.kick(id); }, this.opts.pollMs ?? 2);
      this.poller.unref();
    } else if (!want && this.poller) {
      clearInterval(this.poller);
      this.poller = undefined;
    }
  }

  // ---- durability ----------------------------------------------------------

  private restore(): void {
    const { snapshot, batches } = this.persist.load();
    this.tree.recordEffects = false;
    const doms = new Map<number, { mfn: number; port: number; target?: number }>();
    if (snapshot) {
      for (const [p, v, perms] of snapshot.nodes) this.restoreNode(p, v, perms);
      for (const d of snapshot.domains) doms.set(d.domid, { ...d });
      for (const [name, perms] of snapshot.special ?? []) this.restoreSpecial(name, perms);
    }
    for (const batch of batches) {
      for (const r of batch) {
        switch (r.t) {
          case 'n': this.restoreNode(r.p, r.v, r.perms); break;
          case 'd': if (this.tree.get(r.p) && r.p !== '/') this.tree.removeSubtree(r.p); break;
          case 'intro': doms.set(r.domid, { ...doms.get(r.domid), mfn: r.mfn, port: r.port }); break;
          case 'rel': doms.delete(r.domid); break;
          case 'tgt': { const d = doms.get(r.domid); if (d) d.target = r.target; break; }
          case 'sp': this.restoreSpecial(r.p, r.perms); break;
        }
      }
    }
    this.tree.recordEffects = true;
    // Xen's setup_structure: /tool/xenstored, Domain-0's, from the start.
    for (const p of ['/tool', '/tool/xenstored']) if (!this.tree.get(p)) this.tree.create(p, EMPTY, ownerPerms(0));
    for (const [domid, d] of doms) {
      const err = this.introduce(domid, d.mfn, d.port, false);
      if (err) { this.log(`restore: domain ${domid} ring not mapped (${err}); dropped`); continue; }
      if (d.target !== undefined) this.domains.introduced.get(domid)!.target = d.target;
    }
    this.commit(); // replies to requests the guests queued while we were down
    if (snapshot || batches.length) this.log(`restored ${this.tree.size} nodes, ${this.rings.size} domains`);
  }

  private restoreSpecial(name: string, perms: string): void {
    const p = parsePerms(perms.split(','));
    if (p && this.watches.specialPerms.has(name)) this.watches.specialPerms.set(name, p);
  }

  private restoreNode(path: string, value: XsValue, permsStr: string): void {
    const perms = parsePerms(permsStr.split(',')) ?? ownerPerms(0);
    const n = this.tree.get(path);
    if (n) {
      if (n.perms !== perms) this.tree.setPerms(path, intern(perms));
      this.tree.setValue(path, value);
      return;
    }
    // Parents always come first in the log; be lenient if one does not.
    const missing: string[] = [];
    for (let p = parentOf(path); !this.tree.get(p); p = parentOf(p)) missing.push(p);
    for (let i = missing.length - 1; i >= 0; i--) this.tree.create(missing[i]!, EMPTY, perms);
    this.tree.create(path, value, perms);
  }

  snapshot(): Snapshot {
    const nodes: Snapshot['nodes'] = [];
    const stack = ['/'];
    while (stack.length) {
      const p = stack.pop()!;
      const n = this.tree.get(p)!;
      nodes.push([p, n.value, permsKey(n.perms)]);
      if (n.children) for (const c of n.children) stack.push(childPath(p, c));
    }
    const domains = [...this.domains.introduced.values()].map((d) => ({
      domid: d.domid, mfn: d.mfn, port: d.port, ...(d.target !== undefined ? { target: d.target } : {}),
    }));
    const special = [...this.watches.specialPerms].map(([name, p]): [string, string] => [name, permsKey(p)]);
    return { version: 1, nodes, domains, special };
  }

  // ---- introspection and shutdown -----------------------------------------

  /** What an introduced domain's ring connection holds, or undefined. */
  connectionUse(domid: number): { watches: number; transactions: number; outstanding: number } | undefined {
    const d = this.rings.get(domid);
    if (!d) return undefined;
    return { watches: d.conn.watchCount, transactions: d.conn.transactions.size, outstanding: d.conn.pendingOut };
  }

  stats(): Record<string, number> {
    return {
      nodes: this.tree.size,
      watches: this.watches.size,
      transactions: this.core.transactionCount,
      sockets: this.sockets.size,
      'held-sockets': [...this.sockets].filter((s) => s.held).length,
      domains: this.rings.size,
      'direct-reads': directIo.reads,
      'direct-partial': directIo.partial,
      'direct-writes': directIo.writes,
      'direct-ends': directIo.ends,
    };
  }

  async close(): Promise<void> {
    this.commit();
    if (this.poller) clearInterval(this.poller);
    for (const s of [...this.sockets]) s.close();
    for (const d of this.rings.values()) { d.channel?.close(); d.conn.close(); }
    this.rings.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    try { unlinkSync(this.opts.socketPath); } catch { /* already gone */ }
    this.persist.close();
  }
}
