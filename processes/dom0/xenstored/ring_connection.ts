// A guest's connection over its shared ring page (struct
// xenstore_domain_interface, io/xs_wire.h), registered by XS_INTRODUCE.
//
//   guest                      ring page                    xenstored
//   write req, req_prod++  ->  req[] / indices  -> kick -> read, handle
//   read rsp  <- event <- notify  <-  rsp[] / indices  <- write replies
//
// The guest controls the indices: each is read once and checked; a broken
// index or an oversized frame sets the page's `error` field and the
// connection stops being served (Xen's XENSTORE_ERROR_RINGIDX/PROTO), without
// touching anyone else. A guest that does not consume its responses gets no
// more requests handled once `outstanding` replies wait (quota).
import { XsRing, XsRingError } from '../../../shared/xenstore/ring.js';
import {
  XENSTORE_ERROR_RINGIDX, XENSTORE_ERROR_PROTO, XENSTORE_SERVER_FEATURE_ERROR,
  XENSTORE_SERVER_FEATURE_RECONNECTION,
} from '../../../shared/abi/io/xs_wire.js';
import { Connection, type ConnectionHost } from './connection.js';

const EVENT_LIMIT = 256;

export class RingConnection extends Connection {
  private readonly ring: XsRing;
  private readonly notify: () => void;
  private readonly outstanding: number;
  private dead = false;

  constructor(host: ConnectionHost, domid: number, page: Uint8Array, notify: () => void,
              outstanding: number, fresh: boolean) {
    super(host, domid, false);
    this.ring = new XsRing(page, 'daemon');
    this.notify = notify;
    this.outstanding = outstanding;
    if (fresh) this.ring.reset(XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR);
  }

  describe(): string {
    return `domain ${this.domid} ring`;
  }

  protected canTakeRequest(): boolean {
    return !this.dead && this.out.length < this.outstanding;
  }

  protected get eventLimit(): number {
    return EVENT_LIMIT;
  }

  /** Requests consumed since the last notify: the guest may wait for room. */
  private consumed = false;

  /**
   * The guest notified us (or a poll found work): handle its requests. Replies
   * wait in `out` until flush(), which the daemon calls only after the batch is
   * durable, so a guest never sees an acknowledgement of a lost write.
   */
  kick(): void {
    if (this.dead || this.closed) return;
    try {
      // Frames already read but held back by the outstanding quota go first.
      this.processFrames();
      for (let guard = 0; guard < 64 && this.canTakeRequest() && this.ring.available() > 0; guard++) {
        this.feed(this.ring.read());
        this.consumed = true;
      }
    } catch (e) {
      if (e instanceof XsRingError) { this.broken(XENSTORE_ERROR_RINGIDX, e.message); return; }
      throw e;
    }
    if (this.consumed || this.out.length) this.host.markDirty(this);
  }

  /** Writes queued replies into the response ring; true if any went. */
  private flushRing(): boolean {
    let wrote = false;
    while (this.out.length) {
      const head = this.out[0]!;
      const n = this.ring.write(head);
      if (n > 0) wrote = true;
      if (n === head.length) {
        this.out.shift();
      } else {
        this.out[0] = head.subarray(n);
        break;
      }
    }
    // Events and replies share the queue; recount what is still waiting.
    if (this.out.length === 0) this.queuedEvents = 0;
    return wrote;
  }

  flush(): void {
    if (this.dead || this.closed) return;
    let more = false;
    try {
      const wrote = this.flushRing();
      if (wrote || this.consumed) this.notify();
      this.consumed = false;
      more = this.canTakeRequest() && (this.hasBufferedFrame() || this.ring.available() > 0);
    } catch (e) {
      if (e instanceof XsRingError) { this.broken(XENSTORE_ERROR_RINGIDX, e.message); return; }
      throw e;
    }
    // Room opened for requests held back by the outstanding quota.
    if (more) queueMicrotask(() => { this.kick(); this.host.commit(); });
  }

  fail(reason: string): void {
    this.broken(XENSTORE_ERROR_PROTO, reason);
  }

  private broken(code: number, reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.out = [];
    this.ring.setError(code);
    this.host.log(`${this.describe()}: ${reason}; connection stopped`);
    this.notify();
  }

  close(): void {
    this.closed = true;
    this.out = [];
  }
}
