// xenstored's event channels in Domain-0: for each introduced guest, bind to
// the port the guest allocated for xenstore (EVTCHNOP_bind_interdomain, as
// Xen's xenstored does in domain.c) and kick the guest's ring connection when
// it fires. The bind is asynchronous; a notify asked for before it completes
// is sent once it does.
import type { EventChannels } from '../../../shared/xen/index.js';
import type { XsEventChannel } from './index.js';

export function xenstoredEvtchn(ev: EventChannels, log: (msg: string) => void): XsEventChannel {
  return {
    bind(domid, remotePort, onEvent) {
      let port = -1;
      let closed = false;
      let early = false;
      void ev.bindInterdomain(domid, remotePort).then((p) => {
        if (closed) { void ev.close(p); return; }
        port = p;
        ev.on(p, () => onEvent());
        if (early) ev.notify(p);
      }, (err) => log(`bind to d${domid} port ${remotePort} failed: ${(err as Error).message}`));
      return {
        notify() { if (port > 0) ev.notify(port); else early = true; },
        close() { closed = true; if (port > 0) void ev.close(port); },
      };
    },
  };
}
