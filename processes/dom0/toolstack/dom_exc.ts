// VIRQ_DOM_EXC: the hypervisor's "some domain changed state" interrupt
// (shutdown, crash, destruction), a global VIRQ that only one port of Dom0
// can have. One DomainExceptions per Dom0 binds it and fans it out; whoever
// waits for a domain re-reads getdomaininfo on each event, as libxl's
// domain_death_xswatch_callback does (the event says "look", not "who").
import { VIRQ_DOM_EXC } from '../../../shared/abi/xen.js';
import {
  XEN_DOMCTL_getdomaininfo, XEN_DOMINF_dying, XEN_DOMINF_shutdown, dominfShutdownReason,
  type xen_domctl_getdomaininfo,
} from '../../../shared/abi/domctl.js';
import { XEN_ESRCH } from '../../../shared/abi/errno.js';
import type { XenDomain } from '../../../shared/xen/index.js';

export type DomainFate =
  | { state: 'shutdown'; reason: number }
  | { state: 'gone' }
  | { state: 'timeout' };

export class DomainExceptions {
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly dom0: XenDomain, readonly port: number) {}

  /** Binds VIRQ_DOM_EXC on Dom0 (once per Dom0). */
  static async bind(dom0: XenDomain): Promise<DomainExceptions> {
    const port = await dom0.evtchn.bindVirq(VIRQ_DOM_EXC);
    const d = new DomainExceptions(dom0, port);
    dom0.evtchn.on(port, () => d.poke());
    return d;
  }

  /**
   * Without binding: for a Dom0 component that already owns VIRQ_DOM_EXC and
   * forwards its events by calling poke().
   */
  static unbound(dom0: XenDomain): DomainExceptions { return new DomainExceptions(dom0, -1); }

  /** Runs every listener (the VIRQ fired). */
  poke(): void { for (const l of [...this.listeners]) l(); }

  onEvent(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The domain's record, or null when it is gone (getdomaininfo answers the next domain up: compare ids). */
  async info(domid: number): Promise<xen_domctl_getdomaininfo | null> {
    const r = await this.dom0.hv.domctl<xen_domctl_getdomaininfo>(XEN_DOMCTL_getdomaininfo, { domain: domid });
    if (r.ret === -XEN_ESRCH) return null;
    if (r.ret < 0) throw new Error(`getdomaininfo d${domid}: ${r.ret}`);
    return r.data!.domain === domid ? r.data! : null;
  }

  /** What happened to the domain right now, or null while it runs. */
  async fate(domid: number): Promise<DomainFate | null> {
    const i = await this.info(domid);
    if (!i || i.flags & XEN_DOMINF_dying) return { state: 'gone' };
    if (i.flags & XEN_DOMINF_shutdown) return { state: 'shutdown', reason: dominfShutdownReason(i.flags) };
    return null;
  }

  /** Resolves once the domain has shut down or is gone, or after timeoutMs. */
  waitForShutdown(domid: number, timeoutMs: number): Promise<DomainFate> {
    return new Promise((resolve, reject) => {
      let done = false;
      let checking = false;
      let again = false;
      const finish = (f: DomainFate) => {
        if (done) return;
        done = true;
        off();
        clearTimeout(timer);
        resolve(f);
      };
      const look = async () => {
        if (checking) { again = true; return; }
        checking = true;
        try {
          do {
            again = false;
            const f = await this.fate(domid);
            if (f) finish(f);
          } while (again && !done);
        } catch (err) {
          if (!done) { done = true; off(); clearTimeout(timer); reject(err); }
        } finally {
          checking = false;
        }
      };
      const off = this.onEvent(() => void look());
      const timer = setTimeout(() => finish({ state: 'timeout' }), timeoutMs);
      void look();
    });
  }

  close(): void {
    this.listeners.clear();
    if (this.port > 0) void this.dom0.evtchn.close(this.port);
  }
}
