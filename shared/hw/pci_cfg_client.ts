// The client of a host PCI device's configuration space socket,
// <rundir>/pci/<bdf>.cfg (processes/pcidev/config_server.ts has the
// protocol): one connection per user (pciback, qemu-dm's xen_pt), requests
// answered in order, each with a timeout, as pcifront's do_pci_op waits at
// most XEN_PCIF_OP_TIMEOUT.
//
//   request, 12 bytes LE   u32 seq; u8 op (0 read, 1 write, 2 reset); u8 size; u16 offset; u32 value
//   reply, 12 bytes LE     u32 seq; i32 err (0 or -errno); u32 value
import { connect, type Socket } from 'node:net';

export const PCI_CFG_OP_READ = 0;
export const PCI_CFG_OP_WRITE = 1;
export const PCI_CFG_OP_RESET = 2;
const MSG = 12;

/** A refused request (`errno` negative, Xen's values), a timeout (-ETIMEDOUT 110) or a closed socket (-EPIPE 32). */
export class PciCfgError extends Error {
  constructor(readonly errno: number, what: string) { super(`${what}: ${errno}`); }
}
const ETIMEDOUT = 110;
const EPIPE = 32;

interface Pending { resolve(v: number): void; reject(e: Error): void; timer: NodeJS.Timeout; what: string }

export class PciCfgClient {
  private readonly pending = new Map<number, Pending>();
  private seq = 1;
  private buf: Buffer = Buffer.alloc(0);
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('close', () => this.fail('socket closed'));
    sock.on('error', () => this.fail('socket error'));
  }

  /** Connects to `path` (<rundir>/pci/<bdf>.cfg) within timeoutMs. */
  static connect(path: string, timeoutMs = 5000): Promise<PciCfgClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const timer = setTimeout(() => { s.destroy(); reject(new PciCfgError(-ETIMEDOUT, `connect ${path}`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(timer); resolve(new PciCfgClient(s)); });
      s.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  read(offset: number, size: 1 | 2 | 4, timeoutMs = 5000): Promise<number> {
    return this.request(PCI_CFG_OP_READ, size, offset, 0, timeoutMs);
  }

  async write(offset: number, size: 1 | 2 | 4, value: number, timeoutMs = 5000): Promise<void> {
    await this.request(PCI_CFG_OP_WRITE, size, offset, value, timeoutMs);
  }

  /** Function level reset. */
  async reset(timeoutMs = 5000): Promise<void> {
    await this.request(PCI_CFG_OP_RESET, 4, 0, 0, timeoutMs);
  }

  /** One request as given (no checks here: the device judges); resolves to the value, rejects with PciCfgError. */
  request(op: number, size: number, offset: number, value: number, timeoutMs: number): Promise<number> {
    const what = `config ${op === PCI_CFG_OP_READ ? 'read' : op === PCI_CFG_OP_WRITE ? 'write' : op === PCI_CFG_OP_RESET ? 'reset' : `op ${op}`} ` +
                 `0x${offset.toString(16)}/${size}`;
    if (this.closed) return Promise.reject(new PciCfgError(-EPIPE, what));
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0 || 1;
    const b = Buffer.alloc(MSG);
    b.writeUInt32LE(seq, 0);
    b.writeUInt8(op & 0xff, 4);
    b.writeUInt8(size & 0xff, 5);
    b.writeUInt16LE(offset & 0xffff, 6);
    b.writeUInt32LE(value >>> 0, 8);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(seq); reject(new PciCfgError(-ETIMEDOUT, what)); }, timeoutMs);
      this.pending.set(seq, { resolve, reject, timer, what });
      this.sock.write(b);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= MSG) {
      const seq = this.buf.readUInt32LE(0);
      const err = this.buf.readInt32LE(4);
      const value = this.buf.readUInt32LE(8);
      this.buf = this.buf.subarray(MSG);
      const p = this.pending.get(seq);
      if (!p) continue; // answered after its timeout
      this.pending.delete(seq);
      clearTimeout(p.timer);
      if (err < 0) p.reject(new PciCfgError(err, p.what)); else p.resolve(value);
    }
  }

  private fail(why: string): void {
    this.closed = true;
    for (const [seq, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(seq);
      p.reject(new PciCfgError(-EPIPE, `${p.what} (${why})`));
    }
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
