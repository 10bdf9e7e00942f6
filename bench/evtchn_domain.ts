// A domain program for the evtchn benchmark (bench/evtchn.ts). As Domain-0
// it reports ready and creates its peers (more instances of itself); as any
// domain it takes orders over a ZeroMQ REP socket at
// ipc://<rundir>/evb-d<domid>.ipc: allocate or bind an interdomain port,
// echo every event back (pong), ping-pong for a while and time it, stream
// notifications one way. Orders are off the measured path: a measurement
// runs inside the domain, between two events, and its result is the reply.
import * as zmq from 'zeromq';
import { fileURLToPath } from 'node:url';
import { startDomain, type XenDomain } from '../shared/xen/index.js';
import { encode, decode } from '../shared/wire/codec.js';
import { XEN_DOMCTL_createdomain, XEN_DOMCTL_unpausedomain } from '../shared/abi/domctl.js';
import { EVTCHNOP_status } from '../shared/abi/event_channel.js';

const SELF = fileURLToPath(import.meta.url);

export function controlEndpoint(rundir: string, domid: number): string {
  return `ipc://${rundir}/evb-d${domid}.ipc`;
}

type Order = { op: string } & Record<string, number>;

interface Counter { events: number; upcalls: number }

function ops(dom: XenDomain, counter: Counter): Record<string, (o: Order) => Promise<unknown> | unknown> {
  const countOn = (port: number) => dom.evtchn.on(port, () => { counter.events++; });
  return {
    create: async (o) => {
      const c = await dom.hv.domctl<{ domain: number }>(XEN_DOMCTL_createdomain, {
        max_vcpus: 1, memory_kb: o.memory_kb ?? 16384, xenemu: { program: SELF } });
      if (c.ret < 0) return { ret: c.ret };
      const u = await dom.hv.domctl(XEN_DOMCTL_unpausedomain, { domain: c.data!.domain });
      return { ret: u.ret, domid: c.data!.domain };
    },
    alloc: async (o) => { const p = await dom.evtchn.allocUnbound(o.remoteDom!); countOn(p); return p; },
    bind: async (o) => { const p = await dom.evtchn.bindInterdomain(o.remoteDom!, o.remotePort!); countOn(p); return p; },
    /** Every event on `port` is answered with a notification back. */
    pong: (o) => { const port = o.port!; dom.evtchn.on(port, () => { counter.events++; dom.evtchn.notify(port); }); return 0; },
    /** Round trips (notify, the peer's handler notifies back, our handler runs) for `ms`. */
    ping: (o) => new Promise((resolve) => {
      const port = o.port!;
      let n = 0;
      const t0 = performance.now();
      const end = t0 + o.ms!;
      dom.evtchn.on(port, () => {
        n++;
        const now = performance.now();
        if (now < end) { dom.evtchn.notify(port); return; }
        countOn(port);
        resolve({ roundTrips: n, ms: now - t0 });
      });
      dom.evtchn.notify(port);
    }),
    /**
     * `count` fire-and-forget notifications, then an awaited hypercall on the
     * same socket: its reply means the hypervisor has handled every one.
     */
    stream: async (o) => {
      const port = o.port!;
      const t0 = performance.now();
      for (let i = 0; i < o.count!; i++) dom.evtchn.notify(port);
      await dom.hv.event_channel_op(EVTCHNOP_status, { dom: dom.domid, port });
      return { count: o.count!, ms: performance.now() - t0 };
    },
    counters: () => ({ ...counter }),
    reset: () => { counter.events = 0; counter.upcalls = 0; return 0; },
  };
}

async function main(): Promise<void> {
  const dom = await startDomain();
  const counter: Counter = { events: 0, upcalls: 0 };
  dom.hv.onUpcall(() => { counter.upcalls++; dom.evtchn.scan(); });
  if (dom.domid === 0) await dom.hv.ready();
  const table = ops(dom, counter);
  const sock = new zmq.Reply({ linger: 0 });
  await sock.bind(controlEndpoint(dom.rundir, dom.domid));
  process.on('SIGTERM', () => process.exit(0));
  for await (const [msg] of sock) {
    const o = decode<Order>(msg as Buffer);
    let out: unknown;
    try { out = await (table[o.op] ?? (() => ({ error: `no op ${o.op}` })))(o); } catch (e) { out = { error: String(e) }; }
    await sock.send(encode({ result: out ?? null }));
  }
}

if (process.env.XENEMU_HYPERCALL) {
  main().catch((e: Error) => { process.stderr.write(`evtchn_domain: ${e.stack}\n`); process.exit(1); });
}
