#!/usr/bin/env node
// xenemu: the launcher. Subcommands are entries of one table, so the
// toolstack adds `xm`, `xl`, `xenstored`, `demo` as siblings of these.
//
//   xenemu up [--name H] [--memory MB] [--pcpus N] [--listen ADDR:PORT] [--pci e1000|nvme:IMG]... [--foreground]
//             [--netns NS [--join BRIDGE] [--address CIDR]]
//   xenemu down [H]
//   xenemu status
//   xenemu pool [--json]               (launcher/pool.ts)
//   xenemu xm|xl <command> ...        (launcher/xm.ts; docs/toolstack.md)
//   xenemu demo [--name H]             (launcher/demo.ts; `npm start`)
//   xenemu xenstored --socket PATH
//   xenemu run [--host H] -- CMD...    Xen's C tools against the host (launcher/xenctrl.ts)
//   xenemu env [--host H]              their environment, for a shell
//
// Installed as `xm` or `xl` (package.json bin), the program is that command.
import { parseArgs } from 'node:util';
import { DEFAULT_HOST_NAME, isValidHostName, runRoot } from '../shared/host.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { lifelineEnv, lifelineStdio } from '../shared/runtime/lifeline.js';
import { XENSTORED_NODE_FLAGS } from '../shared/runtime/node_flags.js';
import { nodeTitleArgs, xenstoredTitle } from '../shared/runtime/title.js';
import { runXm } from './xm.js';
import { basename, resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { formatPciSpec, parsePciSpec } from '../shared/wire/pcidev.js';

// Subcommands load their modules when they run: `xl create` is on the
// create-to-prompt path (docs/benchmarks.md "boot"), and the host and demo
// modules cost it ~10 ms of start-up for nothing.
const hostCmds = () => import('./host.js');

const xmCommand = (prog: 'xm' | 'xl'): Command => ({
  summary: `${prog} <command> [args]   manage domains through xend (\`xenemu ${prog} help\`)`,
  run: (argv) => runXm(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, prog })
    .finally(releaseStdin),
});

/**
 * After `console` detached, stdin is paused but its handle (a pipe or a
 * TTY) would keep the process alive until the other end closes it.
 */
function releaseStdin(): void {
  if (process.stdin.listenerCount('data') === 0) process.stdin.destroy();
}

function printTable(rows: string[][]): void {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd() + '\n');
}

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {
  up: {
    summary: 'up [--name H] [--memory MB] [--pcpus N] [--listen ADDR:PORT] [--pci e1000|nvme:IMG]... [--foreground] [--netns NS [--join BRIDGE] [--address CIDR]]\n' +
      '      start a virtual host. --listen: take migrations there. --pci: a host PCI device, BDFs 0000:03:00.0 on.\n' +
      '      --netns: run the host in network namespace NS\n' +
      '      (made if missing, removed at down if made), Domain-0\'s xenbr0 reaching NS\'s bridge xenbr0 through its\n' +
      '      TAP vif0.0; --address: NS\'s xenbr0 gets that address (the host\'s, for --listen); --join: NS\'s xenbr0\n' +
      '      is joined to pool bridge BRIDGE of this namespace by a veth pair (peth0 in NS), so the guests of the\n' +
      '      hosts joined to it share one Ethernet segment (docs/net.md "Uplink")',
    async run(argv) {
      const { values } = parseArgs({ args: argv, options: {
        name: { type: 'string', default: DEFAULT_HOST_NAME },
        memory: { type: 'string', default: '2048' },
        pcpus: { type: 'string', default: '2' },
        foreground: { type: 'boolean', default: false },
        dom0: { type: 'string' },
        listen: { type: 'string' },
        netns: { type: 'string' },
        join: { type: 'string' },
        address: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        pci: { type: 'string', multiple: true },
      }, strict: true });
      if (values.help) { process.stdout.write(`usage: xenemu ${commands.up!.summary}\n`); return 0; }
      const name = values.name!;
      const pci: string[] = [];
      for (const a of values.pci ?? []) {
        const p = parsePciSpec(a);
        if (typeof p === 'string') return fail(p);
        if (p.image !== undefined) {
          const img = resolve(p.image);
          if (!existsSync(img) || !statSync(img).isFile()) return fail(`--pci ${a}: no disk image ${img}`);
          p.image = img;
        }
        pci.push('--pci', formatPciSpec(p));
      }
      if (!isValidHostName(name)) return fail(`bad host name '${name}': [A-Za-z0-9_-]{1,32}`);
      const memoryMB = Number(values.memory);
      const pcpus = Number(values.pcpus);
      if (!Number.isInteger(memoryMB) || memoryMB < 64) return fail('--memory must be an integer >= 64 (MB)');
      if (!Number.isInteger(pcpus) || pcpus < 1 || pcpus > 64) return fail('--pcpus must be 1..64');
      if (values.listen !== undefined && !/^[^\s:]+:\d{1,5}$/.test(values.listen)) return fail('--listen must be ADDR:PORT');
      if (values.netns !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(values.netns)) return fail('--netns must be a namespace name ([A-Za-z0-9_.-])');
      if (values.join !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(values.join)) return fail('--join must be a bridge name of at most 15 characters ([A-Za-z0-9_.-])');
      if (values.address !== undefined && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(values.address)) return fail('--address must be an IPv4 CIDR (10.1.0.1/24)');
      if ((values.join !== undefined || values.address !== undefined) && values.netns === undefined) return fail('--join and --address need --netns');
      const net = values.netns === undefined ? undefined : { netns: values.netns, join: values.join, address: values.address, listen: values.listen };
      await (await hostCmds()).up({ root: runRoot(), name, memoryMB, pcpus, foreground: values.foreground!, net,
                 extraArgs: [...(values.dom0 ? ['--dom0', values.dom0] : []), ...(values.listen ? ['--listen', values.listen] : []), ...pci] });
      return 0;
    },
  },
  down: {
    summary: 'down [H]   take a host down (default: xenemu)',
    async run(argv) {
      const name = argv[0] ?? DEFAULT_HOST_NAME;
      if (!isValidHostName(name)) return fail(`bad host name '${name}'`);
      const found = await (await hostCmds()).down(runRoot(), name);
      process.stdout.write(found ? `host ${name} down\n` : `no host ${name}\n`);
      return found ? 0 : 1;
    },
  },
  status: {
    summary: 'status   list running hosts (and clean up after dead ones)',
    async run() {
      const { hosts, reaped } = (await hostCmds()).status(runRoot());
      for (const r of reaped) process.stdout.write(`cleaned up dead host ${r}\n`);
      const rows = [['NAME', 'PID', 'MEM(MB)', 'PCPUS', 'DOMAINS', 'STATE', 'STARTED']];
      for (const h of hosts) {
        rows.push([h.name, String(h.pid), String(h.memoryMB), String(h.pcpus), String(h.domains),
                   h.ready ? 'ready' : 'booting', h.started]);
      }
      printTable(rows);
      // The hosts' PCI devices (`xenemu up --pci`), when any has some.
      const devs = [['HOST', 'BDF', 'MODEL', 'OWNER', 'STATE', 'PID']];
      for (const h of hosts) for (const d of h.pci) devs.push([h.name, d.bdf, d.model, d.owner, d.state, String(d.pid || '-')]);
      if (devs.length > 1) { process.stdout.write('\n'); printTable(devs); }
      return 0;
    },
  },
  pool: {
    summary: 'pool [--json]   the hosts this user runs, their pool peers (reached over --listen) and every guest (name, id, host, state)',
    async run(argv) {
      return (await import('./pool.js')).poolCommand(argv, runRoot(), (s) => process.stdout.write(s));
    },
  },
  xm: xmCommand('xm'),
  xl: xmCommand('xl'),
  demo: {
    summary: 'demo [--name H]   boot a host with two PV guests (disk, network), list them and attach demo1\'s console (npm start)',
    async run(argv) {
      const { values } = parseArgs({ args: argv, options: {
        name: { type: 'string', default: DEFAULT_HOST_NAME },
        memory: { type: 'string', default: '2048' },
        pcpus: { type: 'string', default: '2' },
      }, strict: true });
      if (!isValidHostName(values.name!)) return fail(`bad host name '${values.name}'`);
      const { runDemo } = await import('./demo.js');
      return runDemo({ name: values.name!, memoryMB: Number(values.memory), pcpus: Number(values.pcpus) }).finally(releaseStdin);
    },
  },
  'hvm-image': {
    summary: 'hvm-image [--rebuild]   build (once) a CD image of Debian\'s i386 Linux with busybox on the serial console, for HVM guests; prints its path',
    async run(argv) {
      const { values } = parseArgs({ args: argv, options: { rebuild: { type: 'boolean', default: false } }, strict: true });
      const { buildHvmImage } = await import('./hvm_image.js');
      const img = await buildHvmImage({ rebuild: values.rebuild! });
      process.stdout.write(`${img.iso}\n`);
      return 0;
    },
  },
  run: {
    summary: 'run [--host H] -- CMD [ARGS...]   run a program of Xen\'s (xl, xentop, ...) as a Domain-0 program of the host (docs/xenctrl.md)',
    async run(argv) { return (await import('./xenctrl.js')).runCommand(argv); },
  },
  env: {
    summary: 'env [--host H]   print the environment of `xenemu run` for a shell: eval "$(xenemu env)"',
    async run(argv) { return (await import('./xenctrl.js')).envCommand(argv); },
  },
  xenstored: {
    summary: 'xenstored --socket PATH [--state DIR]   run xenstored alone, in the foreground',
    run(argv) {
      // The daemon is its own process, as in Domain-0; it dies with this one.
      // Its title (`ps`): argv[0] from the start, and node's --title puts it
      // over the whole command line before any module loads.
      const main = fileURLToPath(new URL('../processes/dom0/xenstored/main.js', import.meta.url));
      const title = xenstoredTitle(socketArg(argv) ?? process.env.XENSTORED_PATH);
      const child = spawn(process.execPath, [...nodeTitleArgs(title), ...XENSTORED_NODE_FLAGS, main, ...argv],
        { stdio: lifelineStdio('inherit'), env: lifelineEnv(), argv0: title });
      const forward = (sig: NodeJS.Signals) => () => { child.kill(sig); };
      process.on('SIGTERM', forward('SIGTERM'));
      process.on('SIGINT', forward('SIGINT'));
      return new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 + 15 : 1))));
    },
  },
};

/** The value of `--socket PATH` / `--socket=PATH` in xenstored's arguments. */
function socketArg(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--socket') return argv[i + 1];
    if (argv[i]!.startsWith('--socket=')) return argv[i]!.slice('--socket='.length);
  }
  return undefined;
}

function fail(msg: string): number {
  process.stderr.write(`xenemu: ${msg}\n`);
  return 2;
}

function usage(): number {
  process.stderr.write('usage: xenemu <command> [args]\n');
  for (const c of Object.values(commands)) process.stderr.write(`  xenemu ${c.summary}\n`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const cmd = name ? commands[name] : undefined;
  if (!cmd) return usage();
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof (await hostCmds()).HostError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return fail((err as Error).message);
    throw err;
  }
}

// `xl list | head` closes our stdout early: finish quietly, as xl does.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const invokedAs = process.argv[1] ?? '';
const asProgram = basename(invokedAs);
if (asProgram === 'xm' || asProgram === 'xl') {
  // Installed as xm/xl: the whole command line is the toolstack's.
  xmCommand(asProgram).run(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: Error) => {
    process.stderr.write(`${asProgram}: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  });
} else if (invokedAs.endsWith('/launcher/cli.js') || invokedAs.endsWith('/xenemu')) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: Error) => {
    process.stderr.write(`xenemu: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  });
}
