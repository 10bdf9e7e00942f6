// xenemu hypervisor: one per virtual host (docs/hypervisor.md).
//
//   node dist/processes/hypervisor/main.js --host <name> --rundir <dir>
//        [--memory MB] [--pcpus N] [--dom0-mem MB] [--dom0 <program.js>] [--sched credit|rr]
//        [--pci e1000|nvme:<image>]...    the host's PCI devices (docs/passthrough.md)
//   env XENEMU_READY_FD: a pipe fd to write "ready\n" to once Dom0 is up
//   env XENEMU_LIFELINE: die with the launcher (foreground mode)
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { watchParent } from '../../shared/runtime/lifeline.js';
import { hypervisorTitle, setProcessTitle } from '../../shared/runtime/title.js';
import { ensureHostDir, isValidHostName } from '../../shared/host.js';
import { Hypervisor } from './hypervisor.js';
import { parsePciSpec, type PciSpec } from '../../shared/wire/pcidev.js';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    rundir: { type: 'string' },
    memory: { type: 'string', default: '2048' },
    pcpus: { type: 'string', default: '2' },
    'dom0-mem': { type: 'string' },
    dom0: { type: 'string' },
    sched: { type: 'string', default: process.env.XENEMU_SCHED ?? 'credit' },
    listen: { type: 'string' },
    uplink: { type: 'string' },
    pci: { type: 'string', multiple: true },
  },
  strict: true,
});

const host = values.host ?? '';
if (!isValidHostName(host) || !values.rundir) {
  process.stderr.write('usage: hypervisor --host <name> --rundir <dir> [--memory MB] [--pcpus N]\n');
  process.exit(2);
}
const memoryMB = Number(values.memory);
const pcpus = Number(values.pcpus);
if (!Number.isInteger(memoryMB) || memoryMB < 64 || !Number.isInteger(pcpus) || pcpus < 1 || pcpus > 64) {
  process.stderr.write('hypervisor: --memory must be >= 64 (MB) and --pcpus 1..64\n');
  process.exit(2);
}
if (values.sched !== 'credit' && values.sched !== 'rr') {
  process.stderr.write('hypervisor: --sched must be credit or rr\n');
  process.exit(2);
}
// --listen ADDR:PORT: Domain-0's xend takes migrations there (docs/saverestore.md); it finds it in its environment.
if (values.listen !== undefined) {
  if (!/^[^\s:]+:\d{1,5}$/.test(values.listen)) {
    process.stderr.write('hypervisor: --listen must be ADDR:PORT\n');
    process.exit(2);
  }
  process.env.XENEMU_LISTEN = values.listen;
}
// --uplink BRIDGE: Domain-0's xenbr0 gets a TAP port on that Linux bridge of
// the host's namespace (docs/net.md "Uplink"); it finds it in its environment.
if (values.uplink !== undefined) process.env.XENEMU_UPLINK = values.uplink;
const pci: PciSpec[] = [];
for (const a of values.pci ?? []) {
  const p = parsePciSpec(a);
  if (typeof p === 'string') { process.stderr.write(`hypervisor: ${p}\n`); process.exit(2); }
  pci.push(p.image ? { ...p, image: resolve(p.image) } : p);
}
// dom0_mem: 512 MB, or a quarter of a small host (at least 64 MB).
const dom0MB = values['dom0-mem'] ? Number(values['dom0-mem']) : Math.min(512, Math.max(64, Math.floor(memoryMB / 4)));
const readyFd = process.env.XENEMU_READY_FD ? Number(process.env.XENEMU_READY_FD) : undefined;

setProcessTitle(hypervisorTitle(host));
const rundir = resolve(values.rundir);
ensureHostDir(rundir);
const hv = new Hypervisor({
  host, rundir, memoryMB, pcpus, dom0MB, readyFd, sched: values.sched,
  dom0Program: resolve(values.dom0 ?? process.env.XENEMU_DOM0_PROGRAM ?? join(dist, 'processes', 'dom0', 'main.js')),
  defaultDomUProgram: join(dist, 'processes', 'domu', 'main.js'),
  pci, pcidevProgram: join(dist, 'processes', 'pcidev', 'main.js'),
});

const down = (why: string) => { void hv.stop(why, 0); };
process.on('SIGTERM', () => down('SIGTERM'));
process.on('SIGINT', () => down('SIGINT'));
process.on('SIGHUP', () => down('SIGHUP'));
watchParent(() => down('launcher gone'));

hv.boot().catch((err: Error) => {
  process.stderr.write(`hypervisor: boot failed: ${err.message}\n`);
  void hv.stop('boot failed', 1);
});
