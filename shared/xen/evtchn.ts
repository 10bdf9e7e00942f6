// Event channels as a guest sees them (Xen 2-level ABI; Mini-OS events.c,
// Linux events_2l.c). The hypervisor sends an `upcall` message when it moves
// evtchn_upcall_pending from 0 to 1; this layer then scans, Xen's way:
//
//   upcall_pending = 0
//   sel = xchg(pending_sel, 0)
//   for each bit w in sel: for each port in pending[w] & ~mask[w]:
//       clear pending[port]; handler(port)
//   repeat while upcall_pending was set again meanwhile
//
// Clearing in that order is what makes the hypervisor's test-and-set chain
// send at most one upcall per batch of events.
import {
  EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_bind_virq, EVTCHNOP_close, EVTCHNOP_send,
  EVTCHNOP_status, EVTCHNOP_unmask, type evtchn_status,
} from '../abi/event_channel.js';
import { DOMID_SELF } from '../abi/xen.js';
import { check, type HypervisorClient } from './hypervisor.js';
import type { SharedInfo } from './shared_info.js';

export type PortHandler = (port: number) => void;

export class EventChannels {
  private readonly handlers = new Map<number, PortHandler>();
  private scanning = false;
  /**
   * Ports whose event arrived before a handler: masked with the event left
   * pending, so on() delivers it (a bind's own event races its reply).
   */
  private readonly held = new Set<number>();

  constructor(private readonly hv: HypervisorClient, private readonly si: SharedInfo, private readonly vcpu = 0) {
    hv.onUpcall(() => this.scan());
  }

  /** Handles events of `port`; replaces an earlier handler. */
  on(port: number, handler: PortHandler): void {
    this.handlers.set(port, handler);
    if (this.held.delete(port)) this.unmask(port);
  }
  off(port: number): void { this.handlers.delete(port); }

  async allocUnbound(remoteDom: number, dom = DOMID_SELF): Promise<number> {
    const r = check('EVTCHNOP_alloc_unbound', await this.hv.event_channel_op<{ port: number }>(
      EVTCHNOP_alloc_unbound, { dom, remote_dom: remoteDom }));
    return r.data!.port;
  }

  async bindInterdomain(remoteDom: number, remotePort: number): Promise<number> {
    const r = check('EVTCHNOP_bind_interdomain', await this.hv.event_channel_op<{ local_port: number }>(
      EVTCHNOP_bind_interdomain, { remote_dom: remoteDom, remote_port: remotePort }));
    return r.data!.local_port;
  }

  async bindVirq(virq: number, vcpu = 0): Promise<number> {
    const r = check('EVTCHNOP_bind_virq', await this.hv.event_channel_op<{ port: number }>(EVTCHNOP_bind_virq, { virq, vcpu }));
    return r.data!.port;
  }

  async close(port: number): Promise<number> {
    this.handlers.delete(port);
    if (this.held.delete(port)) this.si.clearMask(port);
    return (await this.hv.event_channel_op(EVTCHNOP_close, { port })).ret;
  }

  /** EVTCHNOP_send, fire and forget: the fast path. */
  notify(port: number): void { this.hv.notify(port); }

  /** EVTCHNOP_send, awaited: 0 or a negative errno. */
  async send(port: number): Promise<number> {
    return (await this.hv.event_channel_op(EVTCHNOP_send, { port })).ret;
  }

  async status(port: number, dom = DOMID_SELF): Promise<evtchn_status & { ret: number }> {
    const r = await this.hv.event_channel_op<evtchn_status>(EVTCHNOP_status, { dom, port });
    return { ...(r.data ?? { dom, port }), dom, port, ret: r.ret };
  }

  mask(port: number): void { this.si.setMask(port); }

  /**
   * Clears the mask; an event that arrived while masked is delivered now,
   * locally (as Linux's unmask_evtchn does for the current vCPU).
   */
  unmask(port: number): void {
    this.si.clearMask(port);
    if (this.si.testPending(port) && !this.si.testAndSetSel(this.vcpu, port >>> 6)) {
      if (this.si.setUpcallPending(this.vcpu, 1) === 0) queueMicrotask(() => this.scan());
    }
  }

  /** EVTCHNOP_unmask through the hypervisor (for callers that want Xen's exact path). */
  async unmaskHypercall(port: number): Promise<number> {
    return (await this.hv.event_channel_op(EVTCHNOP_unmask, { port })).ret;
  }

  /** The upcall handler: scan and dispatch everything pending and unmasked. */
  scan(): void {
    if (this.scanning) return; // a handler's own upcall: the running loop sees it
    this.scanning = true;
    try {
      do {
        this.si.setUpcallPending(this.vcpu, 0);
        // Both halves are taken before either is scanned: one xchg in Xen.
        const lo = this.si.takeSelHalf(this.vcpu, 0);
        const hi = this.si.takeSelHalf(this.vcpu, 1);
        this.scanHalf(lo, 0);
        this.scanHalf(hi, 32);
      } while (this.si.upcallPending(this.vcpu) !== 0);
    } finally {
      this.scanning = false;
    }
  }

  private scanHalf(sel: number, base: number): void {
    while (sel !== 0) {
      const bit = 31 - Math.clz32(sel & -sel);
      sel &= ~(1 << bit);
      const word = base + bit;
      for (let half: 0 | 1 = 0; half < 2; half++) {
        let active = this.si.activeWord(word, half as 0 | 1);
        while (active !== 0) {
          const b = 31 - Math.clz32(active & -active);
          active &= ~(1 << b);
          const port = word * 64 + half * 32 + b;
          const h = this.handlers.get(port);
          if (!h) { this.si.setMask(port); this.held.add(port); continue; }
          this.si.clearPending(port);
          try { h(port); } catch (err) { process.stderr.write(`evtchn: handler of port ${port} threw: ${String(err)}\n`); }
        }
      }
    }
  }
}
