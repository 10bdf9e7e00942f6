// The privcmd socket's protocol (shared/wire/privcmd.ts) against a real
// hypervisor, with the library's side played here over a Node socket and a
// made-up address space: hints, blocks sent with a call, READs answered,
// WRITEs applied, faults, Xen's checks (interface version, unknown sub-ops),
// multicall, and a broken peer closed alone.
import t from 'tap';
import * as net from 'node:net';
import { statSync } from 'node:fs';
import { startHost } from '../helpers/host.js';
import {
  FRAME_HEADER, FrameReader, PC_DATA, PC_FILE, PC_FILE_DATA, PC_HELLO, PC_HELLO_OK, PC_HYPERCALL, PC_KIND_MAIN, PC_PING, PC_PONG,
  PC_READ, PC_RET, PC_WRITE, PRIVCMD_PROTO_VERSION, frame,
} from '../../shared/wire/privcmd.js';
import { privcmdSocket } from '../../shared/xenctrl.js';
import {
  XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_getdomaininfo, decodeGetdomaininfo, xen_domctl, xen_domctl_getdomaininfo,
} from '../../shared/abi/domctl.js';
import { XEN_SYSCTL_INTERFACE_VERSION, XEN_SYSCTL_getdomaininfolist, xen_sysctl, xen_sysctl_getdomaininfolist } from '../../shared/abi/sysctl.js';
import { XENVER_version } from '../../shared/abi/version.js';
import { XENMEM_get_sharing_freed_pages } from '../../shared/abi/memory.js';
import {
  __HYPERVISOR_domctl, __HYPERVISOR_memory_op, __HYPERVISOR_multicall, __HYPERVISOR_sysctl, __HYPERVISOR_xen_version,
  __HYPERVISOR_xsm_op, multicall_entry,
} from '../../shared/abi/xen.js';
import { XEN_EACCES, XEN_EFAULT, XEN_ENOSYS } from '../../shared/abi/errno.js';

/** A made-up caller: memory regions at addresses, and the socket. */
class FakeCaller {
  private readonly reader = new FrameReader();
  private readonly waiting: ((f: { type: number; body: Buffer }) => void)[] = [];
  private readonly queued: { type: number; body: Buffer }[] = [];
  readonly regions = new Map<bigint, Buffer>();
  /** Addresses whose READ the caller answers with EFAULT. */
  readonly faulty = new Set<bigint>();
  closed = false;
  reads = 0;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.reader.push(d);
      for (let f = this.reader.next(); f; f = this.reader.next()) {
        const w = this.waiting.shift();
        if (w) w(f); else this.queued.push(f);
      }
    });
    sock.on('close', () => { this.closed = true; });
  }

  static async connect(path: string): Promise<FakeCaller> {
    const sock = net.connect(path);
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    return new FakeCaller(sock);
  }

  next(): Promise<{ type: number; body: Buffer }> {
    const q = this.queued.shift();
    return q ? Promise.resolve(q) : new Promise((resolve) => this.waiting.push(resolve));
  }

  async hello(): Promise<{ id: number; hints: { op: number; arg: number; len: number }[] }> {
    const b = Buffer.alloc(12);
    b.writeUInt32LE(PRIVCMD_PROTO_VERSION, 0);
    b.writeUInt32LE(PC_KIND_MAIN, 4);
    b.writeUInt32LE(process.pid, 8);
    this.sock.write(frame(PC_HELLO, b));
    const r = await this.next();
    if (r.type !== PC_HELLO_OK) throw new Error(`HELLO answered with ${r.type}`);
    const n = r.body.readUInt32LE(4);
    const hints = Array.from({ length: n }, (_, i) => ({
      op: r.body.readUInt32LE(8 + 12 * i), arg: r.body.readUInt32LE(12 + 12 * i), len: r.body.readUInt32LE(16 + 12 * i) }));
    return { id: r.body.readUInt32LE(0), hints };
  }

  /** One hypercall: sends it with `blocks` (addresses of regions), serves READs and WRITEs, resolves RET. */
  async call(op: number, args: bigint[], blocks: bigint[] = []): Promise<number> {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(48);
    head.writeBigUInt64LE(BigInt(op), 0);
    args.forEach((a, i) => head.writeBigUInt64LE(a, 8 + 8 * i));
    parts.push(head);
    const count = Buffer.alloc(4);
    count.writeUInt32LE(blocks.length);
    parts.push(count);
    for (const addr of blocks) {
      const data = this.regions.get(addr)!;
      const h = Buffer.alloc(12);
      h.writeBigUInt64LE(addr, 0);
      h.writeUInt32LE(data.length, 8);
      parts.push(h, data);
    }
    this.sock.write(frame(PC_HYPERCALL, Buffer.concat(parts)));
    for (;;) {
      const f = await this.next();
      if (f.type === PC_READ) {
        this.reads++;
        const addr = f.body.readBigUInt64LE(0);
        const len = f.body.readUInt32LE(8);
        const region = this.find(addr, len);
        const status = Buffer.alloc(8);
        if (!region || this.faulty.has(addr)) { status.writeUInt32LE(14, 0); this.sock.write(frame(PC_DATA, status)); continue; }
        this.sock.write(frame(PC_DATA, Buffer.concat([status, region.buf.subarray(region.off, region.off + len)])));
      } else if (f.type === PC_WRITE) {
        const addr = f.body.readBigUInt64LE(0);
        const data = f.body.subarray(8);
        const region = this.find(addr, data.length);
        if (!region) throw new Error(`WRITE of ${data.length} bytes at 0x${addr.toString(16)} outside the caller's memory`);
        data.copy(region.buf, region.off);
      } else if (f.type === PC_RET) {
        return Number(f.body.readBigInt64LE(0));
      } else {
        throw new Error(`unexpected frame ${f.type} during a call`);
      }
    }
  }

  private find(addr: bigint, len: number): { buf: Buffer; off: number } | null {
    for (const [base, buf] of this.regions) {
      const off = Number(addr - base);
      if (addr >= base && off + len <= buf.length) return { buf, off };
    }
    return null;
  }

  close(): void { this.sock.destroy(); }
}

function domctlStruct(cmd: number, domain: number, version = XEN_DOMCTL_INTERFACE_VERSION): Buffer {
  const b = Buffer.alloc(xen_domctl.SIZE);
  b.writeUInt32LE(cmd, xen_domctl.cmd);
  b.writeUInt32LE(version, xen_domctl.interface_version);
  b.writeUInt16LE(domain, xen_domctl.domain);
  return b;
}

const dv = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.byteLength);

t.test('the privcmd socket', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const path = privcmdSocket(h.rundir);
  t.equal(statSync(path).mode & 0o777, 0o600, 'reachable by root only (0600)');
  const c = await FakeCaller.connect(path);
  t.teardown(() => c.close());
  const hello = await c.hello();
  t.ok(hello.id > 0, 'HELLO_OK gives the connection an id');
  t.match(hello.hints, [{ op: __HYPERVISOR_domctl, arg: 0, len: xen_domctl.SIZE }], 'and the hints: struct xen_domctl at arg 0, 144 bytes');

  await t.test('a domctl whose struct came with the call: one round trip', async (t) => {
    const addr = 0x10000n;
    c.regions.set(addr, domctlStruct(XEN_DOMCTL_getdomaininfo, 0));
    const reads = c.reads;
    t.equal(await c.call(__HYPERVISOR_domctl, [addr], [addr]), 0, 'getdomaininfo of Domain-0: 0');
    t.equal(c.reads, reads, 'no READ was needed');
    const s = c.regions.get(addr)!;
    const info = decodeGetdomaininfo(dv(s), xen_domctl.u);
    t.equal(info.domain, 0, 'the struct came back with Domain-0\'s record');
    t.ok(info.tot_pages > 0 && info.max_pages >= info.tot_pages, `its pages: ${info.tot_pages} of ${info.max_pages}`);
  });

  await t.test('a struct that did not come is READ, then written back', async (t) => {
    const addr = 0x20000n;
    c.regions.set(addr, domctlStruct(XEN_DOMCTL_getdomaininfo, 0));
    const reads = c.reads;
    t.equal(await c.call(__HYPERVISOR_domctl, [addr]), 0, 'getdomaininfo: 0');
    t.equal(c.reads, reads + 1, 'one READ');
    t.ok(decodeGetdomaininfo(dv(c.regions.get(addr)!), xen_domctl.u).tot_pages > 0, 'the record written back');
    c.regions.set(addr, domctlStruct(XEN_DOMCTL_getdomaininfo, 1));
    t.equal(await c.call(__HYPERVISOR_domctl, [addr]), -3, 'above the last domain: -ESRCH');
    t.equal(decodeGetdomaininfo(dv(c.regions.get(addr)!), xen_domctl.u).tot_pages, 0, 'and nothing written');
  });

  await t.test("Xen's checks", async (t) => {
    const addr = 0x30000n;
    c.regions.set(addr, domctlStruct(XEN_DOMCTL_getdomaininfo, 0, 0x14));
    t.equal(await c.call(__HYPERVISOR_domctl, [addr], [addr]), -XEN_EACCES, 'another interface version: -EACCES');
    c.regions.set(addr, domctlStruct(999, 0));
    t.equal(await c.call(__HYPERVISOR_domctl, [addr], [addr]), -XEN_ENOSYS, 'an unknown domctl: -ENOSYS');
    t.equal(await c.call(__HYPERVISOR_xsm_op, [0n, 0n]), -XEN_ENOSYS, 'xsm_op: -ENOSYS (no XSM)');
    c.faulty.add(0x40000n);
    c.regions.set(0x40000n, Buffer.alloc(xen_domctl.SIZE));
    t.equal(await c.call(__HYPERVISOR_domctl, [0x40000n]), -XEN_EFAULT, 'a struct the caller cannot read: -EFAULT');
  });

  await t.test('getdomaininfolist writes through its handle', async (t) => {
    const addr = 0x50000n;
    const list = 0x60000n;
    const s = Buffer.alloc(xen_sysctl.SIZE);
    s.writeUInt32LE(XEN_SYSCTL_getdomaininfolist, xen_sysctl.cmd);
    s.writeUInt32LE(XEN_SYSCTL_INTERFACE_VERSION, xen_sysctl.interface_version);
    s.writeUInt32LE(16, xen_sysctl.u + xen_sysctl_getdomaininfolist.max_domains);
    s.writeBigUInt64LE(list, xen_sysctl.u + xen_sysctl_getdomaininfolist.buffer);
    c.regions.set(addr, s);
    c.regions.set(list, Buffer.alloc(16 * xen_domctl_getdomaininfo.SIZE, 0xee));
    t.ok(await c.call(__HYPERVISOR_sysctl, [addr], [addr]) >= 0, 'sysctl getdomaininfolist');
    t.equal(c.regions.get(addr)!.readUInt32LE(xen_sysctl.u + xen_sysctl_getdomaininfolist.num_domains), 1, 'num_domains: 1');
    t.equal(decodeGetdomaininfo(dv(c.regions.get(list)!), 0).domain, 0, 'Domain-0\'s record in the caller\'s buffer');
    t.equal(c.regions.get(list)![xen_domctl_getdomaininfo.SIZE], 0xee, 'and nothing past it');
  });

  await t.test('multicall: each entry run, its result written into it', async (t) => {
    const addr = 0x70000n;
    const e = Buffer.alloc(2 * multicall_entry.SIZE);
    e.writeBigUInt64LE(BigInt(__HYPERVISOR_xen_version), multicall_entry.op);
    e.writeBigUInt64LE(BigInt(XENVER_version), multicall_entry.args);
    e.writeBigUInt64LE(BigInt(__HYPERVISOR_memory_op), multicall_entry.SIZE + multicall_entry.op);
    e.writeBigUInt64LE(BigInt(XENMEM_get_sharing_freed_pages), multicall_entry.SIZE + multicall_entry.args);
    c.regions.set(addr, e);
    t.equal(await c.call(__HYPERVISOR_multicall, [addr, 2n], [addr]), 0, 'multicall of two: 0');
    t.equal(Number(e.readBigInt64LE(multicall_entry.result)), (4 << 16) | 17, 'xen_version: 4.17');
    t.equal(Number(e.readBigInt64LE(multicall_entry.SIZE + multicall_entry.result)), 0, 'sharing freed pages: 0');
  });

  await t.test('virtual files and the echo', async (t) => {
    c.sock.write(frame(PC_FILE, Buffer.from('/proc/xen/capabilities')));
    const f = await c.next();
    t.equal(f.type, PC_FILE_DATA, 'FILE answered');
    t.equal(f.body.subarray(4).toString(), 'control_d\n', '/proc/xen/capabilities: control_d');
    c.sock.write(frame(PC_FILE, Buffer.from('/proc/xen/nosuch')));
    t.equal((await c.next()).body.readInt32LE(0), 2, 'anything else: ENOENT');
    c.sock.write(frame(PC_PING, Buffer.from('abc')));
    const p = await c.next();
    t.same([p.type, p.body.toString()], [PC_PONG, 'abc'], 'PING comes back as PONG');
  });

  await t.test('a broken peer is closed, alone', async (t) => {
    const before = await FakeCaller.connect(path);
    t.teardown(() => before.close());
    before.sock.write(frame(PC_HYPERCALL, Buffer.alloc(48)));
    await new Promise<void>((r) => before.sock.once('close', () => r()));
    t.ok(before.closed, 'a call before HELLO closes the connection');
    const big = await FakeCaller.connect(path);
    t.teardown(() => big.close());
    const hdr = Buffer.alloc(FRAME_HEADER);
    hdr.writeUInt32LE(64 << 20, 0);
    hdr.writeUInt32LE(PC_HYPERCALL, 4);
    big.sock.write(hdr);
    await new Promise<void>((r) => big.sock.once('close', () => r()));
    t.ok(big.closed, 'a frame over FRAME_MAX closes it');
    const addr = 0x80000n;
    c.regions.set(addr, domctlStruct(XEN_DOMCTL_getdomaininfo, 0));
    t.equal(await c.call(__HYPERVISOR_domctl, [addr], [addr]), 0, 'the first connection still works');
  });
});
