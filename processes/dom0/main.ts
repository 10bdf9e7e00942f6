// Domain-0: connects to its hypervisor as domid 0, starts the Dom0 services
// (processes/dom0/services.ts), then tells the hypervisor it is ready.
// Started by the hypervisor only (see shared/xen/domain.ts for the contract).
import { startDomain } from '../../shared/xen/index.js';
import { dom0Title, setProcessTitle } from '../../shared/runtime/title.js';
import { startDom0Services } from './services.js';

const log = (msg: string) => process.stdout.write(`[${new Date().toISOString()}] dom0: ${msg}\n`);

async function main(): Promise<void> {
  setProcessTitle(dom0Title(process.env.XENEMU_HOST ?? ''));
  const dom = await startDomain();
  if (dom.domid !== 0) throw new Error(`started as d${dom.domid}, not Domain-0`);
  const running = await startDom0Services({ rundir: dom.rundir, hostName: dom.host, hypervisor: dom, log });
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${why})`);
    await running.stop();
    dom.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const rc = await dom.hv.ready();
  log(rc === 0 ? 'ready' : `ready refused: ${rc}`);
}

main().catch((err: Error) => {
  log(`failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
