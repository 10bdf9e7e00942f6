// Domain-0's services, started by processes/dom0/main.ts through
// startDom0Services(ctx). Each service is one entry below: it gets the
// Dom0Context and returns something to stop it with. The toolstack (xend,
// xenconsoled) adds its entries here.
import { join } from 'node:path';
import type { XenDomain } from '../../shared/xen/index.js';
import { mapForeignPage } from '../../shared/xen/index.js';
import { Xenstored, type XsEventChannel } from './xenstored/index.js';

export interface Dom0Context {
  /** The host run directory (<root>/<name>). */
  rundir: string;
  hostName: string;
  /** Domain-0's connection to the hypervisor: hypercalls, event channels, grants. */
  hypervisor: XenDomain;
  log: (msg: string) => void;
}

export interface Dom0Service {
  name: string;
  stop(): Promise<void>;
}

export interface RunningDom0Services {
  services: Dom0Service[];
  stop(): Promise<void>;
}

type ServiceStarter = (ctx: Dom0Context) => Promise<Dom0Service>;

/** Event channels for xenstored's guest rings, over Dom0's EventChannels. */
function xenstoredEvtchn(ctx: Dom0Context): XsEventChannel {
  const ev = ctx.hypervisor.evtchn;
  return {
    bind(domid, remotePort, onEvent) {
      let port = -1;
      let closed = false;
      let early = 0;
      void ev.bindInterdomain(domid, remotePort).then((p) => {
        if (closed) { void ev.close(p); return; }
        port = p;
        ev.on(p, () => onEvent());
        for (; early > 0; early--) ev.notify(p);
      }, (err) => ctx.log(`xenstored: bind to d${domid} port ${remotePort} failed: ${(err as Error).message}`));
      return {
        notify() { if (port > 0) ev.notify(port); else early = 1; },
        close() { closed = true; if (port > 0) void ev.close(port); },
      };
    },
  };
}

const starters: ServiceStarter[] = [
  async (ctx) => {
    const xs = await Xenstored.start({
      socketPath: join(ctx.rundir, 'xenstored.sock'),
      stateDir: join(ctx.rundir, 'xenstored'),
      log: (m) => ctx.log(`xenstored: ${m}`),
      mapRing: (domid, mfn) => mapForeignPage(ctx.hostName, domid, mfn),
      evtchn: xenstoredEvtchn(ctx),
    });
    return { name: 'xenstored', stop: () => xs.close() };
  },
];

/** Starts every Dom0 service in order; the host is ready when this resolves. */
export async function startDom0Services(ctx: Dom0Context): Promise<RunningDom0Services> {
  const services: Dom0Service[] = [];
  for (const start of starters) {
    const s = await start(ctx);
    ctx.log(`started ${s.name}`);
    services.push(s);
  }
  return {
    services,
    async stop() {
      for (const s of services.reverse()) {
        try { await s.stop(); } catch (err) { ctx.log(`stopping ${s.name}: ${(err as Error).message}`); }
      }
    },
  };
}
