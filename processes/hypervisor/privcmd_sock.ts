// The privcmd socket: Domain-0's programs written for Xen (libxenctrl, xl,
// xentop, Xen's xenstored), through xenemu's LD_PRELOAD library, make
// hypercalls here as Domain-0. <rundir>/privcmd.sock, a Unix stream socket
// reachable by root only (mode 0600), as Linux's /dev/xen/privcmd gives any
// root process of Domain-0 the right to make hypercalls as Domain-0.
//
// The protocol (frames, hints, the caller's memory) is shared/wire/privcmd.ts;
// the structs are decoded by xen_hypercall.ts into the one hypercall table.
// A connection of kind MAIN is one process's hypercalls and ioctls, served
// one at a time in order; a connection of kind EVTCHN is one open of
// /dev/xen/evtchn (evtchn_dev.ts). The ZeroMQ endpoint (privcmd.ts) carries
// xenemu's own msgpack encoding of the same calls.
import * as net from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  FrameReader, PC_DATA, PC_DATA_OK, PC_DEV_EVTCHN, PC_DEV_GNTDEV, PC_FILE, PC_HELLO, PC_HYPERCALL, PC_IOCTL,
  PC_KIND_EVTCHN, PC_KIND_MAIN, PC_MESSAGE, PC_PING, PC_PONG, PRIVCMD_PROTO_VERSION, PRIVCMD_SOCKET, fileDataFrame, frame,
  helloOkFrame, parseBlocks, readFrame, retFrame, writeFrame, type MemBlock,
} from '../../shared/wire/privcmd.js';
import { _IOC_SIZE, LINUX_ENOTTY } from '../../shared/abi/sys/privcmd.js';
import { IOCTL_GNTDEV_SET_MAX_GRANTS } from '../../shared/abi/sys/gntdev.js';
import { EVTCHNOP_alloc_unbound } from '../../shared/abi/event_channel.js';
import { __HYPERVISOR_event_channel_op, DOMID_SELF } from '../../shared/abi/xen.js';
import { XEN_EFAULT, XEN_EINVAL, XEN_ENOENT, XEN_EOPNOTSUPP, XEN_ESRCH } from '../../shared/abi/errno.js';
import { PREFETCH_HINTS, xenHypercall, type GuestMemory } from './xen_hypercall.js';
import { EvtchnFile } from './evtchn_dev.js';
import { dispatch } from './hypercall.js';
import type { Hypervisor } from './hypervisor.js';

export class PrivcmdSocket {
  readonly path: string;
  private server: net.Server | null = null;
  private readonly conns = new Set<Conn>();
  private nextId = 1;
  readonly evtchnFiles = new Map<number, EvtchnFile>();
  /** Domain-0's xenstore port (/proc/xen/xsd_port), made on first ask. */
  private xsdPort = 0;
  private readonly warned = new Set<string>();

  constructor(readonly hv: Hypervisor) {
    this.path = join(hv.rundir, PRIVCMD_SOCKET);
  }

  async start(): Promise<void> {
    try { unlinkSync(this.path); } catch { /* not there */ }
    const server = net.createServer((s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => { server.off('error', reject); resolve(); });
    });
    chmodSync(this.path, 0o600);
  }

  close(): void {
    for (const c of this.conns) c.end();
    this.server?.close();
    this.server = null;
    try { unlinkSync(this.path); } catch { /* gone */ }
  }

  newId(): number { return this.nextId++; }

  forget(c: Conn): void { this.conns.delete(c); }

  warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.hv.console.log(`privcmd: ${msg}`);
  }

  /**
   * What a virtual file of Domain-0 holds, or a negative errno: the library
   * presents /proc/xen/* with these contents.
   */
  file(path: string): Buffer | number {
    switch (path) {
      case '/proc/xen/capabilities':
        return Buffer.from('control_d\n');
      case '/proc/xen/xsd_port': {
        const port = this.xenstorePort();
        return port < 0 ? port : Buffer.from(`${port}`);
      }
      case '/proc/uptime':
        return this.uptime();
      default:
        return -XEN_ENOENT;
    }
  }

  /**
   * Domain-0's /proc/uptime: seconds since Domain-0 was made (the host's
   * boot, which `xl uptime` shows for Domain-0), and the pCPUs' idle
   * seconds (their time less every domain's CPU time).
   */
  private uptime(): Buffer | number {
    const d0 = this.hv.domains.get(0);
    if (!d0) return -XEN_ESRCH;
    const up = Number(process.hrtime.bigint() - d0.created) / 1e9;
    let busy = 0;
    for (const d of this.hv.domains.values()) busy += (d.sched ? d.sched.cpuTimeNs(d) : d.cpuTimeNs()) / 1e9;
    return Buffer.from(`${up.toFixed(2)} ${Math.max(0, up * this.hv.pcpus - busy).toFixed(2)}\n`);
  }

  /**
   * A port of Domain-0 left unbound for Domain-0, as Linux's xenbus makes
   * xen_store_evtchn when xenstored runs in Domain-0: Xen's xenstored binds
   * it for Domain-0's ring. Made once; made again if it was closed.
   */
  private xenstorePort(): number {
    const d0 = this.hv.domains.get(0);
    if (!d0) return -XEN_ESRCH;
    const chn = this.xsdPort ? d0.ports[this.xsdPort] : undefined;
    if (chn && (chn.state === 'unbound' || chn.state === 'interdomain') && chn.remoteDom === 0) return this.xsdPort;
    const r = dispatch(this.hv, d0, __HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound, { dom: DOMID_SELF, remote_dom: 0 });
    if (r.ret < 0) return r.ret;
    this.xsdPort = (r.data as { port: number }).port;
    return this.xsdPort;
  }

  private accept(s: net.Socket): void {
    const c = new Conn(this, s);
    this.conns.add(c);
  }
}

/** One connection: a process's hypercalls (MAIN) or one evtchn file (EVTCHN). */
class Conn {
  private kind = 0;
  private readonly reader = new FrameReader();
  private busy = false;
  private out: Buffer[] = [];
  private pendingRead: ((b: Buffer | null) => void) | null = null;
  private evtchn: EvtchnFile | null = null;
  /** EVTCHN: bytes of a port the program wrote in pieces. */
  private partial: Buffer = Buffer.alloc(0);
  private gone = false;

  constructor(private readonly pc: PrivcmdSocket, private readonly sock: net.Socket) {
    sock.setNoDelay?.(true);
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', () => { /* the close follows */ });
    sock.on('close', () => this.onClose());
  }

  end(): void { this.sock.destroy(); }

  private onClose(): void {
    this.gone = true;
    this.pc.forget(this);
    this.pendingRead?.(null);
    this.pendingRead = null;
    if (this.evtchn) {
      this.pc.evtchnFiles.delete(this.evtchn.id);
      this.evtchn.close();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.kind === PC_KIND_EVTCHN) { this.onPorts(chunk); return; }
    try {
      this.reader.push(chunk);
      for (let f = this.reader.next(); f; f = this.reader.next()) {
        this.onFrame(f.type, f.body);
        if (this.kind === PC_KIND_EVTCHN) {
          // What followed the HELLO is the program's first writes.
          const rest = this.reader.rest();
          if (rest.length) this.onPorts(rest);
          return;
        }
      }
    } catch (err) {
      this.protocolError((err as Error).message);
    }
  }

  /** The program wrote ports to its evtchn file: each is unmasked. */
  private onPorts(chunk: Buffer): void {
    const buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    let off = 0;
    for (; off + 4 <= buf.length; off += 4) this.evtchn?.unmask(buf.readUInt32LE(off));
    this.partial = buf.subarray(off);
  }

  private protocolError(why: string): void {
    this.pc.warnOnce(`proto:${why}`, `closing a connection: ${why}`);
    this.sock.destroy();
  }

  private onFrame(type: number, body: Buffer): void {
    switch (type) {
      case PC_HELLO: return this.onHello(body);
      case PC_HYPERCALL: return this.startCall(() => this.hypercall(body));
      case PC_IOCTL: return this.startCall(() => this.ioctl(body));
      case PC_DATA: {
        const r = this.pendingRead;
        this.pendingRead = null;
        if (!r) return this.protocolError('DATA without a READ');
        r(body.length >= 8 && body.readUInt32LE(0) === PC_DATA_OK ? body.subarray(8) : null);
        return;
      }
      case PC_FILE: {
        const content = this.pc.file(body.toString('utf8'));
        this.sock.write(typeof content === 'number' ? fileDataFrame(-content, null) : fileDataFrame(0, content));
        return;
      }
      case PC_PING:
        this.sock.write(frame(PC_PONG, body));
        return;
      default:
        return this.protocolError(`frame type ${type}`);
    }
  }

  private onHello(body: Buffer): void {
    if (this.kind !== 0 || body.length < 12) return this.protocolError('bad HELLO');
    if (body.readUInt32LE(0) !== PRIVCMD_PROTO_VERSION) return this.protocolError(`protocol version ${body.readUInt32LE(0)}`);
    const kind = body.readUInt32LE(4);
    const id = this.pc.newId();
    if (kind === PC_KIND_MAIN) {
      this.kind = kind;
      this.sock.write(helloOkFrame(id, PREFETCH_HINTS));
    } else if (kind === PC_KIND_EVTCHN) {
      const d0 = this.pc.hv.domains.get(0);
      if (!d0) return this.protocolError('no Domain-0');
      this.kind = kind;
      this.evtchn = new EvtchnFile(this.pc.hv, d0, id, (b) => { if (!this.gone) this.sock.write(b); });
      this.pc.evtchnFiles.set(id, this.evtchn);
      this.sock.write(helloOkFrame(id, []));
    } else {
      this.protocolError(`HELLO kind ${kind}`);
    }
  }

  /** Calls of one connection run one at a time: the library waits for each RET. */
  private startCall(run: () => Promise<number>): void {
    if (this.kind !== PC_KIND_MAIN) return this.protocolError('a call before HELLO');
    if (this.busy) return this.protocolError('a call while one is running');
    this.busy = true;
    void run().then((ret) => {
      this.busy = false;
      this.flush(retFrame(ret));
    });
  }

  private flush(last: Buffer | null): void {
    if (last) this.out.push(last);
    if (this.gone || this.out.length === 0) { this.out = []; return; }
    this.sock.write(this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out));
    this.out = [];
  }

  private memory(blocks: MemBlock[]): GuestMemory {
    return {
      read: (addr, len) => {
        // The blocks are this call's own copy (its frame): the decoders may write into what they get.
        for (const b of blocks) {
          const start = addr - b.addr;
          if (start >= 0n && start + BigInt(len) <= BigInt(b.data.length)) {
            return Promise.resolve(b.data.subarray(Number(start), Number(start) + len));
          }
        }
        if (this.gone) return Promise.resolve(null);
        if (len > 1 << 20) return Promise.resolve(null);
        return new Promise((resolve) => {
          this.pendingRead = resolve;
          this.flush(readFrame(addr, len));
        });
      },
      tell: (text) => { this.out.push(frame(PC_MESSAGE, Buffer.from(text))); },
      write: (addr, data) => {
        this.out.push(writeFrame(addr, data));
        // Later reads of the same bytes see what was written.
        for (const b of blocks) {
          const start = addr - b.addr;
          const end = start + BigInt(data.length);
          if (end <= 0n || start >= BigInt(b.data.length)) continue;
          const from = start < 0n ? Number(-start) : 0;
          const to = Number(start < 0n ? 0n : start);
          b.data.set(data.subarray(from, from + Math.min(data.length - from, b.data.length - to)), to);
        }
      },
    };
  }

  private async hypercall(body: Buffer): Promise<number> {
    if (body.length < 48) return -XEN_EINVAL;
    const op = Number(body.readBigUInt64LE(0));
    const args: bigint[] = [];
    for (let i = 0; i < 5; i++) args.push(body.readBigUInt64LE(8 + 8 * i));
    const blocks = parseBlocks(body, 48);
    if (!blocks) return -XEN_EINVAL;
    const d0 = this.pc.hv.domains.get(0);
    if (!d0) return -XEN_ESRCH;
    return xenHypercall(this.pc.hv, d0, op, args, this.memory(blocks));
  }

  private async ioctl(body: Buffer): Promise<number> {
    if (body.length < 24) return -XEN_EINVAL;
    const dev = body.readUInt32LE(0);
    const file = body.readUInt32LE(4);
    const cmd = body.readUInt32LE(8);
    const addr = body.readBigUInt64LE(16);
    const blocks = parseBlocks(body, 24);
    if (!blocks) return -XEN_EINVAL;
    const size = _IOC_SIZE(cmd);
    const arg = size ? await this.memory(blocks).read(addr, size) : Buffer.alloc(0);
    if (!arg) return -XEN_EFAULT;
    switch (dev) {
      case PC_DEV_EVTCHN: {
        const f = this.pc.evtchnFiles.get(file);
        return f ? f.ioctl(cmd, arg) : -XEN_EINVAL;
      }
      case PC_DEV_GNTDEV:
        // libxengnttab's set_max_grants is all Xen's xenstored asks before it
        // maps a guest's ring; mapping grants into a C program is not done.
        if (cmd === IOCTL_GNTDEV_SET_MAX_GRANTS) return 0;
        this.pc.warnOnce(`gntdev:${cmd}`, `gntdev ioctl 0x${cmd.toString(16)} is not supported: EOPNOTSUPP`);
        return -XEN_EOPNOTSUPP;
      default:
        return -LINUX_ENOTTY;
    }
  }
}
