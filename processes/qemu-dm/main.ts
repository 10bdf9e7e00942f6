// qemu-dm: the device model of one HVM guest, in one of its two places
// (docs/hvm.md, docs/stubdom.md):
//
//   node qemu-dm/main.js <qemu-xen arguments>      a program of Domain-0, started
//                                                  by the toolstack as libxl starts
//                                                  upstream QEMU (local.ts)
//   node qemu-dm/main.js --host H --domid N --stubdom
//                                                  the program of the stub domain
//                                                  `<guest>-dm`, started by the
//                                                  hypervisor (stubdom.ts)
//
// Both run the same device model (device_model.ts, the ioreq thread and
// shared/hw); they differ in their channels to Xen and where the guest's
// disks, NICs and serial port lead.
import { parseQemuDmArgs, ArgError, type QemuDmArgs } from './args.js';
import { qemuDmTitle, setProcessTitle } from '../../shared/runtime/title.js';
import { runLocal } from './local.js';
import { runStubdom, STUBDOM_FLAG } from './stubdom.js';

const log = (m: string) => process.stderr.write(`${new Date().toISOString()} qemu-dm: ${m}\n`);

async function main(): Promise<void> {
  if (process.argv.includes(STUBDOM_FLAG)) return runStubdom();
  let a: QemuDmArgs;
  try {
    a = parseQemuDmArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ArgError) { process.stderr.write(`qemu-dm: ${err.message}\n`); process.exit(1); }
    throw err;
  }
  const host = process.env.XENEMU_HOST ?? '';
  const rundir = process.env.XENEMU_HOST_DIR ?? '';
  if (!host || !rundir) throw new Error('XENEMU_HOST and XENEMU_HOST_DIR must name the host (qemu-dm is started by the toolstack)');
  setProcessTitle((n) => qemuDmTitle(host, a.domid, n), a.name);
  await runLocal(a, rundir, log);
}

main().catch((err: Error) => {
  process.stderr.write(`qemu-dm: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
