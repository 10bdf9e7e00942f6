// An HVM domain's hypervisor state: its HVM parameters (hvm/params.h), its
// ioreq servers (xen/arch/x86/hvm/ioreq.c, common/ioreq.c) and its interrupt
// lines (hvm/irq.c), and the hypercalls that reach them: hvm_op, dm_op and
// XENMEM_acquire_resource.
//
// Where Xen keeps this inside the hypervisor, xenemu keeps it in the HVM
// segment (shared/abi/hvm/xenemu_hvm.ts), because the part of Xen that routes
// an intercepted access to an ioreq server and raises a virtual interrupt
// runs in the domain's own process, beside its vCPU:
//
//   device model ──dm_op──> hypervisor: server table, ranges, irq levels ──> HVM segment
//   vCPU (domain process) reads ranges, posts ioreq_t ──futex──> device model
//   device model answers ──futex──> vCPU;  device model irq level ──segment──> vCPU's PIC
//
// The device model may also write interrupt levels into the segment itself
// (its fast path); dm_op set_isa_irq_level and friends do the same through
// the hypervisor, for callers that map nothing.
import { shmCreate } from '../../shared/shm.js';
import { HvmIrqLines } from '../../shared/xen/hvm_ctl.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';
import { XEN_EEXIST, XEN_EINVAL, XEN_ENOENT, XEN_ENOSPC, XEN_ENOSYS, XEN_EOPNOTSUPP, XEN_EPERM, XEN_ESRCH } from '../../shared/abi/errno.js';
import { SHUTDOWN_reboot, SHUTDOWN_suspend } from '../../shared/abi/sched.js';
import { XEN_DOMCTL_SENDTRIGGER_POWER, XEN_DOMCTL_SENDTRIGGER_SLEEP } from '../../shared/abi/domctl.js';
import { PM1_PWRBTN_STS, PM1_SLPBTN_STS } from '../../shared/hw/acpi_pm.js';
import * as P from '../../shared/abi/hvm/params.js';
import * as DM from '../../shared/abi/hvm/dm_op.js';
import { IOREQ_SIZE, ioreq, sharedIopageSlot } from '../../shared/abi/hvm/ioreq.js';
import {
  SERVER_BUFIOREQ, SERVER_ENABLED, SERVER_EXISTS, XENEMU_HVM_MAX_IOREQ_SERVERS, XENEMU_HVM_SEGMENT_PAGES,
  bufioreqPageOffset, hvm_ctl, ioreqPageOffset, writeRanges, type IoRange,
  HVM_CONTEXT_RESTORE, HVM_CONTEXT_SAVED, readHvmContext, writeHvmContext,
} from '../../shared/abi/hvm/xenemu_hvm.js';
import { XENMEM_resource_ioreq_server } from '../../shared/abi/memory.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';
import { evtchnAllocUnboundFor, closePort } from './event_channel.js';

/** Ranges one server may claim (Xen's MAX_NR_IO_RANGES is 256 per type). */
const MAX_RANGES_PER_SERVER = 64;

interface IoreqServer {
  id: number;
  emulator: number;
  bufioreq: number;
  enabled: boolean;
  ranges: Array<{ type: number; start: bigint; end: bigint }>;
  /** Per vCPU: the guest's port the device model binds (ioreq_t.vp_eport). */
  vpEports: number[];
  bufioreqPort: number;
}

export class HvmState {
  readonly seg: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly dv: DataView;
  readonly params: bigint[] = new Array<bigint>(P.HVM_NR_PARAMS).fill(0n);
  readonly servers: (IoreqServer | undefined)[] = new Array(XENEMU_HVM_MAX_IOREQ_SERVERS);
  readonly irq: HvmIrqLines;

  constructor(readonly name: string) {
    this.seg = shmCreate(name, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
    this.i32 = new Int32Array(this.seg);
    this.dv = new DataView(this.seg);
    this.irq = new HvmIrqLines(this.seg);
    // hvm_domain_initialise: a triple fault resets the guest unless the toolstack says otherwise.
    this.params[P.HVM_PARAM_TRIPLE_FAULT_REASON] = BigInt(SHUTDOWN_reboot);
  }

  /** Publishes every enabled server's ranges to the vCPU (seqlock, then a doorbell). */
  publishRanges(): void {
    const all: IoRange[] = [];
    for (const s of this.servers) {
      if (!s) continue;
      Atomics.store(this.i32, (hvm_ctl.server_state >> 2) + s.id,
        SERVER_EXISTS | (s.enabled ? SERVER_ENABLED : 0) | (s.bufioreq ? SERVER_BUFIOREQ : 0) | ((s.emulator & 0xff) << 8));
      if (s.enabled) for (const r of s.ranges) all.push({ server: s.id, ...r });
    }
    writeRanges(this.i32, this.dv, all);
    this.kickVcpu();
  }

  kickVcpu(): void { this.irq.kickVcpu(); }
}

function hvmOf(d: Domain): HvmState | null {
  return d.hvm && d.hvmState ? d.hvmState : null;
}

// ---- hvm_op ------------------------------------------------------------------

export function hvmopSetParam(_hv: Hypervisor, caller: Domain, d: Domain, arg: { index?: number; value?: number | bigint }): HcResult {
  const h = hvmOf(d);
  if (!h) return -XEN_EINVAL;
  const i = Number(arg.index);
  if (!Number.isInteger(i) || i < 0 || i >= P.HVM_NR_PARAMS) return -XEN_EINVAL;
  // hvm_allow_set_param: a guest may not move its own special pages or ports.
  if (caller === d && P.HVM_PARAMS_TOOLSTACK_ONLY.has(i)) return -XEN_EPERM;
  let v: bigint;
  try { v = BigInt(arg.value ?? 0); } catch { return -XEN_EINVAL; }
  if (v < 0n || v >= 1n << 64n) return -XEN_EINVAL;
  if (i === P.HVM_PARAM_ACPI_IOPORTS_LOCATION) {
    // pmtimer_change_ioport: the PM registers the vCPU answers move with it.
    if (v > 1n) return -XEN_EINVAL;
    Atomics.store(h.i32, hvm_ctl.acpi_ioports >> 2, Number(v));
    h.kickVcpu();
  }
  h.params[i] = v;
  return 0;
}

/**
 * XEN_DOMCTL_sendtrigger (xen/arch/x86/domctl.c): the ACPI power and sleep
 * buttons of an HVM guest (hvm_acpi_power_button / _sleep_button set
 * PWRBTN_STS / SLPBTN_STS in the PM1a status its vCPU answers, which raises
 * the SCI when the guest enabled the event). NMI is not emulated (-ENOSYS,
 * as the triggers Xen has no handler for).
 */
export function domctlSendtrigger(_hv: Hypervisor, _caller: Domain, d: Domain, arg: { trigger?: number; vcpu?: number }): HcResult {
  const vcpu = Number(arg.vcpu ?? 0);
  if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= d.maxVcpus) return -XEN_ESRCH;
  const bits = arg.trigger === XEN_DOMCTL_SENDTRIGGER_POWER ? PM1_PWRBTN_STS
    : arg.trigger === XEN_DOMCTL_SENDTRIGGER_SLEEP ? PM1_SLPBTN_STS : 0;
  if (!bits) return -XEN_ENOSYS;
  const h = hvmOf(d);
  if (!h) return -XEN_EINVAL;
  Atomics.or(h.i32, hvm_ctl.pm1a_raise >> 2, bits);
  h.kickVcpu();
  return 0;
}

/**
 * SCHEDOP_remote_shutdown(SHUTDOWN_suspend) of a running HVM domain: Xen
 * pauses its vCPUs where they are and keeps their state in the hypervisor;
 * xenemu's vCPU is v86 in the domain's process, which can only be
 * serialised between two of its runs. So the request goes to the vCPU
 * (suspend_req, a kick): at its next turn it writes its context into the
 * segment's context pages and its process shuts the domain down with
 * SHUTDOWN_suspend, which the toolstack waits for as for a PV guest.
 * Returns false when the domain has no running vCPU to ask.
 */
export function requestHvmSuspend(d: Domain): boolean {
  const h = hvmOf(d);
  if (!h || !d.started || d.shutdown || d.dying || !d.proc) return false;
  Atomics.store(h.i32, hvm_ctl.suspend_req >> 2, 1);
  h.kickVcpu();
  return true;
}

/**
 * XEN_DOMCTL_gethvmcontext: the context the vCPU wrote at its suspend
 * (the domain must be shut down for suspend, as Xen wants it paused).
 */
export function domctlGethvmcontext(_hv: Hypervisor, _caller: Domain, d: Domain): HcResult {
  const h = hvmOf(d);
  if (!h) return -XEN_EINVAL;
  if (!d.shutdown || d.shutdownReason !== SHUTDOWN_suspend) return -XEN_EINVAL;
  const blob = readHvmContext(h.seg, HVM_CONTEXT_SAVED);
  if (!blob) return -XEN_ENOENT;
  return { ret: 0, data: { size: blob.byteLength, buffer: blob } };
}

/** XEN_DOMCTL_sethvmcontext: the context a restored domain's vCPU starts from (before its first unpause). */
export function domctlSethvmcontext(_hv: Hypervisor, _caller: Domain, d: Domain, arg: { buffer?: Uint8Array }): HcResult {
  const h = hvmOf(d);
  if (!h) return -XEN_EINVAL;
  if (d.started) return -XEN_EINVAL;
  const b = arg.buffer;
  if (!(b instanceof Uint8Array) || b.byteLength === 0) return -XEN_EINVAL;
  return writeHvmContext(h.seg, b, HVM_CONTEXT_RESTORE) ? 0 : -XEN_ENOSPC;
}

export function hvmopGetParam(_hv: Hypervisor, _caller: Domain, d: Domain, arg: { index?: number }): HcResult {
  const h = hvmOf(d);
  if (!h) return -XEN_EINVAL;
  const i = Number(arg.index);
  if (!Number.isInteger(i) || i < 0 || i >= P.HVM_NR_PARAMS) return -XEN_EINVAL;
  return { ret: 0, data: { index: i, value: h.params[i]! } };
}

// ---- dm_op -------------------------------------------------------------------

type DmArg = Record<string, unknown> & { op?: number };

function num(a: DmArg, k: string): number {
  const v = a[k];
  return typeof v === 'number' && Number.isInteger(v) ? v : typeof v === 'bigint' ? Number(v) : NaN;
}

function big(a: DmArg, k: string): bigint | null {
  const v = a[k];
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return BigInt(v);
  return null;
}

function server(h: HvmState, a: DmArg): IoreqServer | null {
  const id = num(a, 'id');
  return Number.isInteger(id) && id >= 0 && id < XENEMU_HVM_MAX_IOREQ_SERVERS ? h.servers[id] ?? null : null;
}

export function dmOp(hv: Hypervisor, caller: Domain, d: Domain, a: DmArg): HcResult {
  const h = hvmOf(d);
  if (!h) return -XEN_EINVAL;
  switch (a.op) {
    case DM.XEN_DMOP_create_ioreq_server: {
      const buf = num(a, 'handle_bufioreq');
      if (![P.HVM_IOREQSRV_BUFIOREQ_OFF, P.HVM_IOREQSRV_BUFIOREQ_LEGACY, P.HVM_IOREQSRV_BUFIOREQ_ATOMIC].includes(buf)) return -XEN_EINVAL;
      const id = h.servers.findIndex((s) => !s);
      const slot = id >= 0 ? id : h.servers.length < XENEMU_HVM_MAX_IOREQ_SERVERS ? h.servers.length : -1;
      if (slot < 0) return -XEN_ENOSPC;
      const vpEports: number[] = [];
      for (let v = 0; v < d.maxVcpus; v++) {
        const port = evtchnAllocUnboundFor(d, caller.domid, v);
        if (port < 0) { for (const p of vpEports) closePort(hv, d, p); return port; }
        vpEports.push(port);
      }
      let bufioreqPort = 0;
      if (buf !== P.HVM_IOREQSRV_BUFIOREQ_OFF) {
        bufioreqPort = evtchnAllocUnboundFor(d, caller.domid, 0);
        if (bufioreqPort < 0) { for (const p of vpEports) closePort(hv, d, p); return bufioreqPort; }
      }
      const s: IoreqServer = { id: slot, emulator: caller.domid, bufioreq: buf, enabled: false, ranges: [], vpEports, bufioreqPort };
      h.servers[slot] = s;
      // Fresh pages: every slot NONE, its vp_eport filled in (hvm_ioreq_server_add_vcpu).
      new Uint8Array(h.seg, ioreqPageOffset(slot), PAGE_SIZE).fill(0);
      new Uint8Array(h.seg, bufioreqPageOffset(slot), PAGE_SIZE).fill(0);
      vpEports.forEach((p, v) => h.dv.setUint32(ioreqPageOffset(slot) + sharedIopageSlot(v) + ioreq.vp_eport, p, true));
      h.publishRanges();
      hv.console.log(`d${d.domid}: ioreq server ${slot} created by d${caller.domid}`);
      return { ret: 0, data: { id: slot } };
    }
    case DM.XEN_DMOP_get_ioreq_server_info: {
      const s = server(h, a);
      if (!s) return -XEN_ENOENT;
      // The pages are reached by XENMEM_acquire_resource only (no guest frames).
      if (!(num(a, 'flags') & DM.XEN_DMOP_no_gfns)) return -XEN_EOPNOTSUPP;
      return { ret: 0, data: { id: s.id, bufioreq_port: s.bufioreqPort, vp_eport: s.vpEports } };
    }
    case DM.XEN_DMOP_map_io_range_to_ioreq_server:
    case DM.XEN_DMOP_unmap_io_range_from_ioreq_server: {
      const s = server(h, a);
      if (!s) return -XEN_ENOENT;
      const type = num(a, 'type');
      const start = big(a, 'start');
      const end = big(a, 'end');
      if (![DM.XEN_DMOP_IO_RANGE_PORT, DM.XEN_DMOP_IO_RANGE_MEMORY, DM.XEN_DMOP_IO_RANGE_PCI].includes(type) ||
          start === null || end === null || start > end) return -XEN_EINVAL;
      if (type === DM.XEN_DMOP_IO_RANGE_PORT && end > 0xffffn) return -XEN_EINVAL;
      const i = s.ranges.findIndex((r) => r.type === type && r.start === start && r.end === end);
      if (a.op === DM.XEN_DMOP_map_io_range_to_ioreq_server) {
        if (s.ranges.some((r) => r.type === type && r.start <= end && start <= r.end)) return -XEN_EEXIST;
        if (s.ranges.length >= MAX_RANGES_PER_SERVER) return -XEN_ENOSPC;
        s.ranges.push({ type, start, end });
      } else {
        if (i < 0) return -XEN_ENOENT;
        s.ranges.splice(i, 1);
      }
      h.publishRanges();
      return 0;
    }
    case DM.XEN_DMOP_set_ioreq_server_state: {
      const s = server(h, a);
      if (!s) return -XEN_ENOENT;
      s.enabled = num(a, 'enabled') !== 0;
      h.publishRanges();
      return 0;
    }
    case DM.XEN_DMOP_destroy_ioreq_server: {
      const s = server(h, a);
      if (!s) return -XEN_ENOENT;
      destroyServer(hv, d, h, s);
      return 0;
    }
    case DM.XEN_DMOP_set_isa_irq_level: {
      const irq = num(a, 'isa_irq');
      const level = num(a, 'level');
      if (!(irq >= 0 && irq < 16) || (level !== 0 && level !== 1)) return -XEN_EINVAL;
      h.irq.setIsaIrq(irq, level);
      return 0;
    }
    case DM.XEN_DMOP_set_pci_intx_level: {
      const dev = num(a, 'device');
      const intx = num(a, 'intx');
      const level = num(a, 'level');
      if (num(a, 'domain') !== 0 || num(a, 'bus') !== 0 || !(dev >= 0 && dev < 32) || !(intx >= 0 && intx < 4) ||
          (level !== 0 && level !== 1)) return -XEN_EINVAL;
      h.irq.setPciIntx(dev, intx, level);
      return 0;
    }
    case DM.XEN_DMOP_set_pci_link_route: {
      const link = num(a, 'link');
      const irq = num(a, 'isa_irq');
      if (!(link >= 0 && link < 4) || !(irq >= 0 && irq < 16)) return -XEN_EINVAL;
      h.irq.setPciLinkRoute(link, irq);
      return 0;
    }
    case DM.XEN_DMOP_remote_shutdown: {
      const reason = num(a, 'reason');
      if (!(reason >= 0 && reason <= 5)) return -XEN_EINVAL;
      hv.shutdownDomain(d, reason);
      return 0;
    }
    case DM.XEN_DMOP_nr_vcpus:
      return { ret: 0, data: { vcpus: d.maxVcpus } };
    case DM.XEN_DMOP_modified_memory:
    case DM.XEN_DMOP_track_dirty_vram:
      return 0; // no log-dirty mode yet: nothing to record
    default:
      return -XEN_EOPNOTSUPP;
  }
}

function destroyServer(hv: Hypervisor, d: Domain, h: HvmState, s: IoreqServer): void {
  for (const p of s.vpEports) closePort(hv, d, p);
  if (s.bufioreqPort) closePort(hv, d, s.bufioreqPort);
  h.servers[s.id] = undefined;
  Atomics.store(h.i32, (hvm_ctl.server_state >> 2) + s.id, 0);
  h.publishRanges();
}

/** XENMEM_acquire_resource of an ioreq server's pages: where they are in the HVM segment. */
export function acquireIoreqServer(d: Domain, a: { id?: number; frame?: number; nr_frames?: number }): HcResult {
  const h = hvmOf(d);
  if (!h) return -XEN_EINVAL;
  const s = server(h, a as DmArg);
  if (!s) return -XEN_ENOENT;
  const frame = Number(a.frame ?? 0);
  const nr = Number(a.nr_frames ?? 1);
  // Frame 0: the buffered page (if any); frame 1: the synchronous page of every vCPU.
  if (!Number.isInteger(frame) || !Number.isInteger(nr) || frame < 0 || nr < 1 || frame + nr > 2) return -XEN_EINVAL;
  if (frame === 0 && !s.bufioreq) return -XEN_EINVAL;
  return { ret: 0, data: {
    type: XENMEM_resource_ioreq_server, id: s.id, segment: h.name,
    frames: Array.from({ length: nr }, (_, k) => (frame + k === 0 ? bufioreqPageOffset(s.id) : ioreqPageOffset(s.id))),
    ctl: 0, slot_size: IOREQ_SIZE,
  } };
}
