// Xen's own hypercall encoding: the binary structs of xen/include/public
// that Xen's C tools (libxenctrl, libxl, xentop, xenstored) pass through
// privcmd, decoded byte for byte into the calls of the one hypercall table
// (hypercall.ts), whose dispatcher checks privilege for both encodings, and
// the results encoded back (docs/xenctrl.md).
//
//   HYPERVISOR_domctl(struct xen_domctl *)          read 144 bytes, version check (-EACCES),
//                                                   decode u per cmd, dispatch, copy back
//   HYPERVISOR_sysctl(struct xen_sysctl *)          the same with 136 bytes
//   HYPERVISOR_xen_version(cmd, void *)             dispatch, write the answer's buffer
//   HYPERVISOR_multicall(multicall_entry_t *, n)    each entry through this file, result written back
//   HYPERVISOR_memory_op(cmd, void *)               the commands below
//   HYPERVISOR_event_channel_op(cmd, void *)        event_channel.h's structs
//   HYPERVISOR_physdev_op(cmd, void *)              physdev.h's: map_pirq, unmap_pirq, eoi
//
// Guest memory is reached only through GuestMemory: read() is Xen's
// copy_from_guest (null when the address faults: -EFAULT), write() its
// copy_to_guest. Every struct is read once, checked and acted on as read
// (docs/style.md rule 6). A sub-op with no decoder here answers -ENOSYS and
// is logged once, so a tool that needs more says what.
import * as DC from '../../shared/abi/domctl.js';
import * as SC from '../../shared/abi/sysctl.js';
import * as E from '../../shared/abi/event_channel.js';
import * as M from '../../shared/abi/memory.js';
import * as V from '../../shared/abi/version.js';
import * as PD from '../../shared/abi/physdev.js';
import {
  __HYPERVISOR_domctl, __HYPERVISOR_event_channel_op, __HYPERVISOR_memory_op, __HYPERVISOR_multicall,
  __HYPERVISOR_physdev_op, __HYPERVISOR_sysctl, __HYPERVISOR_xen_version, __HYPERVISOR_xsm_op, multicall_entry, xenctl_bitmap, XEN_DOMAIN_HANDLE_SIZE,
} from '../../shared/abi/xen.js';
import { XEN_EACCES, XEN_EFAULT, XEN_EINVAL, XEN_ENOSYS, XEN_EOPNOTSUPP, errnoName } from '../../shared/abi/errno.js';
import { dispatch } from './hypercall.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';

/** The calling program, as the privcmd transport reaches it: its memory, and its stderr. */
export interface GuestMemory {
  /** copy_from_guest: `len` bytes at `addr`, or null when they fault. */
  read(addr: bigint, len: number): Promise<Buffer | null>;
  /** copy_to_guest: done in order before the call returns; a fault makes its result -EFAULT. */
  write(addr: bigint, data: Uint8Array): void;
  /** A line for the program's stderr, saying why a call is refused. */
  tell(text: string): void;
}

interface Ctx { hv: Hypervisor; caller: Domain; mem: GuestMemory }

type BinaryOp = (c: Ctx, args: readonly bigint[]) => Promise<number>;

/** For each hypercall with a struct: which argument points at it and how many bytes to send with the call. */
export const PREFETCH_HINTS = [
  { op: __HYPERVISOR_domctl, arg: 0, len: DC.xen_domctl.SIZE },
  { op: __HYPERVISOR_sysctl, arg: 0, len: SC.xen_sysctl.SIZE },
  { op: __HYPERVISOR_multicall, arg: 0, len: multicall_entry.SIZE },
  { op: __HYPERVISOR_event_channel_op, arg: 1, len: E.evtchn_status.SIZE },
  { op: __HYPERVISOR_xen_version, arg: 1, len: V.xen_feature_info.SIZE },
] as const;

const logged = new Set<string>();
function unimplemented(c: Ctx, what: string): number {
  if (!logged.has(what)) {
    logged.add(what);
    c.hv.console.log(`privcmd: ${what} is not implemented: ${errnoName(XEN_ENOSYS)}`);
  }
  return -XEN_ENOSYS;
}

const dv = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const ptr = (v: bigint | undefined) => v ?? 0n;

/** Runs one hypercall of Xen's encoding as `caller`; the return value Xen would give. */
export async function xenHypercall(hv: Hypervisor, caller: Domain, op: number, args: readonly bigint[],
                                   mem: GuestMemory): Promise<number> {
  const c: Ctx = { hv, caller, mem };
  const f = BINARY_OPS[op];
  if (!f) return unimplemented(c, `hypercall ${op}`);
  try {
    return await f(c, args);
  } catch (err) {
    hv.console.log(`BUG: privcmd hypercall ${op} threw: ${(err as Error).stack ?? err}`);
    return -XEN_EFAULT;
  }
}

// ---- xenctl_bitmap (xen.h) ---------------------------------------------------

/** xenctl_bitmap_to_bitmap: the guest's bitmap bytes, at most `nr_bits` bits. */
async function readBitmap(mem: GuestMemory, d: DataView, off: number): Promise<DC.xenctl_bitmap | null> {
  const handle = d.getBigUint64(off + xenctl_bitmap.bitmap, true);
  const nrBits = d.getUint32(off + xenctl_bitmap.nr_bits, true);
  const bytes = Math.min(Math.ceil(nrBits / 8), 4096);
  if (bytes === 0) return { bitmap: [], nr_bits: 0 };
  const b = await mem.read(handle, bytes);
  return b ? { bitmap: [...b], nr_bits: nrBits } : null;
}

/**
 * cpumask_to_xenctl_bitmap: as many bytes as the guest's nr_bits holds; the
 * bits beyond what the hypervisor has are zero.
 */
function writeBitmap(mem: GuestMemory, d: DataView, off: number, src: DC.xenctl_bitmap | undefined): void {
  const handle = d.getBigUint64(off + xenctl_bitmap.bitmap, true);
  const guestBytes = Math.min(Math.ceil(d.getUint32(off + xenctl_bitmap.nr_bits, true) / 8), 4096);
  if (guestBytes === 0 || handle === 0n) return;
  const out = new Uint8Array(guestBytes);
  const srcBytes = Math.ceil((src?.nr_bits ?? 0) / 8);
  for (let i = 0; i < Math.min(guestBytes, srcBytes); i++) out[i] = Number(src!.bitmap[i] ?? 0) & 0xff;
  const lastBits = (src?.nr_bits ?? 0) % 8;
  if (lastBits && srcBytes <= guestBytes && srcBytes > 0) out[srcBytes - 1]! &= (1 << lastBits) - 1;
  mem.write(handle, out);
}

// ---- domctl ------------------------------------------------------------------

interface DomctlCodec {
  /** The table's argument, from the struct's union `u` at offset 16; a number is an error to return. */
  decode(u: DataView, c: Ctx): Promise<Record<string, unknown> | number> | Record<string, unknown> | number;
  /** Writes the answer into the struct; true: copy the struct back (Xen's copyback). */
  encode?(d: DataView, data: unknown, c: Ctx): boolean;
}

const U = DC.xen_domctl.u;
const none: DomctlCodec = { decode: () => ({}) };

const assignDevice: DomctlCodec = {
  decode: (u) => ({
    dev: u.getUint32(DC.xen_domctl_assign_device.dev, true), flags: u.getUint32(DC.xen_domctl_assign_device.flags, true),
    machine_sbdf: u.getUint32(DC.xen_domctl_assign_device.u, true),
  }),
};
const bindPtIrq: DomctlCodec = {
  // u.pci {u8 bus, device, intx} for PT_IRQ_TYPE_PCI (the guest's device and pin);
  // u.msi {u8 gvec; u32 gflags; uint64_aligned_t gtable} for PT_IRQ_TYPE_MSI.
  decode: (u) => {
    const o = DC.xen_domctl_bind_pt_irq.u;
    return {
      machine_irq: u.getUint32(DC.xen_domctl_bind_pt_irq.machine_irq, true), irq_type: u.getUint32(DC.xen_domctl_bind_pt_irq.irq_type, true),
      bus: u.getUint8(o), device: u.getUint8(o + 1), intx: u.getUint8(o + 2),
      gvec: u.getUint8(o), gflags: u.getUint32(o + 4, true), gtable: Number(u.getBigUint64(o + 8, true)),
    };
  },
};

const DOMCTL: Record<number, DomctlCodec> = {
  // PCI passthrough (pci_domctl.ts): all IN.
  [DC.XEN_DOMCTL_assign_device]: assignDevice,
  [DC.XEN_DOMCTL_test_assign_device]: assignDevice,
  [DC.XEN_DOMCTL_deassign_device]: assignDevice,
  [DC.XEN_DOMCTL_bind_pt_irq]: bindPtIrq,
  [DC.XEN_DOMCTL_unbind_pt_irq]: bindPtIrq,
  [DC.XEN_DOMCTL_irq_permission]: {
    decode: (u) => ({ pirq: u.getUint32(DC.xen_domctl_irq_permission.pirq, true), allow_access: u.getUint8(DC.xen_domctl_irq_permission.allow_access) }),
  },
  [DC.XEN_DOMCTL_iomem_permission]: {
    decode: (u) => {
      const L = DC.xen_domctl_iomem_permission;
      return { first_mfn: Number(u.getBigUint64(L.first_mfn, true)), nr_mfns: Number(u.getBigUint64(L.nr_mfns, true)), allow_access: u.getUint8(L.allow_access) };
    },
  },
  [DC.XEN_DOMCTL_ioport_permission]: {
    decode: (u) => {
      const L = DC.xen_domctl_ioport_permission;
      return { first_port: u.getUint32(L.first_port, true), nr_ports: u.getUint32(L.nr_ports, true), allow_access: u.getUint8(L.allow_access) };
    },
  },
  [DC.XEN_DOMCTL_memory_mapping]: {
    decode: (u) => {
      const L = DC.xen_domctl_memory_mapping;
      return { first_gfn: Number(u.getBigUint64(L.first_gfn, true)), first_mfn: Number(u.getBigUint64(L.first_mfn, true)),
               nr_mfns: Number(u.getBigUint64(L.nr_mfns, true)), add_mapping: u.getUint32(L.add_mapping, true) };
    },
  },
  [DC.XEN_DOMCTL_ioport_mapping]: {
    decode: (u) => {
      const L = DC.xen_domctl_ioport_mapping;
      return { first_gport: u.getUint32(L.first_gport, true), first_mport: u.getUint32(L.first_mport, true),
               nr_ports: u.getUint32(L.nr_ports, true), add_mapping: u.getUint32(L.add_mapping, true) };
    },
  },
  // Guests are xenemu's to build (its kernel or v86 in a domain process): Xen's
  // domain builder, which would load a real kernel into the domain's memory,
  // is refused at once with a word on why.
  [DC.XEN_DOMCTL_createdomain]: {
    decode: (_u, c) => {
      c.mem.tell('xenemu: Xen\'s domain builder cannot run guests on a xenemu host (XEN_DOMCTL_createdomain refused); ' +
                 'create guests with `xenemu xl create`');
      return -XEN_EOPNOTSUPP;
    },
  },
  [DC.XEN_DOMCTL_pausedomain]: none,
  [DC.XEN_DOMCTL_unpausedomain]: none,
  [DC.XEN_DOMCTL_destroydomain]: none,
  [DC.XEN_DOMCTL_getdomaininfo]: {
    decode: () => ({}),
    encode: (d, data) => {
      const info = data as DC.xen_domctl_getdomaininfo;
      d.setUint16(DC.xen_domctl.domain, info.domain, true);
      DC.encodeGetdomaininfo(d, U, info);
      return true;
    },
  },
  [DC.XEN_DOMCTL_max_mem]: {
    decode: (u) => ({ max_memkb: Number(u.getBigUint64(DC.xen_domctl_max_mem.max_memkb, true)) }),
  },
  [DC.XEN_DOMCTL_max_vcpus]: {
    decode: (u) => ({ max: u.getUint32(DC.xen_domctl_max_vcpus.max, true) }),
  },
  [DC.XEN_DOMCTL_getvcpuinfo]: {
    decode: (u) => ({ vcpu: u.getUint32(DC.xen_domctl_getvcpuinfo.vcpu, true) }),
    encode: (d, data) => {
      const i = data as DC.xen_domctl_getvcpuinfo;
      const L = DC.xen_domctl_getvcpuinfo;
      d.setUint8(U + L.online, i.online ? 1 : 0);
      d.setUint8(U + L.blocked, i.blocked ? 1 : 0);
      d.setUint8(U + L.running, i.running ? 1 : 0);
      d.setBigUint64(U + L.cpu_time, BigInt(Math.max(0, Math.floor(i.cpu_time))), true);
      d.setUint32(U + L.cpu, i.cpu >>> 0, true);
      return true;
    },
  },
  [DC.XEN_DOMCTL_setvcpuaffinity]: { decode: decodeAffinity, encode: encodeAffinity },
  [DC.XEN_DOMCTL_getvcpuaffinity]: { decode: decodeAffinity, encode: encodeAffinity },
  [DC.XEN_DOMCTL_scheduler_op]: {
    decode: (u) => {
      const L = DC.xen_domctl_scheduler_op;
      const s = DC.xen_domctl_sched_credit;
      return {
        sched_id: u.getUint32(L.sched_id, true), cmd: u.getUint32(L.cmd, true),
        u: { credit: { weight: u.getUint16(L.u + s.weight, true), cap: u.getUint16(L.u + s.cap, true) } },
      };
    },
    encode: (d, data) => {
      const r = data as { u?: { credit?: { weight: number; cap: number } } } | undefined;
      if (!r?.u?.credit) return false;
      const L = DC.xen_domctl_scheduler_op;
      d.setUint16(U + L.u + DC.xen_domctl_sched_credit.weight, r.u.credit.weight, true);
      d.setUint16(U + L.u + DC.xen_domctl_sched_credit.cap, r.u.credit.cap, true);
      return true;
    },
  },
};

async function decodeAffinity(u: DataView, c: Ctx): Promise<Record<string, unknown> | number> {
  const L = DC.xen_domctl_vcpuaffinity;
  const flags = u.getUint32(L.flags, true);
  const arg: Record<string, unknown> = { vcpu: u.getUint32(L.vcpu, true), flags };
  // The maps are IN only for setvcpuaffinity; reading them for get is harmless and keeps one decoder.
  if (flags & DC.XEN_VCPUAFFINITY_HARD) {
    const hard = await readBitmap(c.mem, u, L.cpumap_hard);
    if (!hard) return -XEN_EFAULT;
    arg.cpumap_hard = hard;
  }
  if (flags & DC.XEN_VCPUAFFINITY_SOFT) {
    const soft = await readBitmap(c.mem, u, L.cpumap_soft);
    if (!soft) return -XEN_EFAULT;
    arg.cpumap_soft = soft;
  }
  return arg;
}

function encodeAffinity(d: DataView, data: unknown, c: Ctx): boolean {
  const r = data as DC.xen_domctl_vcpuaffinity;
  const L = DC.xen_domctl_vcpuaffinity;
  const u = new DataView(d.buffer, d.byteOffset + U);
  if (r.flags & DC.XEN_VCPUAFFINITY_HARD) writeBitmap(c.mem, u, L.cpumap_hard, r.cpumap_hard);
  if (r.flags & DC.XEN_VCPUAFFINITY_SOFT) writeBitmap(c.mem, u, L.cpumap_soft, r.cpumap_soft);
  return false; // only the maps are OUT
}

async function domctl(c: Ctx, args: readonly bigint[]): Promise<number> {
  const addr = ptr(args[0]);
  const buf = await c.mem.read(addr, DC.xen_domctl.SIZE);
  if (!buf) return -XEN_EFAULT;
  const d = dv(buf);
  if (d.getUint32(DC.xen_domctl.interface_version, true) !== DC.XEN_DOMCTL_INTERFACE_VERSION) return -XEN_EACCES;
  const cmd = d.getUint32(DC.xen_domctl.cmd, true);
  const codec = DOMCTL[cmd];
  if (!codec) return unimplemented(c, `domctl ${cmd}`);
  const decoded = await codec.decode(new DataView(buf.buffer, buf.byteOffset + U, buf.byteLength - U), c);
  if (typeof decoded === 'number') return decoded;
  const r = dispatch(c.hv, c.caller, __HYPERVISOR_domctl, cmd, { ...decoded, domain: d.getUint16(DC.xen_domctl.domain, true) });
  if (r.ret >= 0 && codec.encode?.(d, r.data, c)) c.mem.write(addr, buf);
  return r.ret;
}

// ---- sysctl ------------------------------------------------------------------

interface SysctlCodec {
  decode(u: DataView, c: Ctx): Record<string, unknown> | number;
  /** Writes the answer (into the struct and through its handles); true: copy the struct back. */
  encode?(u: DataView, data: unknown, c: Ctx, ret: number): boolean;
}

const SU = SC.xen_sysctl.u;

const SYSCTL: Record<number, SysctlCodec> = {
  [SC.XEN_SYSCTL_physinfo]: {
    decode: () => ({}),
    encode: (u, data) => {
      const p = data as SC.xen_sysctl_physinfo & { arch_capabilities?: number };
      const L = SC.xen_sysctl_physinfo;
      for (let i = 0; i < L.SIZE; i++) u.setUint8(i, 0);
      u.setUint32(L.threads_per_core, p.threads_per_core, true);
      u.setUint32(L.cores_per_socket, p.cores_per_socket, true);
      u.setUint32(L.nr_cpus, p.nr_cpus, true);
      u.setUint32(L.max_cpu_id, p.max_cpu_id, true);
      u.setUint32(L.nr_nodes, p.nr_nodes, true);
      u.setUint32(L.max_node_id, p.max_node_id, true);
      u.setUint32(L.cpu_khz, p.cpu_khz, true);
      u.setUint32(L.capabilities, p.capabilities, true);
      u.setUint32(L.arch_capabilities, p.arch_capabilities ?? 0, true);
      u.setBigUint64(L.total_pages, BigInt(p.total_pages), true);
      u.setBigUint64(L.free_pages, BigInt(p.free_pages), true);
      u.setBigUint64(L.scrub_pages, BigInt(p.scrub_pages), true);
      u.setBigUint64(L.outstanding_pages, BigInt(p.outstanding_pages), true);
      u.setBigUint64(L.max_mfn, BigInt(p.max_mfn), true);
      return true;
    },
  },
  [SC.XEN_SYSCTL_getdomaininfolist]: {
    decode: (u) => ({
      first_domain: u.getUint16(SC.xen_sysctl_getdomaininfolist.first_domain, true),
      max_domains: u.getUint32(SC.xen_sysctl_getdomaininfolist.max_domains, true),
    }),
    encode: (u, data, c) => {
      const L = SC.xen_sysctl_getdomaininfolist;
      const list = (data as { buffer: DC.xen_domctl_getdomaininfo[] }).buffer;
      const rec = DC.xen_domctl_getdomaininfo.SIZE;
      if (list.length) {
        const out = Buffer.alloc(rec * list.length);
        const o = dv(out);
        list.forEach((info, i) => DC.encodeGetdomaininfo(o, i * rec, info));
        c.mem.write(u.getBigUint64(L.buffer, true), out);
      }
      u.setUint32(L.num_domains, list.length, true);
      return true;
    },
  },
  [SC.XEN_SYSCTL_sched_id]: {
    decode: () => ({}),
    encode: (u, data) => {
      u.setUint32(SC.xen_sysctl_sched_id.sched_id, (data as { sched_id: number }).sched_id, true);
      return true;
    },
  },
  [SC.XEN_SYSCTL_cpupool_op]: {
    decode: (u) => {
      const L = SC.xen_sysctl_cpupool_op;
      return {
        op: u.getUint32(L.op, true), cpupool_id: u.getUint32(L.cpupool_id, true), sched_id: u.getUint32(L.sched_id, true),
        domid: u.getUint32(L.domid, true), cpu: u.getUint32(L.cpu, true),
      };
    },
    encode: (u, data, c) => {
      const L = SC.xen_sysctl_cpupool_op;
      const r = data as SC.xen_sysctl_cpupool_op | undefined;
      if (!r) return false;
      u.setUint32(L.cpupool_id, r.cpupool_id, true);
      u.setUint32(L.sched_id, r.sched_id ?? 0, true);
      u.setUint32(L.n_dom, r.n_dom ?? 0, true);
      if (r.cpumap) writeBitmap(c.mem, u, L.cpumap, r.cpumap);
      return true;
    },
  },
  [SC.XEN_SYSCTL_scheduler_op]: {
    decode: (u) => {
      const L = SC.xen_sysctl_scheduler_op;
      const s = SC.xen_sysctl_credit_schedule;
      return {
        cpupool_id: u.getUint32(L.cpupool_id, true), sched_id: u.getUint32(L.sched_id, true), cmd: u.getUint32(L.cmd, true),
        u: { sched_credit: { tslice_ms: u.getUint32(L.u + s.tslice_ms, true), ratelimit_us: u.getUint32(L.u + s.ratelimit_us, true),
                             vcpu_migr_delay_us: u.getUint32(L.u + s.vcpu_migr_delay_us, true) } },
      };
    },
    encode: (u, data) => {
      const g = (data as { u?: { sched_credit?: SC.xen_sysctl_credit_schedule } } | undefined)?.u?.sched_credit;
      if (!g) return false;
      const L = SC.xen_sysctl_scheduler_op;
      const s = SC.xen_sysctl_credit_schedule;
      u.setUint32(L.u + s.tslice_ms, g.tslice_ms, true);
      u.setUint32(L.u + s.ratelimit_us, g.ratelimit_us, true);
      u.setUint32(L.u + s.vcpu_migr_delay_us, g.vcpu_migr_delay_us, true);
      return true;
    },
  },
  [SC.XEN_SYSCTL_readconsole]: {
    decode: (u) => {
      const L = SC.xen_sysctl_readconsole;
      return { clear: u.getUint8(L.clear), incremental: u.getUint8(L.incremental), index: u.getUint32(L.index, true),
               count: u.getUint32(L.count, true) };
    },
    encode: (u, data, c) => {
      const L = SC.xen_sysctl_readconsole;
      const r = data as { text: string; index?: number };
      const bytes = Buffer.from(r.text, 'latin1').subarray(0, u.getUint32(L.count, true));
      if (bytes.length) c.mem.write(u.getBigUint64(L.buffer, true), bytes);
      u.setUint32(L.count, bytes.length, true);
      if (r.index !== undefined) u.setUint32(L.index, r.index, true);
      return true;
    },
  },
};

async function sysctl(c: Ctx, args: readonly bigint[]): Promise<number> {
  const addr = ptr(args[0]);
  const buf = await c.mem.read(addr, SC.xen_sysctl.SIZE);
  if (!buf) return -XEN_EFAULT;
  const d = dv(buf);
  if (d.getUint32(SC.xen_sysctl.interface_version, true) !== SC.XEN_SYSCTL_INTERFACE_VERSION) return -XEN_EACCES;
  const cmd = d.getUint32(SC.xen_sysctl.cmd, true);
  const codec = SYSCTL[cmd];
  if (!codec) return unimplemented(c, `sysctl ${cmd}`);
  const u = new DataView(buf.buffer, buf.byteOffset + SU, buf.byteLength - SU);
  const decoded = codec.decode(u, c);
  if (typeof decoded === 'number') return decoded;
  const r = dispatch(c.hv, c.caller, __HYPERVISOR_sysctl, cmd, decoded);
  if (r.ret >= 0 && codec.encode?.(u, r.data, c, r.ret)) c.mem.write(addr, buf);
  return r.ret;
}

// ---- xen_version -------------------------------------------------------------

/** A NUL-padded char[len] holding `s` (truncated, always terminated: Xen's safe_strcpy). */
function cstr(s: string, len: number): Buffer {
  const b = Buffer.alloc(len);
  b.write(s.slice(0, len - 1), 'latin1');
  return b;
}

async function xenVersion(c: Ctx, args: readonly bigint[]): Promise<number> {
  const cmd = Number(args[0] ?? 0n);
  const addr = ptr(args[1]);
  let arg: Record<string, unknown> = {};
  if (cmd === V.XENVER_get_features) {
    const b = await c.mem.read(addr, V.xen_feature_info.SIZE);
    if (!b) return -XEN_EFAULT;
    arg = { submap_idx: b.readUInt32LE(V.xen_feature_info.submap_idx) };
  } else if (cmd === V.XENVER_pagesize && addr !== 0n) {
    return -XEN_EINVAL;
  }
  const r = dispatch(c.hv, c.caller, __HYPERVISOR_xen_version, cmd, arg);
  if (r.ret < 0 || r.data === undefined) return r.ret;
  const data = r.data as Record<string, unknown>;
  let out: Buffer | null = null;
  switch (cmd) {
    case V.XENVER_extraversion: out = cstr(String(data.extraversion), V.XEN_EXTRAVERSION_LEN); break;
    case V.XENVER_capabilities: out = cstr(String(data.capabilities), V.XEN_CAPABILITIES_INFO_LEN); break;
    case V.XENVER_changeset: out = cstr(String(data.changeset), V.XEN_CHANGESET_INFO_LEN); break;
    case V.XENVER_commandline: out = cstr(String(data.commandline), V.XEN_COMMANDLINE_LEN); break;
    case V.XENVER_compile_info: {
      const L = V.xen_compile_info;
      out = Buffer.alloc(L.SIZE);
      cstr(String(data.compiler), L.compile_by - L.compiler).copy(out, L.compiler);
      cstr(String(data.compile_by), L.compile_domain - L.compile_by).copy(out, L.compile_by);
      cstr(String(data.compile_domain), L.compile_date - L.compile_domain).copy(out, L.compile_domain);
      cstr(String(data.compile_date), L.SIZE - L.compile_date).copy(out, L.compile_date);
      break;
    }
    case V.XENVER_platform_parameters:
      out = Buffer.alloc(V.xen_platform_parameters.SIZE);
      out.writeBigUInt64LE(BigInt(data.virt_start as bigint), V.xen_platform_parameters.virt_start);
      break;
    case V.XENVER_get_features:
      out = Buffer.alloc(V.xen_feature_info.SIZE);
      out.writeUInt32LE(Number(data.submap_idx), V.xen_feature_info.submap_idx);
      out.writeUInt32LE(Number(data.submap), V.xen_feature_info.submap);
      break;
    case V.XENVER_guest_handle:
      out = Buffer.from((data.handle as number[]).slice(0, XEN_DOMAIN_HANDLE_SIZE).map((x) => x & 0xff));
      break;
  }
  if (out) {
    if (addr === 0n) return -XEN_EFAULT;
    c.mem.write(addr, out);
  }
  return r.ret;
}

// ---- memory_op ---------------------------------------------------------------

async function memoryOp(c: Ctx, args: readonly bigint[]): Promise<number> {
  const cmd = Number((args[0] ?? 0n) & BigInt(M.MEMOP_CMD_MASK));
  const addr = ptr(args[1]);
  switch (cmd) {
    case M.XENMEM_get_sharing_freed_pages:
    case M.XENMEM_get_sharing_shared_pages:
      return dispatch(c.hv, c.caller, __HYPERVISOR_memory_op, cmd, {}).ret;
    case M.XENMEM_current_reservation:
    case M.XENMEM_maximum_reservation: {
      const b = await c.mem.read(addr, 2);
      if (!b) return -XEN_EFAULT;
      return dispatch(c.hv, c.caller, __HYPERVISOR_memory_op, cmd, { domid: b.readUInt16LE(0) }).ret;
    }
    default:
      return unimplemented(c, `memory_op ${cmd}`);
  }
}

// ---- event_channel_op ----------------------------------------------------------

interface EvtchnCodec { size: number; decode(b: Buffer): Record<string, unknown>; encode?(b: Buffer, data: Record<string, unknown>): void }

const EVTCHN: Record<number, EvtchnCodec> = {
  [E.EVTCHNOP_alloc_unbound]: {
    size: E.evtchn_alloc_unbound.SIZE,
    decode: (b) => ({ dom: b.readUInt16LE(E.evtchn_alloc_unbound.dom), remote_dom: b.readUInt16LE(E.evtchn_alloc_unbound.remote_dom) }),
    encode: (b, r) => b.writeUInt32LE(Number(r.port), E.evtchn_alloc_unbound.port),
  },
  [E.EVTCHNOP_bind_interdomain]: {
    size: E.evtchn_bind_interdomain.SIZE,
    decode: (b) => ({ remote_dom: b.readUInt16LE(E.evtchn_bind_interdomain.remote_dom),
                      remote_port: b.readUInt32LE(E.evtchn_bind_interdomain.remote_port) }),
    encode: (b, r) => b.writeUInt32LE(Number(r.local_port), E.evtchn_bind_interdomain.local_port),
  },
  [E.EVTCHNOP_bind_virq]: {
    size: E.evtchn_bind_virq.SIZE,
    decode: (b) => ({ virq: b.readUInt32LE(E.evtchn_bind_virq.virq), vcpu: b.readUInt32LE(E.evtchn_bind_virq.vcpu) }),
    encode: (b, r) => b.writeUInt32LE(Number(r.port), E.evtchn_bind_virq.port),
  },
  [E.EVTCHNOP_bind_pirq]: {
    size: E.evtchn_bind_pirq.SIZE,
    decode: (b) => ({ pirq: b.readUInt32LE(E.evtchn_bind_pirq.pirq), flags: b.readUInt32LE(E.evtchn_bind_pirq.flags) }),
    encode: (b, r) => b.writeUInt32LE(Number(r.port), E.evtchn_bind_pirq.port),
  },
  [E.EVTCHNOP_close]: { size: E.evtchn_close.SIZE, decode: (b) => ({ port: b.readUInt32LE(0) }) },
  [E.EVTCHNOP_send]: { size: E.evtchn_send.SIZE, decode: (b) => ({ port: b.readUInt32LE(0) }) },
  [E.EVTCHNOP_unmask]: { size: E.evtchn_unmask.SIZE, decode: (b) => ({ port: b.readUInt32LE(0) }) },
  [E.EVTCHNOP_status]: {
    size: E.evtchn_status.SIZE,
    decode: (b) => ({ dom: b.readUInt16LE(E.evtchn_status.dom), port: b.readUInt32LE(E.evtchn_status.port) }),
    encode: (b, r) => {
      const L = E.evtchn_status;
      b.writeUInt32LE(Number(r.status ?? 0), L.status);
      b.writeUInt32LE(Number(r.vcpu ?? 0), L.vcpu);
      b.fill(0, L.u, L.SIZE);
      const ub = r.unbound as { dom: number } | undefined;
      const id = r.interdomain as { dom: number; port: number } | undefined;
      if (ub) b.writeUInt16LE(ub.dom, L.u);
      else if (id) { b.writeUInt16LE(id.dom, L.u); b.writeUInt32LE(id.port, L.u + 4); }
      else if (r.virq !== undefined) b.writeUInt32LE(Number(r.virq), L.u);
    },
  },
};

async function eventChannelOp(c: Ctx, args: readonly bigint[]): Promise<number> {
  const cmd = Number(args[0] ?? 0n);
  const addr = ptr(args[1]);
  const codec = EVTCHN[cmd];
  if (!codec) return unimplemented(c, `event_channel_op ${cmd}`);
  const b = await c.mem.read(addr, codec.size);
  if (!b) return -XEN_EFAULT;
  const r = dispatch(c.hv, c.caller, __HYPERVISOR_event_channel_op, cmd, codec.decode(b));
  if (r.ret >= 0 && codec.encode && r.data) {
    codec.encode(b, r.data as Record<string, unknown>);
    c.mem.write(addr, b);
  }
  return r.ret;
}

// ---- physdev_op ---------------------------------------------------------------

const PHYSDEV: Record<number, EvtchnCodec> = {
  [PD.PHYSDEVOP_map_pirq]: {
    size: PD.physdev_map_pirq.SIZE,
    decode: (b) => {
      const L = PD.physdev_map_pirq;
      return { domid: b.readUInt16LE(L.domid), type: b.readInt32LE(L.type), index: b.readInt32LE(L.index), pirq: b.readInt32LE(L.pirq),
               bus: b.readInt32LE(L.bus), devfn: b.readInt32LE(L.devfn), entry_nr: b.readInt32LE(L.entry_nr) };
    },
    encode: (b, r) => b.writeInt32LE(Number(r.pirq), PD.physdev_map_pirq.pirq),
  },
  [PD.PHYSDEVOP_unmap_pirq]: {
    size: PD.physdev_unmap_pirq.SIZE,
    decode: (b) => ({ domid: b.readUInt16LE(PD.physdev_unmap_pirq.domid), pirq: b.readInt32LE(PD.physdev_unmap_pirq.pirq) }),
  },
  [PD.PHYSDEVOP_eoi]: { size: PD.physdev_eoi.SIZE, decode: (b) => ({ irq: b.readUInt32LE(PD.physdev_eoi.irq) }) },
};

/** HYPERVISOR_physdev_op(cmd, void *): physdev.h's structs, as event_channel_op. */
async function physdevOp(c: Ctx, args: readonly bigint[]): Promise<number> {
  const cmd = Number(args[0] ?? 0n);
  const addr = ptr(args[1]);
  const codec = PHYSDEV[cmd];
  if (!codec) return unimplemented(c, `physdev_op ${cmd}`);
  const b = await c.mem.read(addr, codec.size);
  if (!b) return -XEN_EFAULT;
  const r = dispatch(c.hv, c.caller, __HYPERVISOR_physdev_op, cmd, codec.decode(b));
  if (r.ret >= 0 && codec.encode && r.data) {
    codec.encode(b, r.data as Record<string, unknown>);
    c.mem.write(addr, b);
  }
  return r.ret;
}

// ---- multicall -----------------------------------------------------------------

/**
 * do_multicall: each entry is run as its own hypercall and its result
 * written into the entry; a nested multicall is refused (-EINVAL) rather
 * than recursed into.
 */
async function multicall(c: Ctx, args: readonly bigint[]): Promise<number> {
  const list = ptr(args[0]);
  const n = Number(args[1] ?? 0n);
  if (n > 1024) return -XEN_EINVAL;
  for (let i = 0; i < n; i++) {
    const at = list + BigInt(i * multicall_entry.SIZE);
    const e = await c.mem.read(at, multicall_entry.SIZE);
    if (!e) return -XEN_EFAULT;
    const op = Number(e.readBigUInt64LE(multicall_entry.op));
    const a: bigint[] = [];
    for (let j = 0; j < 6; j++) a.push(e.readBigUInt64LE(multicall_entry.args + 8 * j));
    const ret = op === __HYPERVISOR_multicall ? -XEN_EINVAL : await xenHypercall(c.hv, c.caller, op, a, c.mem);
    const res = Buffer.alloc(8);
    res.writeBigInt64LE(BigInt(ret));
    c.mem.write(at + BigInt(multicall_entry.result), res);
  }
  return 0;
}

/** HYPERVISOR_xsm_op: as Xen built without XSM (flask), -ENOSYS; libxl takes that as no security labels. */
async function xsmOp(): Promise<number> {
  return -XEN_ENOSYS;
}

const BINARY_OPS: Record<number, BinaryOp> = {
  [__HYPERVISOR_xsm_op]: xsmOp,
  [__HYPERVISOR_domctl]: domctl,
  [__HYPERVISOR_sysctl]: sysctl,
  [__HYPERVISOR_xen_version]: xenVersion,
  [__HYPERVISOR_memory_op]: memoryOp,
  [__HYPERVISOR_event_channel_op]: eventChannelOp,
  [__HYPERVISOR_physdev_op]: physdevOp,
  [__HYPERVISOR_multicall]: multicall,
};
