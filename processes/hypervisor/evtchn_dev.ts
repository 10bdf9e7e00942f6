// /dev/xen/evtchn for Domain-0's programs (Linux's drivers/xen/evtchn.c),
// reached through the privcmd socket (privcmd_sock.ts): each open of the
// device is one connection of kind EVTCHN, one EvtchnFile here.
//
// Ports are Domain-0's, bound by the hypercalls the driver would make
// (through the one hypercall table, as Domain-0). A bound port's events go
// to its file instead of Domain-0's shared_info (EvtchnChannel.user):
//
//   event on port P of the file   P enabled  -> disable P, write P (u32) to the connection
//                                 P disabled -> remember it; delivered again when P is unmasked
//   program writes P (u32)        enable P (the driver's lateeoi), and deliver what waited
//
// which is the driver's: a port fires once and stays quiet until the program
// writes it back (xenevtchn_unmask). Closing the file unbinds its ports.
import * as E from '../../shared/abi/event_channel.js';
import {
  IOCTL_EVTCHN_BIND_INTERDOMAIN, IOCTL_EVTCHN_BIND_UNBOUND_PORT, IOCTL_EVTCHN_BIND_VIRQ, IOCTL_EVTCHN_NOTIFY,
  IOCTL_EVTCHN_RESET, IOCTL_EVTCHN_RESTRICT_DOMID, IOCTL_EVTCHN_UNBIND, ioctl_evtchn_bind_interdomain,
} from '../../shared/abi/sys/evtchn.js';
import { __HYPERVISOR_event_channel_op, DOMID_FIRST_RESERVED, DOMID_SELF, GLOBAL_VIRQS } from '../../shared/abi/xen.js';
import { XEN_EACCES, XEN_EEXIST, XEN_EINVAL, XEN_ENOTCONN } from '../../shared/abi/errno.js';
import { LINUX_ENOTTY } from '../../shared/abi/sys/privcmd.js';
import { dispatch } from './hypercall.js';
import { clearMask, takePending, type EvtchnUser } from './event_channel.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';

const UNRESTRICTED = -1;

interface UserPort { enabled: boolean; waiting: boolean }

export class EvtchnFile implements EvtchnUser {
  private readonly ports = new Map<number, UserPort>();
  private restrictDomid = UNRESTRICTED;
  private closed = false;

  /** `send`: bytes to the file's connection (pending ports, u32 each). */
  constructor(private readonly hv: Hypervisor, private readonly d0: Domain, readonly id: number,
              private readonly send: (b: Buffer) => void) {}

  /** An ioctl of xen/sys/evtchn.h on this file; `arg` holds its struct. The port bound, 0, or -errno. */
  ioctl(cmd: number, arg: Buffer): number {
    if (this.closed) return -XEN_EINVAL;
    const u32 = (off: number) => (arg.length >= off + 4 ? arg.readUInt32LE(off) : -1);
    switch (cmd) {
      case IOCTL_EVTCHN_BIND_VIRQ: {
        if (this.restrictDomid !== UNRESTRICTED) return -XEN_EACCES;
        const virq = u32(0);
        let r = this.op(E.EVTCHNOP_bind_virq, { virq, vcpu: 0 });
        if (r.ret === -XEN_EEXIST && GLOBAL_VIRQS.has(virq)) r = this.op(E.XENEMU_EVTCHNOP_bind_virq_listener, { virq });
        return r.ret < 0 ? r.ret : this.attach((r.data as { port: number }).port);
      }
      case IOCTL_EVTCHN_BIND_INTERDOMAIN: {
        const L = ioctl_evtchn_bind_interdomain;
        const remote = u32(L.remote_domain);
        if (this.restrictDomid !== UNRESTRICTED && this.restrictDomid !== remote) return -XEN_EACCES;
        const r = this.op(E.EVTCHNOP_bind_interdomain, { remote_dom: remote, remote_port: u32(L.remote_port) });
        return r.ret < 0 ? r.ret : this.attach((r.data as { local_port: number }).local_port);
      }
      case IOCTL_EVTCHN_BIND_UNBOUND_PORT: {
        if (this.restrictDomid !== UNRESTRICTED) return -XEN_EACCES;
        const r = this.op(E.EVTCHNOP_alloc_unbound, { dom: DOMID_SELF, remote_dom: u32(0) });
        return r.ret < 0 ? r.ret : this.attach((r.data as { port: number }).port);
      }
      case IOCTL_EVTCHN_UNBIND: {
        const port = u32(0);
        if (port < 0 || port > this.d0.maxEvtchnPort) return -XEN_EINVAL;
        if (!this.ports.has(port)) return -XEN_ENOTCONN;
        this.detach(port);
        return this.op(E.EVTCHNOP_close, { port }).ret;
      }
      case IOCTL_EVTCHN_NOTIFY: {
        const port = u32(0);
        if (!this.ports.has(port)) return -XEN_ENOTCONN;
        return this.op(E.EVTCHNOP_send, { port }).ret;
      }
      case IOCTL_EVTCHN_RESET:
        for (const p of this.ports.values()) p.waiting = false;
        return 0;
      case IOCTL_EVTCHN_RESTRICT_DOMID: {
        const domid = arg.length >= 2 ? arg.readUInt16LE(0) : -1;
        if (this.restrictDomid !== UNRESTRICTED) return -XEN_EACCES;
        if (domid <= 0 || domid >= DOMID_FIRST_RESERVED) return -XEN_EINVAL;
        this.restrictDomid = domid;
        return 0;
      }
      default:
        return -LINUX_ENOTTY;
    }
  }

  /** An event on one of this file's ports (setPending). */
  deliver(port: number): void {
    const p = this.ports.get(port);
    if (!p || this.closed) return;
    if (!p.enabled) { p.waiting = true; return; }
    p.enabled = false;
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(port, 0);
    this.send(b);
  }

  /** The program wrote `port` back: enabled again, and what waited fires. */
  unmask(port: number): void {
    const p = this.ports.get(port);
    if (!p || p.enabled) return;
    p.enabled = true;
    if (p.waiting) { p.waiting = false; this.deliver(port); }
  }

  /** The file went (its connection closed): its ports are closed, as the driver's release does. */
  close(): void {
    if (this.closed) return;
    for (const port of [...this.ports.keys()]) {
      this.detach(port);
      this.op(E.EVTCHNOP_close, { port });
    }
    this.closed = true;
  }

  private op(cmd: number, arg: Record<string, unknown>) {
    return dispatch(this.hv, this.d0, __HYPERVISOR_event_channel_op, cmd, arg);
  }

  /**
   * The port is the file's from now on. An event raised before (a bind
   * raises one) is in Domain-0's shared_info: it is taken from there and
   * delivered here.
   */
  private attach(port: number): number {
    const chn = this.d0.ports[port];
    if (!chn) return -XEN_EINVAL;
    chn.user = this;
    this.ports.set(port, { enabled: true, waiting: false });
    if (takePending(this.d0, port)) this.deliver(port);
    return port;
  }

  private detach(port: number): void {
    this.ports.delete(port);
    const chn = this.d0.ports[port];
    if (chn?.user === this) delete chn.user;
    clearMask(this.d0, port);
  }
}
