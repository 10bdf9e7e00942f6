// A guest's primary console wired to xenconsoled, as Xen's xenconsoled does
// in domain_create_ring() (tools/console/daemon/io.c):
//
//   builder: console page (console_mfn) + unbound port of the guest for d0
//   here:    map the page (Dom0's foreign mapping), bind_interdomain to the
//            guest's port, guest events -> Xenconsoled.kick(domid),
//            Xenconsoled's notify -> EVTCHNOP_send on our end,
//            PTY path -> /local/domain/<id>/console/tty
//
// disconnect() undoes it in the reverse order; both are safe to call on a
// half-wired console.
import type { XenDomain } from '../../../shared/xen/index.js';
import { mapForeignPage } from '../../../shared/xen/index.js';
import type { XsClient } from '../../../shared/xenstore/client.js';
import type { Xenconsoled } from '../xenconsoled/xenconsoled.js';

export interface WiredConsole {
  domid: number;
  /** Dom0's end of the console event channel (0 once closed). */
  localPort: number;
  ptyPath: string;
}

export async function connectConsole(dom0: XenDomain, consoled: Xenconsoled, xs: XsClient,
                                     g: { domid: number; name: string; consoleMfn: number; consolePort: number }): Promise<WiredConsole> {
  const page = mapForeignPage(dom0.host, g.domid, g.consoleMfn);
  const localPort = await dom0.evtchn.bindInterdomain(g.domid, g.consolePort);
  const wired: WiredConsole = { domid: g.domid, localPort, ptyPath: '' };
  try {
    const { ptyPath } = consoled.addConsole(g.domid, g.name, page, () => dom0.evtchn.notify(localPort));
    wired.ptyPath = ptyPath;
    // The bind raised an event on our port; take it (and any later one) now.
    dom0.evtchn.on(localPort, () => consoled.kick(g.domid));
    await xs.write(`/local/domain/${g.domid}/console/tty`, ptyPath);
    return wired;
  } catch (e) {
    await disconnectConsole(dom0, consoled, wired);
    throw e;
  }
}

export async function disconnectConsole(dom0: XenDomain, consoled: Xenconsoled, c: WiredConsole): Promise<void> {
  if (c.localPort > 0) {
    const port = c.localPort;
    c.localPort = 0;
    await dom0.evtchn.close(port).catch(() => undefined);
  }
  await consoled.removeConsole(c.domid);
}
