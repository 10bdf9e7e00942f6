// A PV guest: started by the hypervisor at its domain's first unpause
// (docs/hypervisor.md), booted from the start_info Dom0's builder wrote
// (docs/domu.md).
import { startDomain } from '../../shared/xen/index.js';
import { bootKernel } from './kernel.js';

async function main(): Promise<void> {
  const dom = await startDomain();
  process.on('SIGTERM', () => { dom.close(); process.exit(0); });
  await bootKernel(dom);
}

main().catch((err: Error) => {
  process.stderr.write(`domu: ${err.stack ?? err.message}\n`);
  process.exit(1); // without SCHEDOP_shutdown: the hypervisor records a crash
});
