// A raw xs_wire peer for tests that must send what no well-behaved client
// would: broken headers, split frames, unterminated strings.
import { connect, type Socket } from 'node:net';
import { XSD_SOCKMSG_SIZE, encodeMsg } from '../../shared/abi/io/xs_wire.js';

export interface RawMsg { type: number; reqId: number; txId: number; payload: Buffer }

export class RawXs {
  readonly sock: Socket;
  private buf = Buffer.alloc(0);
  private readonly queue: RawMsg[] = [];
  private waiters: Array<(m: RawMsg | null) => void> = [];
  closed = false;
  readonly closedP: Promise<void>;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= XSD_SOCKMSG_SIZE) {
        const len = this.buf.readUInt32LE(12);
        if (this.buf.length < XSD_SOCKMSG_SIZE + len) break;
        const m: RawMsg = {
          type: this.buf.readUInt32LE(0), reqId: this.buf.readUInt32LE(4), txId: this.buf.readUInt32LE(8),
          payload: Buffer.from(this.buf.subarray(XSD_SOCKMSG_SIZE, XSD_SOCKMSG_SIZE + len)),
        };
        this.buf = this.buf.subarray(XSD_SOCKMSG_SIZE + len);
        const w = this.waiters.shift();
        if (w) w(m); else this.queue.push(m);
      }
    });
    this.closedP = new Promise((resolve) => sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters) w(null);
      this.waiters = [];
      resolve();
    }));
    sock.on('error', () => undefined);
  }

  static open(path: string): Promise<RawXs> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('error', reject);
      s.once('connect', () => resolve(new RawXs(s)));
    });
  }

  send(type: number, payload: Buffer | string, reqId = 1, txId = 0): void {
    this.sock.write(encodeMsg(type, reqId, txId, typeof payload === 'string' ? Buffer.from(payload) : payload));
  }

  sendBytes(b: Buffer): void {
    this.sock.write(b);
  }

  /** The next message, or null if the connection closed first. */
  next(timeoutMs = 5000): Promise<RawMsg | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message from xenstored')), timeoutMs);
      this.waiters.push((v) => { clearTimeout(timer); resolve(v); });
    });
  }

  /** Sends and returns the reply, as [type name or 'ERROR', payload text]. */
  async call(type: number, payload: Buffer | string, reqId = 1, txId = 0): Promise<RawMsg> {
    this.send(type, payload, reqId, txId);
    const m = await this.next();
    if (!m) throw new Error('connection closed');
    return m;
  }

  close(): void {
    this.sock.destroy();
  }
}

export function text(m: RawMsg | null): string {
  return m ? m.payload.toString('utf8') : '<closed>';
}
