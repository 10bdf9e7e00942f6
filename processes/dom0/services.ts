// Domain-0's services, started by processes/dom0/main.ts through
// startDom0Services(ctx), in this order:
//
//   xenstored    <rundir>/xenstored.sock, state in <rundir>/xenstored/
//   init-dom0    xen-init-dom0's nodes and files, once (toolstack/init_dom0.ts)
//   xenconsoled  console rings -> PTYs, logs in <rundir>/logs/console/
//   blkback      vbd back ends over raw image files (processes/dom0/blkback/)
//   netback      vif back ends + the xenbr0 bridge (processes/dom0/netback/)
//   pciback      PCI back ends of PV guests (processes/dom0/pciback/)
//   xend         XML-RPC on <rundir>/xend.sock over the XenToolstack
//                (hypercalls + a privileged xenstore connection + xenconsoled)
//
// Each service is one entry below: it gets the Dom0Context and what the
// services before it started (Dom0Started), and returns something to stop
// it with. They stop in the reverse order.
import { join } from 'node:path';
import type { XenDomain } from '../../shared/xen/index.js';
import { mapForeignPage } from '../../shared/xen/index.js';
import { XsClient } from '../../shared/xenstore/client.js';
import { XEND_SOCKET } from '../../shared/toolstack/xend_api.js';
import { Xenstored } from './xenstored/index.js';
import { xenstoredEvtchn } from './xenstored/evtchn.js';
import { Xenconsoled } from './xenconsoled/xenconsoled.js';
import { XendServer } from './xend/server.js';
import { XenToolstack } from './xend/xen_toolstack.js';
import { Blkback } from './blkback/blkback.js';
import { Netback } from './netback/netback.js';
import { Pciback } from './pciback/pciback.js';
import { initDom0 } from './toolstack/init_dom0.js';

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

/** What earlier services hand to later ones. */
interface Dom0Started {
  xenconsoled?: Xenconsoled;
  netback?: Netback;
}

type ServiceStarter = (ctx: Dom0Context, started: Dom0Started) => Promise<Dom0Service>;


const starters: ServiceStarter[] = [
  async (ctx) => {
    const xs = await Xenstored.start({
      socketPath: join(ctx.rundir, 'xenstored.sock'),
      stateDir: join(ctx.rundir, 'xenstored'),
      log: (m) => ctx.log(`xenstored: ${m}`),
      mapRing: (domid, mfn) => mapForeignPage(ctx.hostName, domid, mfn),
      evtchn: xenstoredEvtchn(ctx.hypervisor.evtchn, (m) => ctx.log(`xenstored: ${m}`)),
    });
    return { name: 'xenstored', stop: () => xs.close() };
  },
  async (ctx) => {
    const xs = await XsClient.connect(join(ctx.rundir, 'xenstored.sock'));
    try { await initDom0(xs, ctx.rundir); } finally { xs.close(); }
    return { name: 'init-dom0', stop: async () => undefined };
  },
  async (ctx, started) => {
    const consoled = new Xenconsoled({ logDir: join(ctx.rundir, 'logs') });
    started.xenconsoled = consoled;
    return { name: 'xenconsoled', stop: () => consoled.close() };
  },
  async (ctx) => {
    // Its own xenstore connection: backend watches stay off xend's.
    const xs = await XsClient.connect(join(ctx.rundir, 'xenstored.sock'));
    let bb: Blkback;
    try {
      bb = await Blkback.start({ dom0: ctx.hypervisor, xs, log: ctx.log });
    } catch (e) {
      xs.close();
      throw e;
    }
    return { name: 'blkback', async stop() { await bb.close(); xs.close(); } };
  },
  async (ctx, started) => {
    const xs = await XsClient.connect(join(ctx.rundir, 'xenstored.sock'));
    let nb: Netback;
    try {
      nb = await Netback.start({ dom0: ctx.hypervisor, xs, log: (m) => ctx.log(`netback: ${m}`) });
    } catch (e) {
      xs.close();
      throw e;
    }
    started.netback = nb;
    return { name: 'netback', async stop() { await nb.close(); xs.close(); } };
  },
  async (ctx) => {
    const xs = await XsClient.connect(join(ctx.rundir, 'xenstored.sock'));
    let pb: Pciback;
    try {
      pb = await Pciback.start({ dom0: ctx.hypervisor, xs, log: ctx.log });
    } catch (e) {
      xs.close();
      throw e;
    }
    return { name: 'pciback', async stop() { await pb.close(); xs.close(); } };
  },
  async (ctx, started) => {
    // A socket connection to xenstored is Dom0's: privileged, as libxl's.
    const xs = await XsClient.connect(join(ctx.rundir, 'xenstored.sock'));
    let toolstack: XenToolstack;
    try {
      toolstack = await XenToolstack.start({ dom0: ctx.hypervisor, xs, consoled: started.xenconsoled!, log: ctx.log, hotplug: started.netback });
      // xenemu up --listen ADDR:PORT: this host takes migrations (docs/saverestore.md).
      if (process.env.XENEMU_LISTEN) await toolstack.listen(process.env.XENEMU_LISTEN);
    } catch (e) {
      xs.close();
      throw e;
    }
    const server = new XendServer(toolstack);
    await server.listen(join(ctx.rundir, XEND_SOCKET));
    return {
      name: 'xend',
      async stop() {
        await server.close();
        await toolstack.close();
        xs.close();
      },
    };
  },
];

/** Starts every Dom0 service in order; the host is ready when this resolves. */
export async function startDom0Services(ctx: Dom0Context): Promise<RunningDom0Services> {
  const services: Dom0Service[] = [];
  const started: Dom0Started = {};
  for (const start of starters) {
    const s = await start(ctx, started);
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
