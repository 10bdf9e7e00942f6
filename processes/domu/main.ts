// A PV guest: started by the hypervisor at its domain's first unpause
// (docs/hypervisor.md), booted from the start_info Dom0's builder wrote
// (docs/domu.md). Started with --spare, it is a process made ahead of need:
// its modules are loaded (the static imports below) and it waits for the
// hypervisor to give it a domain (shared/wire/spare.ts).
import { startDomain } from '../../shared/xen/index.js';
import { SPARE_FLAG, awaitAssignment } from '../../shared/wire/spare.js';
import { bootKernel } from './kernel.js';

async function main(): Promise<void> {
  if (process.argv.includes(SPARE_FLAG) && !(await awaitAssignment())) process.exit(0);
  const dom = await startDomain();
  process.on('SIGTERM', () => { dom.close(); process.exit(0); });
  await bootKernel(dom);
}

main().catch((err: Error) => {
  process.stderr.write(`domu: ${err.stack ?? err.message}\n`);
  process.exit(1); // without SCHEDOP_shutdown: the hypervisor records a crash
});
