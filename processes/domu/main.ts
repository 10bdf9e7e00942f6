// A PV guest: started by the hypervisor at its domain's first unpause
// (docs/hypervisor.md), booted from the start_info Dom0's builder wrote
// (docs/domu.md). Started with --spare, it is a process made ahead of need:
// its modules are loaded (the static imports below) and it waits for the
// hypervisor to give it a domain (shared/wire/spare.ts).
//
// Its title in `ps` says which it is (shared/runtime/title.ts): `xenemu-domU
// spare host=H`, then `xenemu-domU domid=N host=H` once it has a domain, and
// the kernel adds the domain's name when it reads it (kernel.ts).
import { startDomain } from '../../shared/xen/index.js';
import { SPARE_FLAG, awaitAssignment } from '../../shared/wire/spare.js';
import { domUTitle, setProcessTitle, spareTitle } from '../../shared/runtime/title.js';
import { bootKernel } from './kernel.js';
import { bootHvm } from './hvm/index.js';

async function main(): Promise<void> {
  const host = process.env.XENEMU_HOST ?? '';
  if (process.argv.includes(SPARE_FLAG)) {
    setProcessTitle(spareTitle(host));
    if (!(await awaitAssignment())) process.exit(0);
  }
  setProcessTitle(domUTitle(host, Number(process.env.XENEMU_DOMID)));
  const dom = await startDomain();
  process.on('SIGTERM', () => { dom.close(); process.exit(0); });
  if (dom.hello.hvm) await bootHvm(dom);
  else await bootKernel(dom);
}

main().catch((err: Error) => {
  process.stderr.write(`domu: ${err.stack ?? err.message}\n`);
  process.exit(1); // without SCHEDOP_shutdown: the hypervisor records a crash
});
