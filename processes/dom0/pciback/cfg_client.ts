// Domain-0's client of a device's configuration-space socket
// (shared/wire/pci_cfg.ts): requests may overlap, replies are matched by
// seq, every request has a deadline (a device process that stopped answering
// fails the access with ETIMEDOUT instead of holding pciback), and a closed
// connection fails what was pending with ENODEV and is opened again by the
// next request.
import * as net from 'node:net';
import { XEN_ENODEV, XEN_ETIMEDOUT } from '../../../shared/abi/errno.js';
import {
  PCI_CFG_OP_READ, PCI_CFG_OP_RESET, PCI_CFG_OP_WRITE, PCI_CFG_RECORD, decodePciCfgReply, encodePciCfgRequest,
} from '../../../shared/wire/pci_cfg.js';
import { ConfigSpaceError, type ConfigSpace } from './conf_space.js';

/** How long one access may take the device (Linux pcifront gives an op 2 s in all). */
export const PCI_CFG_TIMEOUT_MS = 1000;

interface Pending { resolve(v: number): void; reject(e: Error): void; timer: NodeJS.Timeout }

export class PciCfgClient implements ConfigSpace {
  private sock: net.Socket | undefined;
  private connecting: Promise<net.Socket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private seq = 1;
  private buf: Buffer = Buffer.alloc(0);
  private closed = false;

  constructor(readonly path: string, private readonly timeoutMs = PCI_CFG_TIMEOUT_MS) {}

  read(offset: number, size: 1 | 2 | 4): Promise<number> { return this.request(PCI_CFG_OP_READ, size, offset, 0); }
  async write(offset: number, size: 1 | 2 | 4, value: number): Promise<void> { await this.request(PCI_CFG_OP_WRITE, size, offset, value); }
  /** Function-level reset: nothing of one owner reaches the next. */
  async reset(): Promise<void> { await this.request(PCI_CFG_OP_RESET, 0, 0, 0); }

  private connect(): Promise<net.Socket> {
    if (this.sock) return Promise.resolve(this.sock);
    this.connecting ??= new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(this.path);
      const fail = (e: Error) => { this.connecting = undefined; reject(new ConfigSpaceError(-XEN_ENODEV, `${this.path}: ${e.message}`)); };
      s.once('error', fail);
      s.once('connect', () => {
        s.off('error', fail);
        this.connecting = undefined;
        this.sock = s;
        this.buf = Buffer.alloc(0);
        s.on('data', (d: Buffer) => this.data(d));
        s.on('error', () => undefined);
        s.on('close', () => { if (this.sock === s) this.sock = undefined; this.failAll(`${this.path}: connection closed`); });
        resolve(s);
      });
    });
    return this.connecting;
  }

  private data(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let o = 0;
    for (; o + PCI_CFG_RECORD <= this.buf.length; o += PCI_CFG_RECORD) {
      const r = decodePciCfgReply(this.buf, o);
      const p = this.pending.get(r.seq);
      if (!p) continue;
      this.pending.delete(r.seq);
      clearTimeout(p.timer);
      if (r.err < 0) p.reject(new ConfigSpaceError(r.err, `${this.path}: the device refused the access (${r.err})`));
      else p.resolve(r.value >>> 0);
    }
    this.buf = this.buf.subarray(o);
  }

  private failAll(why: string): void {
    for (const [seq, p] of this.pending) { clearTimeout(p.timer); p.reject(new ConfigSpaceError(-XEN_ENODEV, why)); this.pending.delete(seq); }
  }

  private async request(op: number, size: number, offset: number, value: number): Promise<number> {
    if (this.closed) throw new ConfigSpaceError(-XEN_ENODEV, `${this.path}: closed`);
    const s = await this.connect();
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0 || 1;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new ConfigSpaceError(-XEN_ETIMEDOUT, `${this.path}: no answer in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(seq, { resolve, reject, timer });
      s.write(encodePciCfgRequest({ seq, op, size, offset, value }));
    });
  }

  close(): void {
    this.closed = true;
    this.failAll(`${this.path}: closed`);
    this.sock?.destroy();
    this.sock = undefined;
  }
}
