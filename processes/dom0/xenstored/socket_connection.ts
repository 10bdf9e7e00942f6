// Unix socket transport (docs/design.md §2: Domain-0 tools and any real Xen client,
// found through XENSTORED_PATH). Socket clients are Domain-0: privileged.
import type { Socket } from 'node:net';
import { sendNow, socketFd } from '../../../shared/sockio.js';
import { Connection, type ConnectionHost } from './connection.js';

/**
 * Reads and writes done on the descriptors directly (CONTROL stats), and how
 * many of those reads ended inside a frame (its rest came too late for the
 * spin and was left to libuv).
 */
export const directIo = { reads: 0, partial: 0, writes: 0, ends: 0 };

/** Bytes unread by the client before we stop reading its requests. */
const HIGH_WATER = 1 << 20;
/** Watch events kept for a client that does not read. */
const EVENT_LIMIT = 4096;

export class SocketConnection extends Connection {
  private readonly sock: Socket;
  private paused = false;
  private readonly onGone: (c: SocketConnection) => void;
  /** The descriptor for direct I/O (shared/sockio.ts), -1 when that is off. */
  readonly fd: number;

  constructor(host: ConnectionHost, sock: Socket, onGone: (c: SocketConnection) => void, directIo = true) {
    super(host, 0, true);
    this.sock = sock;
    this.onGone = onGone;
    this.fd = directIo ? socketFd(sock) : -1;
    sock.setNoDelay?.(true);
    sock.on('data', (chunk: Buffer) => { this.feed(chunk); this.host.commit(); });
    sock.on('drain', () => {
      this.queuedEvents = 0;
      if (this.paused) { this.paused = false; this.sock.resume(); this.processFrames(); this.host.commit(); }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.gone());
  }

  describe(): string {
    return `socket connection ${this.id}`;
  }

  /** Reading stopped: the client does not read its replies (CONTROL stats, held-sockets). */
  get held(): boolean {
    return this.paused;
  }

  protected canTakeRequest(): boolean {
    return this.sock.writableLength + this.out.length * 64 < HIGH_WATER;
  }

  protected get eventLimit(): number {
    return this.sock.writableLength > HIGH_WATER ? 0 : EVENT_LIMIT;
  }

  /**
   * May the daemon's busy poll (index.ts) read this client's requests
   * straight from the descriptor now? Only while the stream flows with
   * nothing buffered in it, so that no byte overtakes another, and only at a
   * frame boundary (the spin completes frames it reads the start of); end
   * of file and errors are left for libuv's own read to see, as before.
   */
  get directReadable(): boolean {
    return !this.closed && !this.paused && this.bufferedInput === 0 && this.fdLive() &&
      this.sock.readableLength === 0 && this.sock.readableFlowing === true;
  }

  /** Handles `n` bytes the busy poll read from the descriptor into `scratch`. */
  feedDirect(scratch: Buffer, n: number): void {
    directIo.reads++;
    this.feedTransient(scratch.subarray(0, n));
    if (this.partialInput) directIo.partial++;
  }

  /**
   * The descriptor is still this socket's: Node drops the handle (and libuv
   * closes the descriptor, whose number may then be reused) as soon as the
   * socket is destroyed, before its 'close' event.
   */
  private fdLive(): boolean {
    return this.fd >= 0 && !this.sock.destroyed && socketFd(this.sock) === this.fd;
  }

  flush(): void {
    if (this.closed || this.out.length === 0) return;
    let data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    // Straight to the descriptor when nothing is queued in the stream (the
    // usual case: the client reads its replies); what the socket does not
    // take now, and any error, goes through the stream as before.
    if (this.sock.writableLength === 0 && this.fdLive()) {
      const n = sendNow(this.fd, data);
      if (n === data.length) { directIo.writes++; this.queuedEvents = 0; return; }
      if (n > 0) data = data.subarray(n);
    }
    const flushed = this.sock.write(data);
    if (flushed) this.queuedEvents = 0;
    if (!this.canTakeRequest() && !this.paused) {
      this.paused = true;
      this.sock.pause();
    }
  }

  fail(reason: string): void {
    this.host.log(`${this.describe()}: ${reason}; closing it`);
    this.sock.destroy();
    this.gone();
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.out = [];
    this.onGone(this);
  }

  close(): void {
    this.sock.destroy();
    this.gone();
  }
}
