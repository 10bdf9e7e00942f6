// Unix socket transport (DESIGN.md: Domain-0 tools and any real Xen client,
// found through XENSTORED_PATH). Socket clients are Domain-0: privileged.
import type { Socket } from 'node:net';
import { Connection, type ConnectionHost } from './connection.js';

/** Bytes unread by the client before we stop reading its requests. */
const HIGH_WATER = 1 << 20;
/** Watch events kept for a client that does not read. */
const EVENT_LIMIT = 4096;

export class SocketConnection extends Connection {
  private readonly sock: Socket;
  private paused = false;
  private readonly onGone: (c: SocketConnection) => void;

  constructor(host: ConnectionHost, sock: Socket, onGone: (c: SocketConnection) => void) {
    super(host, 0, true);
    this.sock = sock;
    this.onGone = onGone;
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

  protected canTakeRequest(): boolean {
    return this.sock.writableLength + this.out.length * 64 < HIGH_WATER;
  }

  protected get eventLimit(): number {
    return this.sock.writableLength > HIGH_WATER ? 0 : EVENT_LIMIT;
  }

  flush(): void {
    if (this.closed || this.out.length === 0) return;
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
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
