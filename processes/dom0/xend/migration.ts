// Migration between hosts (docs/saverestore.md): a PV guest's pages go to
// another host's xend over ZeroMQ TCP, while it runs (pre-copy, Clark et
// al., NSDI 2005) or once stopped, then the guest suspends, the pages it
// dirtied meanwhile follow, the target restores it, and only then is it
// destroyed here.
//
//   source (DEALER)                              target (ROUTER on --listen ADDR:PORT)
//     begin {name, memory, maxPfns, config} ───►  name free? memory? the domain made and built but
//                                                 for its pages (NAME--incoming) -> ok
//     pages {round} + pfns + data ... ─────────►  straight into its memory
//     (guest suspends: control/shutdown, SCHEDOP_shutdown(suspend))
//     pages {final} ───────────────────────────►
//     commit {config} ─────────────────────────►  finished on its pages, paused
//                      ◄───────────────────────── ok {domid}
//     (the source's domain is renamed NAME--migratedaway)
//     go {id} ─────────────────────────────────►  unpause
//                      ◄───────────────────────── ok
//     destroy the source's domain
//
// Which pages changed since they were sent: a shadow of what the target
// holds is kept, and a round compares with it the pages the log-dirty
// reports (DirtyLog: write-protection of the guest's mapping, the
// hypervisor's log of grant writes, log_dirty.ts), or every populated page
// without one (a page rewritten with its old bytes is rightly not sent
// again).
//
// Exactly one host runs the guest afterwards, whatever fails (Xen's
// "migration-ready"/"go" handshake of xl's migrate):
//
// - Until `go` the target holds at most a paused copy. A target that does
//   not answer (killed, unreachable, refusing, its restore failing) leaves
//   the guest here: before the suspend it never stopped; after it, it is
//   resumed in place (XEN_DOMCTL_resumedomain). The target destroys a paused
//   copy whose `go` does not come within GO_WAIT_MS, and drops a session
//   whose source went quiet or whose connection broke.
// - A `go` without an answer is the one uncertain case: the source asks the
//   target what became of migration `id` (status) until STATUS_WAIT_MS
//   runs out. Running there: the source's copy is destroyed. Still paused
//   there: the source aborts it and, once the target confirms, resumes its
//   own. A target whose port refuses connections has lost its host (xend
//   lives and dies with it), so nothing runs there: the source resumes. No
//   answer at all (a cut link): the guest stays suspended here as
//   NAME--migratedaway, as xl leaves it, and the error says so.
//
// Both sides send ZMTP heartbeats, so a peer that died or a link that was
// cut breaks the connection within HEARTBEAT_TIMEOUT_MS instead of a reply
// timeout.
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { pack, unpack } from 'msgpackr';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import type { PoolGuest } from '../../../shared/toolstack/xend_api.js';
import type { HvmSaved } from '../toolstack/save_image.js';

/** Pages per message. */
const BATCH = 256;
/** How long a reply may take (the commit includes the target's restore). */
export const MIGRATION_REPLY_TIMEOUT_MS = 30_000;
/** How long the target has to answer `begin`: a host that is not listening is found out fast. */
const BEGIN_TIMEOUT_MS = 5_000;
/** A target session with no message for this long is dropped. */
const SESSION_IDLE_MS = 15_000;
/** How long the target keeps a restored, paused copy waiting for `go`. */
export const GO_WAIT_MS = 15_000;
/** How long the source asks a target that did not answer `go` what became of the guest. */
export const STATUS_WAIT_MS = 20_000;
/** How long the target remembers what became of a migration, for a source's status question. */
const OUTCOME_KEEP_MS = 10 * 60_000;
/** ZMTP heartbeats: a peer silent this long is gone. */
const HEARTBEAT_IVL_MS = 500;
const HEARTBEAT_TIMEOUT_MS = 3_000;
const HEARTBEATS = { heartbeatInterval: HEARTBEAT_IVL_MS, heartbeatTimeout: HEARTBEAT_TIMEOUT_MS, heartbeatTimeToLive: HEARTBEAT_TIMEOUT_MS };
/** Pre-copy stops when a round finds fewer dirty pages than this, or after MAX_ROUNDS. */
const DIRTY_STOP = 64;
const MAX_ROUNDS = 12;

export type MigrationMsg =
  /** `host`: the source's name, which the target's pool check leaves out (the guest runs there until the commit). */
  | { type: 'begin'; id: string; name: string; memory: number; maxPfns: number; config: DomainConfig; host?: string }
  | { type: 'pool' }
  /** Two more frames follow, raw: the pfns (u32, little-endian) and their pages, so that bulk data is never re-encoded. */
  | { type: 'pages'; round: number }
  /** `hvm`: an HVM guest's vCPU context and device model state (msgpack binaries). */
  | { type: 'commit'; config: DomainConfig; hvm?: HvmSaved }
  | { type: 'go'; id: string }
  | { type: 'status'; id: string }
  | { type: 'abort'; id?: string };
/**
 * What became of a migration on the target: pages coming in, built
 * and paused waiting for `go`, running, or gone (refused, aborted, timed
 * out, or never heard of).
 */
export type MigrationState = 'staging' | 'ready' | 'running' | 'gone';
export type MigrationReply = { ok: true; domid?: number; state?: MigrationState; steps?: Record<string, number> } | { ok: false; error: string };

import type { MigrationProgress, MigrationSummary } from '../../../shared/toolstack/xend_api.js';
export type { MigrationProgress, MigrationSummary };
export type MigrationRound = MigrationSummary['rounds'][number];

/**
 * What the source knows of the guest's pages beyond their bytes
 * (shared/dirty.ts): which hold data at all, and, with write-protection of
 * the domain process's mapping, which it wrote since the last look.
 */
export interface DirtyLog {
  /** [first, end) pfn runs holding data; null: unknown, every pfn. */
  populated(): Array<[number, number]> | null;
  /**
   * XEN_DOMCTL_SHADOW_OP_CLEAN: the pfns written since the last call; null
   * without write-protection. `final` (the guest is stopped): every page
   * anything may have written, so that the last round need not compare all
   * of them; a log that cannot promise it has `complete` false.
   */
  clean: ((final?: boolean) => Promise<ArrayLike<number>>) | null;
  /** clean(true) covers every writer of the guest's pages (shared/dirty.ts, log_dirty.ts). */
  complete?: boolean;
}

/** Pages compared at once: a run of unchanged pages costs one comparison. */
const RUN_PAGES = 16;

/** The source's side of one migration. */
export class MigrationSender {
  private readonly sock: zmq.Dealer;
  private readonly maxPfns: number;
  /**
   * What the target holds of each page: the bytes last sent (zeros before
   * any, as a new domain's pages are). A page that differs from its shadow
   * is dirty; comparing is native (Buffer.compare), a fraction of the cost
   * of hashing every page in JavaScript.
   */
  private readonly shadow: Buffer;
  private readonly live: Buffer;
  readonly rounds: MigrationRound[] = [];
  sentBytes = 0;
  phase: MigrationProgress['phase'] = 'precopy';
  private scannedPfns = 0;
  /** Names this migration to the target, for `go`, `status` and `abort`. */
  readonly id = randomBytes(8).toString('hex');
  /** Set once the connection to the target broke after it was made: every wait fails at once. */
  private broken: Error | null = null;
  private readonly brokenWaiters = new Set<(e: Error) => void>();

  /** When each round began. */
  private readonly starts: number[] = [];
  /** The pfns sent at least once. */
  private readonly sent: Uint8Array;

  constructor(readonly target: string, private readonly mem: Uint8Array, private readonly log: DirtyLog = { populated: () => null, clean: null }) {
    this.sock = new zmq.Dealer({ linger: 0, sendTimeout: MIGRATION_REPLY_TIMEOUT_MS, receiveTimeout: MIGRATION_REPLY_TIMEOUT_MS, sendHighWaterMark: 64, ...HEARTBEATS });
    this.sock.events.on('disconnect', () => this.lost(new Error(`the connection to ${target} broke`)));
    this.sock.connect(`tcp://${target}`);
    this.maxPfns = mem.byteLength / PAGE_SIZE;
    this.shadow = Buffer.alloc(mem.byteLength);
    this.sent = new Uint8Array(this.maxPfns);
    this.live = Buffer.from(mem.buffer, mem.byteOffset, mem.byteLength);
  }

  private lost(e: Error): void {
    if (this.broken) return;
    this.broken = e;
    for (const w of this.brokenWaiters) w(e);
    this.brokenWaiters.clear();
  }

  /** `p`, or the broken connection's error, whichever comes first. */
  private unlessBroken<T>(p: Promise<T>): Promise<T> {
    if (this.broken) { p.catch(() => undefined); return Promise.reject(this.broken); }
    return new Promise<T>((res, rej) => {
      const w = (e: Error) => rej(e);
      this.brokenWaiters.add(w);
      p.then((v) => { this.brokenWaiters.delete(w); res(v); }, (e) => { this.brokenWaiters.delete(w); rej(e); });
    });
  }

  private async call(m: MigrationMsg): Promise<MigrationReply> {
    await this.unlessBroken(this.sock.send(pack(m)));
    const [reply] = await this.unlessBroken(this.sock.receive());
    return unpack(reply!) as MigrationReply;
  }

  /** The target admits the guest and creates its domain, empty and paused, to take the pages as they come. */
  async begin(config: DomainConfig, host?: string): Promise<void> {
    this.sock.receiveTimeout = BEGIN_TIMEOUT_MS;
    let r: MigrationReply;
    try {
      r = await this.call({ type: 'begin', id: this.id, name: config.name, memory: config.memory, maxPfns: this.maxPfns, config, host });
    } catch (e) {
      throw new Error(`no answer from ${this.target} in ${BEGIN_TIMEOUT_MS / 1000} s (is a xenemu host listening there? xenemu up --listen): ${(e as Error).message}`);
    } finally {
      this.sock.receiveTimeout = MIGRATION_REPLY_TIMEOUT_MS;
    }
    if (!r.ok) throw new Error(`the target refused: ${r.error}`);
  }

  /**
   * Sends every page whose bytes differ from the copy the target has;
   * returns how many. `how`: 'all' compares every page that holds data
   * (log.populated()) or was sent before; 'dirty' only those the log-dirty
   * reports written since the last round (log.clean()), a page rewritten
   * with the bytes it had still not sent; 'final', with the guest stopped:
   * those of log.clean(true) when the log is complete, else 'all'.
   */
  async round(round: number, how: 'all' | 'dirty' | 'final' = 'all'): Promise<number> {
    if (how === 'final') how = this.log.clean && this.log.complete ? 'final' : 'all';
    const t0 = performance.now();
    this.starts.push(t0);
    let pfns: number[] = [];
    let total = 0;
    let bytes = 0;
    let scanMs = 0;
    const flush = async () => {
      if (pfns.length === 0) return;
      const data = Buffer.allocUnsafe(pfns.length * PAGE_SIZE);
      pfns.forEach((pfn, i) => {
        // The bytes sent, not the page, which may change meanwhile: they become its shadow.
        this.live.copy(data, i * PAGE_SIZE, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
        data.copy(this.shadow, pfn * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
        this.sent[pfn] = 1;
      });
      const idx = Buffer.from(new Uint32Array(pfns).buffer);
      const ts = performance.now();
      await this.unlessBroken(this.sock.send([pack({ type: 'pages', round } satisfies MigrationMsg), idx, data]));
      scanMs -= performance.now() - ts;
      bytes += data.byteLength;
      pfns = [];
    };
    const same = (from: number, pages: number) =>
      this.live.compare(this.shadow, from * PAGE_SIZE, (from + pages) * PAGE_SIZE, from * PAGE_SIZE, (from + pages) * PAGE_SIZE) === 0;
    const consider = async (pfn: number) => {
      if (same(pfn, 1)) return;
      pfns.push(pfn);
      total++;
      if (pfns.length === BATCH) await flush();
    };
    const clean = this.log.clean;
    if (how !== 'all' && clean) {
      // A copy: the next clean() reuses the array.
      const written = Array.from(await clean(how === 'final'));
      for (let i = 0; i < written.length; i++) {
        this.scannedPfns = Math.floor((i / written.length) * this.maxPfns);
        if (written[i]! < this.maxPfns) await consider(written[i]!);
      }
    } else {
      // The pfns to compare: those holding data, and those sent before (a
      // frame given back since holds zeros, which the target must get).
      const want = new Uint8Array(this.sent);
      const runs = this.log.populated();
      if (runs) for (const [a, b] of runs) want.fill(1, a, Math.min(b, this.maxPfns));
      else want.fill(1);
      // Only those are read: reading a hole through the mapping would populate it.
      for (let a = 0; a < this.maxPfns;) {
        if (!want[a]) { a++; continue; }
        let b = a;
        while (b < this.maxPfns && want[b]) b++;
        for (let run = a; run < b; run += RUN_PAGES) {
          this.scannedPfns = run;
          const n = Math.min(RUN_PAGES, b - run);
          if (same(run, n)) continue;
          for (let pfn = run; pfn < run + n; pfn++) await consider(pfn);
        }
        a = b;
      }
    }
    await flush();
    this.scannedPfns = this.maxPfns;
    this.sentBytes += bytes;
    const ms = performance.now() - t0;
    this.rounds.push({ round, pages: total, bytes, ms, scanMs: Math.max(0, ms + scanMs) });
    return total;
  }

  /** For xl migrate's progress bar. */
  progress(): MigrationProgress {
    const r = this.rounds;
    const last = r.at(-1);
    const sentMs = r.reduce((a, x) => a + x.ms, 0);
    const rate = sentMs > 0 ? this.sentBytes / sentMs : 0; // bytes per ms
    // What the last round found dirty was dirtied while the one before it was sent.
    // (With write-protection, from one round's scan to the next's: the time between their starts.)
    const window = r.length >= 2 ? this.starts.at(-1)! - this.starts.at(-2)! : 0;
    const dirty = window > 0 ? (last!.pages * PAGE_SIZE) / (window / 1000) : 0;
    return {
      phase: this.phase, round: r.length, scanned: this.maxPfns ? this.scannedPfns / this.maxPfns : 1, sentBytes: this.sentBytes,
      dirtyBytesPerSec: dirty, estDowntimeMs: last && rate > 0 ? (last.pages * PAGE_SIZE) / rate : 0,
    };
  }

  /**
   * Pre-copy while the guest runs: rounds until few pages are dirtied, or
   * no progress is made. A round that does not at least halve the one
   * before calls `throttle` (auto-converge: the guest's CPU cap is
   * lowered, so it dirties less during the next round); once it cannot
   * lower it further (false), a round that finds no fewer pages than the
   * one before ends the pre-copy.
   */
  async precopy(throttle?: () => Promise<boolean>): Promise<void> {
    let last = Infinity;
    let slower = !!throttle;
    for (let r = 0; r < MAX_ROUNDS; r++) {
      const n = await this.round(r, r > 0 && this.log.clean ? 'dirty' : 'all');
      if (r > 0 && n < DIRTY_STOP) return;
      if (r > 0 && slower && n * 2 > last) slower = await throttle!();
      if (r > 0 && !slower && n >= last) return;
      last = n;
    }
  }

  /** The target restores the guest, paused; its domid there and the ms of each step of its commit. */
  async commit(config: DomainConfig, hvm?: HvmSaved): Promise<{ domid: number; steps: Record<string, number> }> {
    const r = await this.call({ type: 'commit', config, ...(hvm ? { hvm } : {}) });
    if (!r.ok) throw new Error(r.error);
    return { domid: r.domid ?? -1, steps: r.steps ?? {} };
  }

  /** The target unpauses the guest. Throws when no answer came: then only status() can tell what happened. */
  async go(timeoutMs: number): Promise<void> {
    this.sock.receiveTimeout = timeoutMs;
    const r = await this.call({ type: 'go', id: this.id });
    if (!r.ok) throw new MigrationRefused(r.error);
  }

  /**
   * After a `go` without an answer: what became of the guest on the target,
   * asked on a new connection until `waitMs` runs out. A target still
   * holding it paused is told to abort, and 'gone' is returned once it
   * confirms. 'refused': nobody listens there any more (the target's host
   * is down). undefined: no answer at all.
   */
  async settle(waitMs: number): Promise<MigrationState | 'refused' | undefined> {
    const deadline = Date.now() + waitMs;
    let refusals = 0;
    while (Date.now() < deadline) {
      const sock = new zmq.Dealer({ linger: 0, receiveTimeout: 2_000, sendTimeout: 2_000, reconnectInterval: 200 });
      let connected = false;
      sock.events.on('connect', () => { connected = true; });
      sock.events.on('connect:retry', () => { refusals++; });
      sock.connect(`tcp://${this.target}`);
      try {
        await sock.send(pack({ type: 'status', id: this.id } satisfies MigrationMsg));
        let [raw] = await sock.receive();
        let r = unpack(raw!) as MigrationReply;
        if (r.ok && r.state === 'ready') {
          await sock.send(pack({ type: 'abort', id: this.id } satisfies MigrationMsg));
          [raw] = await sock.receive();
          r = unpack(raw!) as MigrationReply;
        }
        if (r.ok && r.state && r.state !== 'ready') return r.state;
      } catch {
        // No answer this time; a port that keeps refusing connections has no xend behind it.
        if (!connected && refusals >= 3) return 'refused';
      } finally {
        sock.close();
      }
    }
    return undefined;
  }

  /** Best effort: a broken connection or a send still in progress has the target drop the session on its own. */
  abort(): void {
    if (this.broken) return;
    try {
      void this.sock.send(pack({ type: 'abort', id: this.id } satisfies MigrationMsg)).catch(() => undefined);
    } catch { /* a send is still in progress */ }
  }

  close(): void { this.sock.close(); }
}

/** The target answered `go` with a refusal (its unpause failed): nothing runs there. */
export class MigrationRefused extends Error {}

/** A migration coming in: the domain made at `begin`, its memory written as pages come. */
interface Session { id: string; name: string; maxPfns: number; domid: number; memory: Uint8Array; timer: NodeJS.Timeout }

/** What the target did with a migration, kept for OUTCOME_KEEP_MS after its last change. */
interface Outcome { state: MigrationState; name: string; domid: number; timer: NodeJS.Timeout }

export interface ReceiverHooks {
  /**
   * Admits a guest from host `from` (its name free here and in the pool
   * but there, its memory here) and creates its
   * domain, empty and paused, with `maxPfns` frames: its id and memory.
   * Throws with the reason for a refusal.
   */
  prepare(config: DomainConfig, maxPfns: number, from?: string): Promise<{ domid: number; memory: Uint8Array }>;
  /** This host's name and guests, for a pool peer (pool.ts). */
  pool(): Promise<{ host: string; guests: PoolGuest[] }>;
  /** Finishes the prepared domain on its pages, paused: its domid and each step's ms. Destroys it when that fails. */
  restore(config: DomainConfig, domid: number, hvm?: HvmSaved): Promise<{ domid: number; steps: Record<string, number> }>;
  unpause(domid: number): Promise<void>;
  destroy(domid: number): Promise<void>;
  log(m: string): void;
}

/**
 * Fault injection for the tests of the uncertain window (docs/saverestore.md):
 * XENEMU_FAULT_MIGRATE=hold-go:MS makes the target sit on a `go` that long
 * before it acts; =lose-go-answer makes it act on `go` and never answer.
 */
function migrateFault(): { holdGoMs: number; loseGoAnswer: boolean } {
  const f = process.env.XENEMU_FAULT_MIGRATE ?? '';
  const hold = /^hold-go:(\d+)$/.exec(f);
  return { holdGoMs: hold ? Number(hold[1]) : 0, loseGoAnswer: f === 'lose-go-answer' };
}

/** The target's side: xend's ROUTER on --listen ADDR:PORT. */
export class MigrationReceiver {
  private readonly sock = new zmq.Router({ linger: 0, receiveHighWaterMark: 64, ...HEARTBEATS });
  /** Sessions staging pages, by the source connection's routing id. */
  private readonly sessions = new Map<string, Session>();
  /** What became of each migration that reached `commit`, by its id. */
  private readonly outcomes = new Map<string, Outcome>();
  private closed = false;
  private readonly fault = migrateFault();

  private constructor(private readonly hooks: ReceiverHooks) {}

  static async listen(addr: string, hooks: ReceiverHooks): Promise<MigrationReceiver> {
    const r = new MigrationReceiver(hooks);
    await r.sock.bind(`tcp://${addr}`);
    hooks.log(`migration: listening on tcp://${addr}`);
    void r.loop();
    return r;
  }

  /** Ends a session; its domain too unless `keep` (the commit took it). */
  private drop(key: string, keep = false): void {
    const s = this.sessions.get(key);
    if (!s) return;
    clearTimeout(s.timer);
    this.sessions.delete(key);
    if (!keep) void this.hooks.destroy(s.domid).catch((e) => this.hooks.log(`migration: destroying d${s.domid}: ${(e as Error).message}`));
  }

  private touch(key: string, s: Session): void {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => { this.hooks.log(`migration: '${s.name}': the source went quiet, dropped`); this.drop(key); }, SESSION_IDLE_MS);
  }

  private setOutcome(id: string, o: Omit<Outcome, 'timer'>, timeoutMs = OUTCOME_KEEP_MS, onTimeout?: () => void): void {
    const old = this.outcomes.get(id);
    if (old) clearTimeout(old.timer);
    // onTimeout (a discard) still finds the outcome, and replaces it; without one it is forgotten.
    const timer = setTimeout(() => { if (onTimeout) onTimeout(); else this.outcomes.delete(id); }, timeoutMs);
    timer.unref();
    this.outcomes.set(id, { ...o, timer });
  }

  /** A paused copy nobody said `go` for: destroyed, so the guest never runs twice. */
  private async discard(id: string, why: string): Promise<void> {
    const o = this.outcomes.get(id);
    if (!o || o.state !== 'ready') return;
    this.setOutcome(id, { ...o, state: 'gone' });
    this.hooks.log(`migration: '${o.name}' (d${o.domid}): ${why}; the paused copy is destroyed`);
    await this.hooks.destroy(o.domid).catch((e) => this.hooks.log(`migration: destroying d${o.domid}: ${(e as Error).message}`));
  }

  private async loop(): Promise<void> {
    try {
      for await (const [id, body, pfnFrame, dataFrame] of this.sock) {
        if (!id || !body) continue;
        const key = id.toString('hex');
        let m: MigrationMsg;
        try { m = unpack(body) as MigrationMsg; } catch { continue; }
        if (!m || typeof m !== 'object') continue;
        const reply = (r: MigrationReply) => void this.sock.send([id, pack(r)]).catch(() => undefined);
        const s = this.sessions.get(key);
        switch (m.type) {
          case 'begin': {
            this.drop(key);
            if (!(Number.isInteger(m.maxPfns) && m.maxPfns > 0 && m.maxPfns <= (1 << 22) && typeof m.id === 'string' && m.config && typeof m.config === 'object')) {
              reply({ ok: false, error: 'bad frame count, migration id or configuration' });
              break;
            }
            let made: { domid: number; memory: Uint8Array };
            try {
              made = await this.hooks.prepare({ ...m.config, name: String(m.name) }, m.maxPfns, typeof m.host === 'string' ? m.host : undefined);
            } catch (e) {
              reply({ ok: false, error: (e as Error).message });
              break;
            }
            const ns: Session = { id: m.id, name: String(m.name), maxPfns: m.maxPfns, domid: made.domid, memory: made.memory, timer: setTimeout(() => undefined, 0) };
            this.sessions.set(key, ns);
            this.touch(key, ns);
            this.hooks.log(`migration: '${ns.name}' begins: d${made.domid} takes its pages`);
            reply({ ok: true });
            break;
          }
          case 'pages': {
            if (!s) break;
            this.touch(key, s);
            if (!pfnFrame || !dataFrame || pfnFrame.length % 4 !== 0 || dataFrame.length !== (pfnFrame.length / 4) * PAGE_SIZE) {
              this.hooks.log(`migration: '${s.name}': a malformed page batch, dropped`);
              this.drop(key);
              break;
            }
            // Straight into the new domain's memory.
            for (let i = 0; i < pfnFrame.length / 4; i++) {
              const pfn = pfnFrame.readUInt32LE(i * 4);
              if (pfn >= s.maxPfns || (pfn + 1) * PAGE_SIZE > s.memory.byteLength) continue;
              s.memory.set(dataFrame.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), pfn * PAGE_SIZE);
            }
            break;
          }
          case 'commit': {
            if (!s) { reply({ ok: false, error: 'no migration in progress' }); break; }
            this.drop(key, true);
            try {
              const hvm = m.hvm && m.hvm.context instanceof Uint8Array && m.hvm.dm instanceof Uint8Array
                ? { context: m.hvm.context, dm: m.hvm.dm } : undefined;
              const { domid, steps } = await this.hooks.restore({ ...m.config, name: s.name }, s.domid, hvm);
              this.setOutcome(s.id, { state: 'ready', name: s.name, domid }, GO_WAIT_MS,
                () => void this.discard(s.id, `no go from the source within ${GO_WAIT_MS / 1000} s`));
              this.hooks.log(`migration: '${s.name}' restored as d${domid}, paused until the source says go`);
              reply({ ok: true, domid, steps });
            } catch (e) {
              reply({ ok: false, error: (e as Error).message });
            }
            break;
          }
          case 'go':
            if (this.fault.holdGoMs) {
              this.hooks.log(`migration: fault injection: holding go for ${this.fault.holdGoMs} ms`);
              setTimeout(() => void this.go(String(m.id), reply), this.fault.holdGoMs);
            } else await this.go(String(m.id), reply);
            break;
          case 'pool': {
            const p = await this.hooks.pool();
            void this.sock.send([id, pack({ ok: true, ...p })]).catch(() => undefined);
            break;
          }
          case 'status':
            reply({ ok: true, state: this.outcomes.get(String(m.id))?.state ?? ([...this.sessions.values()].some((x) => x.id === m.id) ? 'staging' : 'gone') });
            break;
          case 'abort': {
            if (s && (m.id === undefined || m.id === s.id)) this.drop(key);
            if (m.id !== undefined) {
              await this.discard(String(m.id), 'the source aborted');
              reply({ ok: true, state: this.outcomes.get(String(m.id))?.state ?? 'gone' });
            }
            break;
          }
        }
      }
    } catch (e) {
      if (!this.closed) this.hooks.log(`migration: receiver stopped: ${(e as Error).message}`);
    }
  }

  /** `go`: the paused copy runs. */
  private async go(id: string, reply: (r: MigrationReply) => void): Promise<void> {
    const o = this.outcomes.get(id);
    if (!o || o.state !== 'ready') {
      reply(o?.state === 'running' ? { ok: true, state: 'running' } : { ok: false, error: 'no migration waiting for go' });
      return;
    }
    try {
      await this.hooks.unpause(o.domid);
      this.setOutcome(id, { ...o, state: 'running' });
      this.hooks.log(`migration: '${o.name}' runs here as d${o.domid}`);
      if (this.fault.loseGoAnswer) this.hooks.log('migration: fault injection: the answer to go is lost');
      else reply({ ok: true, state: 'running' });
    } catch (e) {
      await this.discard(id, `unpausing failed: ${(e as Error).message}`);
      reply({ ok: false, error: (e as Error).message });
    }
  }

  close(): void {
    this.closed = true;
    for (const k of [...this.sessions.keys()]) this.drop(k);
    for (const o of this.outcomes.values()) clearTimeout(o.timer);
    this.sock.close();
  }
}
