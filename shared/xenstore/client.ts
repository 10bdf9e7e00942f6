// A xenstore client speaking xs_wire (io/xs_wire.h) over any byte transport:
// the daemon's Unix socket (Domain-0 tools, tests) or a guest's shared ring.
// Requests are pipelined: each carries a fresh req_id and its reply is matched
// by it; XS_WATCH_EVENT messages go to the watch callbacks.
import { connect, type Socket } from 'node:net';
import {
  XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START,
  XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE, XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM,
  XS_SET_PERMS, XS_WATCH_EVENT, XS_ERROR, XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET,
  XS_RESET_WATCHES, XS_DIRECTORY_PART, XS_CONTROL, XSD_SOCKMSG_SIZE, XENSTORE_PAYLOAD_MAX,
  encodeMsg,
} from '../abi/io/xs_wire.js';
import { XsRing } from './ring.js';

export class XsError extends Error {
  readonly code: string;
  constructor(code: string, what: string) {
    super(`${what}: ${code}`);
    this.name = 'XsError';
    this.code = code;
  }
}

/** A byte pipe to the daemon. */
export interface XsTransport {
  write(buf: Buffer): void;
  onData(cb: (chunk: Buffer) => void): void;
  onClose(cb: (err?: Error) => void): void;
  close(): void;
}

export type WatchCallback = (path: string, token: string) => void;

interface Pending {
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
  what: string;
}

export class XsClient {
  private transport: XsTransport;
  private nextReqId = 1;
  private readonly pending = new Map<number, Pending>();
  private inbuf: Buffer = Buffer.alloc(0);
  private readonly watches = new Map<string, WatchCallback>(); // token -> callback
  private closed = false;

  constructor(transport: XsTransport) {
    this.transport = transport;
    transport.onData((c) => this.onData(c));
    transport.onClose((err) => this.failAll(err ?? new Error('xenstore connection closed')));
  }

  /** Connects to the daemon's Unix socket (XENSTORED_PATH by default). */
  static connect(path = process.env.XENSTORED_PATH ?? '/run/xenstored/socket'): Promise<XsClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        sock.setNoDelay?.(true);
        resolve(new XsClient(socketTransport(sock)));
      });
    });
  }

  private onData(chunk: Buffer): void {
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    while (this.inbuf.length >= XSD_SOCKMSG_SIZE) {
      const len = this.inbuf.readUInt32LE(12);
      if (len > XENSTORE_PAYLOAD_MAX) { this.failAll(new Error('oversized reply from xenstored')); this.transport.close(); return; }
      if (this.inbuf.length < XSD_SOCKMSG_SIZE + len) break;
      const type = this.inbuf.readUInt32LE(0);
      const reqId = this.inbuf.readUInt32LE(4);
      const payload = Buffer.from(this.inbuf.subarray(XSD_SOCKMSG_SIZE, XSD_SOCKMSG_SIZE + len));
      this.inbuf = this.inbuf.subarray(XSD_SOCKMSG_SIZE + len);
      if (type === XS_WATCH_EVENT) {
        const [path, token] = splitStrings(payload);
        const cb = token !== undefined ? this.watches.get(token) : undefined;
        if (cb && path !== undefined) cb(path, token!);
        continue;
      }
      const p = this.pending.get(reqId);
      if (!p) continue;
      this.pending.delete(reqId);
      if (type === XS_ERROR) p.reject(new XsError(payload.toString('latin1').replace(/\0.*$/s, ''), p.what));
      else p.resolve(payload);
    }
  }

  private failAll(err: Error): void {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Sends one request; resolves with the reply payload or rejects with XsError. */
  request(type: number, payload: Buffer, tx = 0, what = ''): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('xenstore connection closed'));
    const reqId = this.nextReqId;
    this.nextReqId = (this.nextReqId + 1) >>> 0 || 1;
    return new Promise((resolve, reject) => {
      this.pending.set(reqId, { resolve, reject, what });
      this.transport.write(encodeMsg(type, reqId, tx, payload));
    });
  }

  async read(path: string, tx = 0): Promise<Buffer> {
    return this.request(XS_READ, str0(path), tx, `read ${path}`);
  }
  async readString(path: string, tx = 0): Promise<string> {
    return (await this.read(path, tx)).toString('utf8');
  }
  /** READ that gives null for ENOENT. */
  async tryRead(path: string, tx = 0): Promise<string | null> {
    try { return await this.readString(path, tx); } catch (e) {
      if (e instanceof XsError && e.code === 'ENOENT') return null;
      throw e;
    }
  }
  async write(path: string, value: string | Buffer, tx = 0): Promise<void> {
    const v = typeof value === 'string' ? Buffer.from(value) : value;
    await this.request(XS_WRITE, Buffer.concat([str0(path), v]), tx, `write ${path}`);
  }
  async mkdir(path: string, tx = 0): Promise<void> {
    await this.request(XS_MKDIR, str0(path), tx, `mkdir ${path}`);
  }
  async rm(path: string, tx = 0): Promise<void> {
    await this.request(XS_RM, str0(path), tx, `rm ${path}`);
  }
  async directory(path: string, tx = 0): Promise<string[]> {
    return splitStrings(await this.request(XS_DIRECTORY, str0(path), tx, `directory ${path}`));
  }
  /** DIRECTORY_PART from a byte offset: {gen, names, done}. */
  async directoryPart(path: string, offset: number, tx = 0): Promise<{ gen: string; names: string[]; done: boolean }> {
    const p = await this.request(XS_DIRECTORY_PART, Buffer.concat([str0(path), str0(String(offset))]), tx, `directory_part ${path}`);
    const parts = p.toString('utf8').split('\0');
    // gen\0 a\0 b\0 [\0 when complete] -> split gives [gen, a, b, '', ''] or [gen, a, b, '']
    const gen = parts.shift()!;
    parts.pop();
    const done = parts.length > 0 && parts[parts.length - 1] === '';
    if (done) parts.pop();
    return { gen, names: parts, done };
  }
  async getPerms(path: string, tx = 0): Promise<string[]> {
    return splitStrings(await this.request(XS_GET_PERMS, str0(path), tx, `get_perms ${path}`));
  }
  async setPerms(path: string, perms: string[], tx = 0): Promise<void> {
    await this.request(XS_SET_PERMS, Buffer.concat([str0(path), ...perms.map(str0)]), tx, `set_perms ${path}`);
  }
  async watch(path: string, token: string, cb: WatchCallback): Promise<void> {
    this.watches.set(token, cb);
    try {
      await this.request(XS_WATCH, Buffer.concat([str0(path), str0(token)]), 0, `watch ${path}`);
    } catch (e) {
      this.watches.delete(token);
      throw e;
    }
  }
  async unwatch(path: string, token: string): Promise<void> {
    await this.request(XS_UNWATCH, Buffer.concat([str0(path), str0(token)]), 0, `unwatch ${path}`);
    this.watches.delete(token);
  }
  async resetWatches(): Promise<void> {
    await this.request(XS_RESET_WATCHES, Buffer.alloc(0), 0, 'reset_watches');
    this.watches.clear();
  }
  async transactionStart(): Promise<number> {
    const p = await this.request(XS_TRANSACTION_START, str0(''), 0, 'transaction_start');
    return Number(p.toString('latin1').replace(/\0.*$/s, ''));
  }
  /** Commits (true) or aborts (false); a conflicting commit rejects with EAGAIN. */
  async transactionEnd(tx: number, commit: boolean): Promise<void> {
    await this.request(XS_TRANSACTION_END, str0(commit ? 'T' : 'F'), tx, 'transaction_end');
  }
  /** Runs fn in a transaction, retrying on EAGAIN as libxenstore users do. */
  async transaction<T>(fn: (tx: number) => Promise<T>, retries = 100): Promise<T> {
    for (let i = 0; ; i++) {
      const tx = await this.transactionStart();
      let result: T;
      try { result = await fn(tx); } catch (e) {
        await this.transactionEnd(tx, false).catch(() => undefined);
        throw e;
      }
      try { await this.transactionEnd(tx, true); return result; } catch (e) {
        if (!(e instanceof XsError && e.code === 'EAGAIN') || i >= retries) throw e;
      }
    }
  }
  async introduce(domid: number, mfn: number, port: number): Promise<void> {
    await this.request(XS_INTRODUCE, Buffer.concat([str0(String(domid)), str0(String(mfn)), str0(String(port))]), 0, `introduce ${domid}`);
  }
  async release(domid: number): Promise<void> {
    await this.request(XS_RELEASE, str0(String(domid)), 0, `release ${domid}`);
  }
  async resume(domid: number): Promise<void> {
    await this.request(XS_RESUME, str0(String(domid)), 0, `resume ${domid}`);
  }
  async isDomainIntroduced(domid: number): Promise<boolean> {
    return (await this.request(XS_IS_DOMAIN_INTRODUCED, str0(String(domid)), 0, 'is_domain_introduced'))[0] === 0x54; // 'T'
  }
  async getDomainPath(domid: number): Promise<string> {
    return (await this.request(XS_GET_DOMAIN_PATH, str0(String(domid)), 0, 'get_domain_path')).toString('utf8').replace(/\0.*$/s, '');
  }
  async setTarget(domid: number, target: number): Promise<void> {
    await this.request(XS_SET_TARGET, Buffer.concat([str0(String(domid)), str0(String(target))]), 0, 'set_target');
  }
  async control(...args: string[]): Promise<string> {
    return (await this.request(XS_CONTROL, Buffer.concat(args.map(str0)), 0, 'control')).toString('utf8').replace(/\0+$/, '');
  }

  close(): void {
    this.closed = true;
    this.transport.close();
  }
}

export function str0(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

/** "a\0b\0" -> ['a', 'b'] */
export function splitStrings(p: Buffer): string[] {
  if (p.length === 0) return [];
  const s = p.toString('utf8');
  const parts = s.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export function socketTransport(sock: Socket): XsTransport {
  return {
    write: (b) => { sock.write(b); },
    onData: (cb) => { sock.on('data', cb); },
    onClose: (cb) => { sock.on('close', () => cb()); sock.on('error', () => undefined); },
    close: () => { sock.destroy(); },
  };
}

/**
 * A guest's transport over its xenstore ring page: writes go into the request
 * ring (waiting for space as the daemon consumes), responses are read when
 * the daemon notifies (kick()). notify() raises the event channel.
 */
export class XsRingTransport implements XsTransport {
  private readonly ring: XsRing;
  private readonly notify: () => void;
  private outq: Buffer[] = [];
  private dataCb: ((b: Buffer) => void) | undefined;
  private closeCb: ((err?: Error) => void) | undefined;

  constructor(page: Uint8Array, notify: () => void) {
    this.ring = new XsRing(page, 'guest');
    this.notify = notify;
  }
  write(buf: Buffer): void {
    this.outq.push(buf);
    this.pump();
  }
  onData(cb: (b: Buffer) => void): void { this.dataCb = cb; }
  onClose(cb: (err?: Error) => void): void { this.closeCb = cb; }
  close(): void { this.outq = []; this.closeCb?.(); }

  /** Call when the daemon's event arrives: moves responses in and requests out. */
  kick(): void {
    let got = false;
    for (;;) {
      const b = this.ring.read();
      if (b.length === 0) break;
      got = true;
      this.dataCb?.(b);
    }
    if (got) this.notify(); // the daemon may be waiting for response space
    this.pump();
  }

  private pump(): void {
    let wrote = false;
    while (this.outq.length) {
      const head = this.outq[0]!;
      const n = this.ring.write(head);
      if (n > 0) wrote = true;
      if (n === head.length) this.outq.shift();
      else { this.outq[0] = head.subarray(n); break; }
    }
    if (wrote) this.notify();
  }
}
