// Migration between hosts (docs/saverestore.md): a PV guest's pages go to
// another host's xend over ZeroMQ TCP, while it runs (pre-copy, Clark et
// al., NSDI 2005) or once stopped, then the guest suspends, the pages it
// dirtied meanwhile follow, the target restores it, and only then is it
// destroyed here.
//
//   source (DEALER)                              target (ROUTER on --listen ADDR:PORT)
//     begin {name, memory, maxPfns} ───────────►  name free? memory? -> ok
//     pages {round, pfns, data} ... ───────────►  staged (a later copy of a page replaces it)
//     (guest suspends: control/shutdown, SCHEDOP_shutdown(suspend))
//     pages {final} ───────────────────────────►
//     commit {config} ─────────────────────────►  restore from the staged pages, unpause
//                      ◄───────────────────────── ok {domid}
//     destroy the source's domain
//
// Which pages changed since they were sent: a shadow of what the target
// holds is kept, and each round compares every page with it (the plain
// fallback of log-dirty tracking: it needs nothing of the guest, and a page
// rewritten with its old bytes is rightly not sent again).
//
// A target that does not answer (killed, unreachable, refusing) leaves the
// guest here: before the suspend it never stopped; after it, it is resumed
// in place (XEN_DOMCTL_resumedomain). The target drops a session whose
// source went quiet.
import * as zmq from 'zeromq';
import { pack, unpack } from 'msgpackr';
import { PAGE_SIZE } from '../../../shared/abi/xen.js';
import type { DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import type { PoolGuest } from '../../../shared/toolstack/xend_api.js';

/** Pages per message. */
const BATCH = 256;
/** How long a reply may take (the commit includes the target's restore). */
export const MIGRATION_REPLY_TIMEOUT_MS = 30_000;
/** How long the target has to answer `begin`: a host that is not listening is found out fast. */
const BEGIN_TIMEOUT_MS = 5_000;
/** A target session with no message for this long is dropped. */
const SESSION_IDLE_MS = 60_000;
/** Pre-copy stops when a round finds fewer dirty pages than this, or after MAX_ROUNDS. */
const DIRTY_STOP = 64;
const MAX_ROUNDS = 8;

export type MigrationMsg =
  | { type: 'begin'; name: string; memory: number; maxPfns: number; host?: string }
  | { type: 'pool' }
  | { type: 'pages'; round: number; pfns: Uint8Array; data: Uint8Array }
  | { type: 'commit'; config: DomainConfig }
  | { type: 'abort' };
export type MigrationReply = { ok: true; domid?: number } | { ok: false; error: string };

import type { MigrationSummary } from '../../../shared/toolstack/xend_api.js';
export type { MigrationSummary };
export type MigrationRound = MigrationSummary['rounds'][number];

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

  constructor(readonly target: string, private readonly mem: Uint8Array) {
    this.sock = new zmq.Dealer({ linger: 0, sendTimeout: MIGRATION_REPLY_TIMEOUT_MS, receiveTimeout: MIGRATION_REPLY_TIMEOUT_MS, sendHighWaterMark: 64 });
    this.sock.connect(`tcp://${target}`);
    this.maxPfns = mem.byteLength / PAGE_SIZE;
    this.shadow = Buffer.alloc(mem.byteLength);
    this.live = Buffer.from(mem.buffer, mem.byteOffset, mem.byteLength);
  }

  private async call(m: MigrationMsg): Promise<MigrationReply> {
    await this.sock.send(pack(m));
    const [reply] = await this.sock.receive();
    return unpack(reply!) as MigrationReply;
  }

  /** `host`: the source's name, which the target's pool check leaves out (the guest runs there until the commit). */
  async begin(name: string, memory: number, host?: string): Promise<void> {
    this.sock.receiveTimeout = BEGIN_TIMEOUT_MS;
    let r: MigrationReply;
    try {
      r = await this.call({ type: 'begin', name, memory, maxPfns: this.maxPfns, host });
    } catch (e) {
      throw new Error(`no answer from ${this.target} in ${BEGIN_TIMEOUT_MS / 1000} s (is a xenemu host listening there? xenemu up --listen): ${(e as Error).message}`);
    } finally {
      this.sock.receiveTimeout = MIGRATION_REPLY_TIMEOUT_MS;
    }
    if (!r.ok) throw new Error(`the target refused: ${r.error}`);
  }

  /** Sends every page whose bytes differ from the copy the target has; returns how many. */
  async round(round: number): Promise<number> {
    const t0 = performance.now();
    let pfns: number[] = [];
    let total = 0;
    let bytes = 0;
    const flush = async () => {
      if (pfns.length === 0) return;
      const data = new Uint8Array(pfns.length * PAGE_SIZE);
      pfns.forEach((pfn, i) => {
        // The bytes sent, not the page, which may change meanwhile: they become its shadow.
        data.set(this.mem.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE), i * PAGE_SIZE);
        this.shadow.set(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), pfn * PAGE_SIZE);
      });
      const idx = new Uint32Array(pfns);
      await this.sock.send(pack({ type: 'pages', round, pfns: new Uint8Array(idx.buffer), data } satisfies MigrationMsg));
      bytes += data.byteLength;
      pfns = [];
    };
    const same = (from: number, pages: number) =>
      this.live.compare(this.shadow, from * PAGE_SIZE, (from + pages) * PAGE_SIZE, from * PAGE_SIZE, (from + pages) * PAGE_SIZE) === 0;
    for (let run = 0; run < this.maxPfns; run += RUN_PAGES) {
      const n = Math.min(RUN_PAGES, this.maxPfns - run);
      if (same(run, n)) continue;
      for (let pfn = run; pfn < run + n; pfn++) {
        if (same(pfn, 1)) continue;
        pfns.push(pfn);
        total++;
        if (pfns.length === BATCH) await flush();
      }
    }
    await flush();
    this.sentBytes += bytes;
    this.rounds.push({ round, pages: total, bytes, ms: performance.now() - t0 });
    return total;
  }

  /** Pre-copy while the guest runs: rounds until few pages are dirtied or no progress is made. */
  async precopy(): Promise<void> {
    let last = Infinity;
    for (let r = 0; r < MAX_ROUNDS; r++) {
      const n = await this.round(r);
      if (r > 0 && (n < DIRTY_STOP || n >= last)) return;
      last = n;
    }
  }

  async commit(config: DomainConfig): Promise<number> {
    const r = await this.call({ type: 'commit', config });
    if (!r.ok) throw new Error(r.error);
    return r.domid ?? -1;
  }

  abort(): void {
    void this.sock.send(pack({ type: 'abort' } satisfies MigrationMsg)).catch(() => undefined);
  }

  close(): void { this.sock.close(); }
}

interface Session { name: string; maxPfns: number; pages: Map<number, Uint8Array>; timer: NodeJS.Timeout }

export interface ReceiverHooks {
  /** Whether a guest `name` of `memory` MiB may come from host `from`: an error message, or undefined. */
  admit(name: string, memory: number, from?: string): Promise<string | undefined>;
  /** This host's name and guests, for a pool peer (pool.ts). */
  pool(): Promise<{ host: string; guests: PoolGuest[] }>;
  /** Restores the guest from the staged pages and unpauses it; its domid. */
  restore(config: DomainConfig, maxPfns: number, pages: Map<number, Uint8Array>): Promise<number>;
  log(m: string): void;
}

/** The target's side: xend's ROUTER on --listen ADDR:PORT. */
export class MigrationReceiver {
  private readonly sock = new zmq.Router({ linger: 0, receiveHighWaterMark: 64 });
  private readonly sessions = new Map<string, Session>();
  private closed = false;

  private constructor(private readonly hooks: ReceiverHooks) {}

  static async listen(addr: string, hooks: ReceiverHooks): Promise<MigrationReceiver> {
    const r = new MigrationReceiver(hooks);
    await r.sock.bind(`tcp://${addr}`);
    hooks.log(`migration: listening on tcp://${addr}`);
    void r.loop();
    return r;
  }

  private drop(key: string): void {
    const s = this.sessions.get(key);
    if (!s) return;
    clearTimeout(s.timer);
    this.sessions.delete(key);
  }

  private touch(key: string, s: Session): void {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => { this.hooks.log(`migration: '${s.name}': the source went quiet, dropped`); this.drop(key); }, SESSION_IDLE_MS);
  }

  private async loop(): Promise<void> {
    try {
      for await (const [id, body] of this.sock) {
        if (!id || !body) continue;
        const key = id.toString('hex');
        let m: MigrationMsg;
        try { m = unpack(body) as MigrationMsg; } catch { continue; }
        const reply = (r: MigrationReply) => void this.sock.send([id, pack(r)]).catch(() => undefined);
        const s = this.sessions.get(key);
        switch (m.type) {
          case 'begin': {
            this.drop(key);
            const why = Number.isInteger(m.maxPfns) && m.maxPfns > 0 && m.maxPfns <= (1 << 22)
              ? await this.hooks.admit(String(m.name), Number(m.memory), typeof m.host === 'string' ? m.host : undefined) : 'bad frame count';
            if (why) { reply({ ok: false, error: why }); break; }
            const ns: Session = { name: String(m.name), maxPfns: m.maxPfns, pages: new Map(), timer: setTimeout(() => undefined, 0) };
            this.sessions.set(key, ns);
            this.touch(key, ns);
            reply({ ok: true });
            break;
          }
          case 'pages': {
            if (!s) break;
            this.touch(key, s);
            const pfns = new Uint32Array(m.pfns.buffer.slice(m.pfns.byteOffset, m.pfns.byteOffset + m.pfns.byteLength));
            if (m.data.byteLength !== pfns.length * PAGE_SIZE) { this.hooks.log(`migration: '${s.name}': a malformed page batch, dropped`); this.drop(key); break; }
            for (let i = 0; i < pfns.length; i++) {
              const pfn = pfns[i]!;
              if (pfn >= s.maxPfns) continue;
              s.pages.set(pfn, Buffer.from(m.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)));
            }
            break;
          }
          case 'commit': {
            if (!s) { reply({ ok: false, error: 'no migration in progress' }); break; }
            this.drop(key);
            try {
              const domid = await this.hooks.restore(m.config, s.maxPfns, s.pages);
              reply({ ok: true, domid });
            } catch (e) {
              reply({ ok: false, error: (e as Error).message });
            }
            break;
          }
          case 'abort':
            this.drop(key);
            break;
          case 'pool': {
            const p = await this.hooks.pool();
            void this.sock.send([id, pack({ ok: true, ...p })]).catch(() => undefined);
            break;
          }
        }
      }
    } catch (e) {
      if (!this.closed) this.hooks.log(`migration: receiver stopped: ${(e as Error).message}`);
    }
  }

  close(): void {
    this.closed = true;
    for (const k of [...this.sessions.keys()]) this.drop(k);
    this.sock.close();
  }
}
