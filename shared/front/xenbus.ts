// xenbus: the guest's xenstore connection (Mini-OS xenbus/xenbus.c, Linux
// xenbus_comms.c) on the ring page at start_info.store_mfn, kicked through
// start_info.store_evtchn. xenstored maps the page and binds the port when
// the toolstack INTRODUCEs the domain, before it is unpaused.
import { XsClient, XsRingTransport } from '../xenstore/client.js';
import type { XenDomain } from '../xen/index.js';

export function connectXenbus(dom: XenDomain, storePfn: number, storePort: number): XsClient {
  const page = dom.memory.page(storePfn);
  const transport = new XsRingTransport(page, () => dom.evtchn.notify(storePort));
  const xs = new XsClient(transport);
  dom.evtchn.on(storePort, () => transport.kick());
  transport.kick(); // anything already waiting
  return xs;
}
