// A client connection: framing of xs_wire messages in, replies and watch
// events out. Two kinds: a Unix socket (Domain-0 tools, privileged) and a
// guest's shared ring (ring_connection.ts). Both keep what they hold bounded:
// a frame is read by its length and refused beyond XENSTORE_PAYLOAD_MAX, and
// output that the peer does not consume stops the reading of its requests
// (and, past a limit, drops its watch events) instead of growing memory.
import { XSD_SOCKMSG_SIZE, XENSTORE_PAYLOAD_MAX, XS_WATCH_EVENT, encodeMsg } from '../../../shared/abi/io/xs_wire.js';
import type { Transaction } from './transaction.js';
import type { Watcher } from './watch.js';

export interface Frame {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

/** What the daemon gives each connection. */
export interface ConnectionHost {
  handle(conn: Connection, frame: Frame): void;
  targetOf(domid: number): number | undefined;
  markDirty(conn: Connection): void;
  /** Set when tracing (xenstored --trace-file): every message in and out. */
  trace?: (conn: Connection, dir: 'IN' | 'OUT', msg: Buffer) => void;
  /** Durability, then output: called after a batch of input is handled. */
  commit(): void;
  log(msg: string): void;
}

let nextConnId = 1;

export abstract class Connection implements Watcher {
  readonly id = nextConnId++;
  readonly domid: number;
  readonly privileged: boolean;
  readonly transactions = new Map<number, Transaction>();
  nextTxId = 1;
  watchCount = 0;
  droppedEvents = 0;
  closed = false;
  protected readonly host: ConnectionHost;
  private inbuf: Buffer = Buffer.alloc(0);
  /** Messages waiting to go out, and how many of them are watch events. */
  protected out: Buffer[] = [];
  protected queuedEvents = 0;

  constructor(host: ConnectionHost, domid: number, privileged: boolean) {
    this.host = host;
    this.domid = domid;
    this.privileged = privileged;
  }

  get target(): number | undefined {
    return this.host.targetOf(this.domid);
  }

  abstract describe(): string;
  /** May another request be taken now (output not piled up)? */
  protected abstract canTakeRequest(): boolean;
  /** Sends queued output as far as the peer takes it. */
  abstract flush(): void;
  /** Drops the connection for a protocol violation. */
  abstract fail(reason: string): void;
  /** Max watch events queued before new ones are dropped. */
  protected abstract get eventLimit(): number;

  /** Takes bytes from the peer and handles every whole frame it may. */
  feed(chunk: Buffer): void {
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    this.processFrames();
  }

  /**
   * feed() of bytes in a buffer that is reused after this call (the busy
   * poll's scratch): frames are handled in place, and only what stays
   * buffered (a frame not yet whole, or held back) is copied.
   */
  feedTransient(chunk: Buffer): void {
    this.feed(chunk);
    if (this.inbuf.length && this.inbuf.buffer === chunk.buffer) this.inbuf = Buffer.from(this.inbuf);
  }

  /** Handles buffered frames while output allows. */
  processFrames(): void {
    let off = 0;
    const buf = this.inbuf;
    while (!this.closed && buf.length - off >= XSD_SOCKMSG_SIZE && this.canTakeRequest()) {
      const len = buf.readUInt32LE(off + 12);
      if (len > XENSTORE_PAYLOAD_MAX) {
        this.inbuf = Buffer.alloc(0);
        this.fail(`message length ${len} over XENSTORE_PAYLOAD_MAX`);
        return;
      }
      if (buf.length - off < XSD_SOCKMSG_SIZE + len) break;
      const frame: Frame = {
        type: buf.readUInt32LE(off),
        reqId: buf.readUInt32LE(off + 4),
        txId: buf.readUInt32LE(off + 8),
        payload: buf.subarray(off + XSD_SOCKMSG_SIZE, off + XSD_SOCKMSG_SIZE + len),
      };
      if (this.host.trace) this.host.trace(this, 'IN', buf.subarray(off, off + XSD_SOCKMSG_SIZE + len));
      off += XSD_SOCKMSG_SIZE + len;
      this.host.handle(this, frame);
    }
    if (off > 0) {
      // Keep no reference to a large consumed buffer.
      this.inbuf = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    }
  }

  /** Bytes received and not yet handled (a frame not yet whole, or held back while output piles up). */
  get bufferedInput(): number {
    return this.inbuf.length;
  }

  /** Bytes of a frame not yet complete are waiting in the input buffer. */
  get partialInput(): boolean {
    return this.inbuf.length > 0 && !this.hasBufferedFrame();
  }

  /** A whole frame is waiting in the input buffer. */
  protected hasBufferedFrame(): boolean {
    const b = this.inbuf;
    return b.length >= XSD_SOCKMSG_SIZE && b.length >= XSD_SOCKMSG_SIZE + b.readUInt32LE(12);
  }

  reply(type: number, reqId: number, txId: number, payload: Buffer): void {
    if (this.closed) return;
    const msg = encodeMsg(type, reqId, txId, payload);
    if (this.host.trace) this.host.trace(this, 'OUT', msg);
    this.out.push(msg);
    this.host.markDirty(this);
  }

  sendEvent(path: string, token: string): void {
    if (this.closed) return;
    if (this.queuedEvents >= this.eventLimit) {
      if (this.droppedEvents++ === 0) this.host.log(`${this.describe()}: watch events dropped (peer not reading)`);
      return;
    }
    this.queuedEvents++;
    // Both are bytes held as latin1: a token comes back exactly as it was sent.
    const msg = encodeMsg(XS_WATCH_EVENT, 0, 0, Buffer.from(`${path}\0${token}\0`, 'latin1'));
    if (this.host.trace) this.host.trace(this, 'OUT', msg);
    this.out.push(msg);
    this.host.markDirty(this);
  }

  /** Output messages not yet handed to the peer. */
  get pendingOut(): number {
    return this.out.length;
  }
}
