// Event channels, 2-level ABI (xen/common/event_channel.c, event_2l.c).
//
// Delivery, as Xen does it for a port P bound to vCPU v of domain D:
//
//   test_and_set(pending[P])           already pending   -> done (coalesced)
//   test(mask[P])                      masked            -> done (stays pending)
//   test_and_set(v.pending_sel[P/64])  already selected  -> done
//   test_and_set(v.upcall_pending)     already set       -> done
//   send an `upcall` message to D      (the only message on the path)
//
// Every step is an atomic read-modify-write on D's shared_info page, which
// D's own event loop clears in the reverse order (upcall_pending, then
// pending_sel by exchange, then each pending bit), so a burst of sends costs
// one message until D has caught up (shared/xen/evtchn_2l.ts, which a host
// PCI device posting its MSI to its owner runs too: pci_irq.ts). Binding needs consent: an interdomain
// bind succeeds only against a port the other side allocated unbound for the
// caller (EVTCHNOP_alloc_unbound with remote_dom = caller).
import {
  ECS_FREE, ECS_INTERDOMAIN, ECS_PIRQ, ECS_RESERVED, ECS_UNBOUND, ECS_VIRQ,
  EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_pirq, EVTCHNSTAT_unbound, EVTCHNSTAT_virq,
} from '../../shared/abi/event_channel.js';
import { bitWord, GLOBAL_VIRQS, NR_VIRQS, shared_info, DOMID_SELF } from '../../shared/abi/xen.js';
import { evtchn2lMarkSelector, evtchn2lSetPending } from '../../shared/xen/evtchn_2l.js';
import { XEN_EEXIST, XEN_EINVAL, XEN_ENOSPC, XEN_ESRCH } from '../../shared/abi/errno.js';
import type { Domain } from './domain.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

export type EvtchnState = 'free' | 'reserved' | 'unbound' | 'interdomain' | 'virq' | 'pirq';

export interface EvtchnChannel {
  state: EvtchnState;
  remoteDom: number;
  remotePort: number;
  virq: number;
  notifyVcpu: number;
  /** With state 'pirq': the pirq (EVTCHNOP_bind_pirq, pci_irq.ts). */
  pirq?: number;
  /**
   * A Domain-0 program's /dev/xen/evtchn file holds this port (evtchn_dev.ts):
   * its events go to that file, never into Domain-0's shared_info, as Linux's
   * evtchn driver takes the events of the ports bound through it.
   */
  user?: EvtchnUser;
}

/** Who takes a port's events instead of its domain's shared_info. */
export interface EvtchnUser { deliver(port: number): void }

const ECS: Record<EvtchnState, number> = {
  free: ECS_FREE, reserved: ECS_RESERVED, unbound: ECS_UNBOUND, interdomain: ECS_INTERDOMAIN, virq: ECS_VIRQ, pirq: ECS_PIRQ,
};
export function ecsOf(s: EvtchnState): number { return ECS[s]; }

function validPort(d: Domain, port: unknown): port is number {
  return Number.isInteger(port) && (port as number) > 0 && (port as number) <= d.maxEvtchnPort &&
    d.ports[port as number] !== undefined && d.ports[port as number]!.state !== 'free';
}

function getFreePort(d: Domain): number {
  for (let p = 1; p <= d.maxEvtchnPort; p++) {
    const c = d.ports[p];
    if (c === undefined || c.state === 'free') return p;
  }
  return -XEN_ENOSPC;
}

/** evtchn_2l_set_pending + vcpu_mark_events_pending (shared/xen/evtchn_2l.ts). */
export function setPending(hv: Hypervisor, d: Domain, port: number, vcpu: number): void {
  if (d.dying || d.si32.length === 0) return;
  const user = d.ports[port]?.user;
  if (user) { user.deliver(port); return; }
  if (evtchn2lSetPending(d.si32, d.si8, port, vcpu)) hv.kick(d, vcpu);
}

function markSelector(hv: Hypervisor, d: Domain, port: number, vcpu: number): void {
  if (evtchn2lMarkSelector(d.si32, d.si8, port, vcpu)) hv.kick(d, vcpu);
}

/** Clears the port's pending bit; true when it was set (an event nobody took yet). */
export function takePending(d: Domain, port: number): boolean {
  if (d.si32.length === 0) return false;
  const [pi, pb] = bitWord(shared_info.evtchn_pending, port);
  return (Atomics.and(d.si32, pi, ~pb) & pb) !== 0;
}

/** Clears the port's mask bit (a port going back to the domain's own use starts unmasked). */
export function clearMask(d: Domain, port: number): void {
  if (d.si32.length === 0) return;
  const [mi, mb] = bitWord(shared_info.evtchn_mask, port);
  Atomics.and(d.si32, mi, ~mb);
}

function clearPending(d: Domain, port: number): void {
  if (d.si32.length === 0) return;
  const [pi, pb] = bitWord(shared_info.evtchn_pending, port);
  Atomics.and(d.si32, pi, ~pb);
}

export function evtchnAllocUnbound(hv: Hypervisor, _caller: Domain, d: Domain, arg: { remote_dom?: number }): HcResult {
  let remote = Number(arg.remote_dom);
  if (!Number.isInteger(remote)) return -XEN_EINVAL;
  if (remote === DOMID_SELF) remote = d.domid;
  const port = getFreePort(d);
  if (port < 0) return port;
  d.ports[port] = { state: 'unbound', remoteDom: remote, remotePort: 0, virq: -1, notifyVcpu: 0 };
  return { ret: 0, data: { port } };
}

/**
 * A port of `d` left unbound for `remote`, notifying vCPU `vcpu`: how Xen
 * makes the per-vCPU ports an ioreq server's emulator binds
 * (alloc_unbound_xen_event_channel). A port number, or -ENOSPC.
 */
export function evtchnAllocUnboundFor(d: Domain, remote: number, vcpu: number): number {
  const port = getFreePort(d);
  if (port < 0) return port;
  d.ports[port] = { state: 'unbound', remoteDom: remote, remotePort: 0, virq: -1, notifyVcpu: vcpu };
  return port;
}

export function evtchnBindInterdomain(hv: Hypervisor, caller: Domain, _t: Domain | null,
                                      arg: { remote_dom?: number; remote_port?: number }): HcResult {
  let rdom = Number(arg.remote_dom);
  if (rdom === DOMID_SELF) rdom = caller.domid;
  const rd = hv.domains.get(rdom);
  if (!rd || rd.dying) return -XEN_ESRCH;
  const rport = Number(arg.remote_port);
  if (!validPort(rd, rport)) return -XEN_EINVAL;
  const rchn = rd.ports[rport]!;
  // Consent: the remote port must be waiting for exactly this domain.
  if (rchn.state !== 'unbound' || rchn.remoteDom !== caller.domid) return -XEN_EINVAL;
  const lport = getFreePort(caller);
  if (lport < 0) return lport;
  caller.ports[lport] = { state: 'interdomain', remoteDom: rdom, remotePort: rport, virq: -1, notifyVcpu: 0 };
  rchn.state = 'interdomain';
  rchn.remoteDom = caller.domid;
  rchn.remotePort = lport;
  // As Xen: notifications sent to the unbound port were lost, so raise one here.
  setPending(hv, caller, lport, 0);
  return { ret: 0, data: { local_port: lport } };
}

export function evtchnBindVirq(hv: Hypervisor, caller: Domain, _t: Domain | null,
                               arg: { virq?: number; vcpu?: number }): HcResult {
  const virq = Number(arg.virq);
  const vcpu = Number(arg.vcpu ?? 0);
  if (!Number.isInteger(virq) || virq < 0 || virq >= NR_VIRQS) return -XEN_EINVAL;
  if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= caller.maxVcpus) return -XEN_ESRCH;
  if (GLOBAL_VIRQS.has(virq) && vcpu !== 0) return -XEN_EINVAL;
  if (caller.virqToPort.has(virq)) return -XEN_EEXIST;
  const port = getFreePort(caller);
  if (port < 0) return port;
  caller.ports[port] = { state: 'virq', remoteDom: 0, remotePort: 0, virq, notifyVcpu: vcpu };
  caller.virqToPort.set(virq, port);
  return { ret: 0, data: { port } };
}

/** evtchn_close: the remote end of an interdomain channel goes back to unbound. */
export function closePort(hv: Hypervisor, d: Domain, port: number): number {
  if (!validPort(d, port)) return -XEN_EINVAL;
  const chn = d.ports[port]!;
  if (chn.state === 'reserved') return -XEN_EINVAL;
  if (chn.state === 'virq') {
    if (d.virqToPort.get(chn.virq) === port) d.virqToPort.delete(chn.virq);
    d.virqListeners.get(chn.virq)?.delete(port);
  }
  if (chn.state === 'pirq') {
    const e = d.pirqs.get(chn.pirq ?? -1);
    if (e && e.port === port) { e.port = 0; e.inFlight = false; }
  }
  const wasPirq = chn.state === 'pirq';
  if (chn.state === 'interdomain') {
    const rd = hv.domains.get(chn.remoteDom);
    const rchn = rd?.ports[chn.remotePort];
    if (rd && rchn && rchn.state === 'interdomain' && rchn.remoteDom === d.domid && rchn.remotePort === port) {
      rchn.state = 'unbound';
      rchn.remoteDom = d.domid;
      rchn.remotePort = 0;
    }
  }
  clearPending(d, port);
  d.ports[port] = { state: 'free', remoteDom: 0, remotePort: 0, virq: -1, notifyVcpu: 0 };
  if (wasPirq) hv.pci.pirqsChanged(d); // no device posts to it from now on
  return 0;
}

export function evtchnClose(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { port?: number }): HcResult {
  return closePort(hv, caller, Number(arg.port));
}

/** EVTCHNOP_send; also the fire-and-forget `notify` message. */
export function evtchnSend(hv: Hypervisor, caller: Domain, port: number): number {
  if (!validPort(caller, port)) return -XEN_EINVAL;
  const chn = caller.ports[port]!;
  switch (chn.state) {
    case 'interdomain': {
      const rd = hv.domains.get(chn.remoteDom);
      if (rd) setPending(hv, rd, chn.remotePort, rd.ports[chn.remotePort]?.notifyVcpu ?? 0);
      return 0;
    }
    case 'unbound':
      return 0; // silently dropped, as Xen does
    default:
      return -XEN_EINVAL;
  }
}

export function evtchnSendOp(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { port?: number }): HcResult {
  return evtchnSend(hv, caller, Number(arg.port));
}

export function evtchnStatus(_hv: Hypervisor, _caller: Domain, d: Domain, arg: { port?: number }): HcResult {
  const port = Number(arg.port);
  if (!Number.isInteger(port) || port < 0 || port > d.maxEvtchnPort) return -XEN_EINVAL;
  const chn = d.ports[port];
  if (!chn || chn.state === 'free' || chn.state === 'reserved') {
    return { ret: 0, data: { status: EVTCHNSTAT_closed, vcpu: 0 } };
  }
  switch (chn.state) {
    case 'unbound':
      return { ret: 0, data: { status: EVTCHNSTAT_unbound, vcpu: chn.notifyVcpu, unbound: { dom: chn.remoteDom } } };
    case 'interdomain':
      return { ret: 0, data: { status: EVTCHNSTAT_interdomain, vcpu: chn.notifyVcpu,
                               interdomain: { dom: chn.remoteDom, port: chn.remotePort } } };
    case 'pirq':
      return { ret: 0, data: { status: EVTCHNSTAT_pirq, vcpu: chn.notifyVcpu, pirq: chn.pirq } };
    default:
      return { ret: 0, data: { status: EVTCHNSTAT_virq, vcpu: chn.notifyVcpu, virq: chn.virq } };
  }
}

/**
 * EVTCHNOP_bind_pirq {pirq, flags}: a port of the caller for a pirq it has
 * mapped (PHYSDEVOP_map_pirq); -EINVAL when it has not, -EEXIST when bound.
 */
export function evtchnBindPirq(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { pirq?: number; flags?: number }): HcResult {
  const e = caller.pirqs.get(Number(arg.pirq));
  if (!e) return -XEN_EINVAL;
  if (e.port) return -XEN_EEXIST;
  const port = getFreePort(caller);
  if (port < 0) return port;
  caller.ports[port] = { state: 'pirq', remoteDom: 0, remotePort: 0, virq: -1, notifyVcpu: 0, pirq: e.pirq };
  e.port = port;
  e.inFlight = false;
  hv.pci.pirqsChanged(caller); // an MSI pirq of a device the caller owns: the device may post it
  return { ret: 0, data: { port } };
}

/** EVTCHNOP_unmask: clear the mask bit and deliver what was held back. */
export function evtchnUnmask(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { port?: number }): HcResult {
  const port = Number(arg.port);
  if (!validPort(caller, port)) return -XEN_EINVAL;
  const [mi, mb] = bitWord(shared_info.evtchn_mask, port);
  Atomics.and(caller.si32, mi, ~mb);
  const [pi, pb] = bitWord(shared_info.evtchn_pending, port);
  if (Atomics.load(caller.si32, pi) & pb) markSelector(hv, caller, port, caller.ports[port]!.notifyVcpu);
  return 0;
}

/**
 * XENEMU_EVTCHNOP_bind_virq_listener {virq}: one more port of the caller
 * for a global VIRQ, fired with the VIRQ's port. In xenemu Domain-0's own
 * process holds VIRQ_DOM_EXC (xend acts on it), and a Domain-0 program that
 * binds it too (Xen's xenstored does, through /dev/xen/evtchn) gets a port
 * of its own this way where Xen would answer -EEXIST to the second binder.
 */
export function evtchnBindVirqListener(_hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { virq?: number }): HcResult {
  const virq = Number(arg.virq);
  if (!Number.isInteger(virq) || !GLOBAL_VIRQS.has(virq)) return -XEN_EINVAL;
  const port = getFreePort(caller);
  if (port < 0) return port;
  caller.ports[port] = { state: 'virq', remoteDom: 0, remotePort: 0, virq, notifyVcpu: 0 };
  let set = caller.virqListeners.get(virq);
  if (!set) caller.virqListeners.set(virq, set = new Set());
  set.add(port);
  return { ret: 0, data: { port } };
}

/** send_guest_vcpu_virq / send_guest_global_virq (and the VIRQ's listener ports). */
export function sendVirq(hv: Hypervisor, d: Domain, virq: number): void {
  const port = d.virqToPort.get(virq);
  if (port !== undefined) setPending(hv, d, port, d.ports[port]?.notifyVcpu ?? 0);
  const more = d.virqListeners.get(virq);
  if (more) for (const p of more) setPending(hv, d, p, 0);
}

/** On destroy: close every port, so peers see their end go unbound. */
export function evtchnDestroy(hv: Hypervisor, d: Domain): void {
  for (let p = 1; p < d.ports.length; p++) {
    const c = d.ports[p];
    if (c && c.state !== 'free' && c.state !== 'reserved') closePort(hv, d, p);
  }
  // Unbound ports elsewhere that waited for this domain can never be bound now.
}
