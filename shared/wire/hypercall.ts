// The channel between a domain process and its hypervisor (docs/design.md §2).
//
// One ZeroMQ PAIR socket per domain: the hypervisor binds
// ipc://<rundir>/dom<domid>.hypercall, the domain process connects to it. The
// hypervisor knows the caller from the socket a message arrived on, never
// from anything inside the message. Messages are msgpackr-encoded through
// shared/wire/codec.ts.
//
//   domain                                  hypervisor
//     | hello {id}                              |
//     |---------------------------------------->|
//     |<----------------- reply {id, ret, data} |   data: DomainHello
//     | hypercall {id, op, cmd, arg}            |
//     |---------------------------------------->|
//     |<----------------- reply {id, ret, data} |   ret >= 0 or -XEN_E*
//     | notify {port}   (EVTCHNOP_send, no reply: the hot path)
//     |---------------------------------------->|
//     |<---------------------- upcall {vcpu}    |   only on evtchn_upcall_pending 0 -> 1
//     | sched {op, vcpu, gen} (no reply)        |   vCPU wake / block / release of a slice
//     |---------------------------------------->|
//     |<----------------- slice {vcpu, gen}     |   grant word of vcpu set: Atomics.notify it
import { encode, decode } from './codec.js';

/** Sent once after connecting; the reply tells the domain who it is. */
export interface HelloRequest { type: 'hello'; id: number }

/** A hypercall: op is a __HYPERVISOR_* number, cmd its sub-command (EVTCHNOP_send, ...). */
export interface HypercallRequest { type: 'hypercall'; id: number; op: number; cmd: number; arg: unknown }

/** EVTCHNOP_send without a reply: errors are counted and logged by the hypervisor only. */
export interface NotifyRequest { type: 'notify'; port: number }

/** Dom0 tells the hypervisor its services are up; the host becomes ready. -EPERM for others. */
export interface ReadyRequest { type: 'ready'; id: number }

/**
 * A vCPU's scheduling event, fire-and-forget like `notify` (docs/scheduler.md):
 *   wake     the vCPU has work: blocked -> runnable
 *   block    SCHEDOP_block: it gives back slice `gen` (if held) and waits for work
 *   release  it gives back slice `gen` and stays runnable (revocation ack, yield)
 */
export interface SchedRequest { type: 'sched'; op: 'wake' | 'block' | 'release'; vcpu: number; gen: number }

export type DomainToHypervisor = HelloRequest | HypercallRequest | NotifyRequest | ReadyRequest | SchedRequest;

export interface Reply { type: 'reply'; id: number; ret: number; data?: unknown }

/** An event is pending on `vcpu`: scan shared_info (Xen 2-level, event_2l.c). */
export interface Upcall { type: 'upcall'; vcpu: number }

/** vCPU `vcpu` was granted slice `gen` (its grant word in the vCPU area holds it): wake its thread. */
export interface Slice { type: 'slice'; vcpu: number; gen: number }

export type HypervisorToDomain = Reply | Upcall | Slice;

/** What a domain learns from `hello`. Segment names are full shm names (with the host prefix). */
export interface DomainHello {
  domid: number;
  host: string;
  max_vcpus: number;
  tot_pages: number;
  max_pages: number;
  /** Pseudo-physical memory: max_pages * PAGE_SIZE bytes; pfn n at byte n * PAGE_SIZE. */
  mem: string;
  mem_bytes: number;
  shared_info: string;
  gnttab: string;
  gnttab_frames: number;
  /** The vCPU area (runstate + slice grants, shared/abi/vcpu.ts), one page; absent from older hypervisors. */
  vcpu?: string;
  /** start_info's pseudo-physical address set by the builder (XEN_DOMCTL_setvcpucontext rsi), 0 if none. */
  start_info: number;
  privileged: boolean;
  /** An HVM guest: its HVM segment (shared/abi/hvm/xenemu_hvm.ts); absent for PV. */
  hvm?: string;
}

export function encodeMessage(msg: DomainToHypervisor | HypervisorToDomain): Buffer {
  return encode(msg);
}

/** Decodes and checks the discriminant; returns null on garbage (never throws). */
export function decodeToHypervisor(buf: Buffer): DomainToHypervisor | null {
  let m: unknown;
  try { m = decode(buf); } catch { return null; }
  if (typeof m !== 'object' || m === null) return null;
  const t = (m as { type?: unknown }).type;
  const id = (m as { id?: unknown }).id;
  switch (t) {
    case 'hello': case 'ready':
      return Number.isInteger(id) ? (m as DomainToHypervisor) : null;
    case 'hypercall': {
      const h = m as HypercallRequest;
      return Number.isInteger(id) && Number.isInteger(h.op) && Number.isInteger(h.cmd) ? h : null;
    }
    case 'notify':
      return Number.isInteger((m as NotifyRequest).port) ? (m as NotifyRequest) : null;
    case 'sched': {
      const s = m as SchedRequest;
      return (s.op === 'wake' || s.op === 'block' || s.op === 'release') && Number.isInteger(s.vcpu) &&
        Number.isInteger(s.gen) ? s : null;
    }
    default:
      return null;
  }
}

export function decodeToDomain(buf: Buffer): HypervisorToDomain | null {
  let m: unknown;
  try { m = decode(buf); } catch { return null; }
  if (typeof m !== 'object' || m === null) return null;
  const t = (m as { type?: unknown }).type;
  if (t === 'reply' && Number.isInteger((m as Reply).id)) return m as Reply;
  if (t === 'upcall') return m as Upcall;
  if (t === 'slice' && Number.isInteger((m as Slice).vcpu)) return m as Slice;
  return null;
}

/** ipc endpoint file of a domain's hypercall socket inside a host run dir. */
/** Domain-0's programs' hypercall endpoint (processes/hypervisor/privcmd.ts): a ROUTER, one DEALER per client. */
export function privcmdEndpoint(rundir: string): string {
  return `ipc://${rundir}/privcmd`;
}

export function hypercallEndpoint(rundir: string, domid: number): string {
  return `ipc://${rundir}/dom${domid}.hypercall`;
}

/** A domain's shm segments (docs/hypervisor.md): full names with the host prefix. */
export interface DomainSegmentNames { mem: string; shared_info: string; gnttab: string; vcpu: string; hvm: string; frames: string }

/**
 * `hvm` exists for HVM domains only (shared/abi/hvm/xenemu_hvm.ts); `frames` is the
 * hypervisor's frame table, one byte per pfn, that host PCI devices' IOMMUs read (shared/hw/iommu.ts).
 */
export function domainSegmentNames(host: string, domid: number): DomainSegmentNames {
  const p = `/xenemu.${host}.dom${domid}`; // shmPrefix(host) + dom<id>
  return { mem: `${p}.mem`, shared_info: `${p}.shared_info`, gnttab: `${p}.gnttab`, vcpu: `${p}.vcpu`, hvm: `${p}.hvm`,
           frames: `${p}.frames` };
}
