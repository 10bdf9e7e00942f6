// The commands of `xm`/`xl`, one table as Xen's tools/xl/xl_cmdtable.c:
// name, description, usage and options as `xl help` prints them, the
// getopt letters, the operands required (xl's reqargs) and the handler.
// runXm (launcher/xm.ts) looks a command up here, parses its options,
// answers -h, checks the operand count and runs the handler; `xl help`
// prints the table as xl's help() does.
import type { Opts, XmContext } from './xm_context.js';
import * as dom from './xm_domain.js';
import * as sched from './xm_sched.js';
import * as pci from './xm_pci.js';

export interface XmCommand {
  name: string;
  /** cmd_desc: the line `xl help` lists, and the sentence of `xl help <command>`. */
  desc: string;
  /** cmd_usage: what follows the command name. */
  usage: string;
  /** cmd_option: one option per line. */
  options?: string;
  /** getopt letters (':' after a letter that takes a value); -h is every command's. */
  opts: string;
  /** Operands required after the options. */
  minArgs: number;
  run(x: XmContext, o: Opts, name: string): Promise<number>;
}

export const XM_COMMANDS: readonly XmCommand[] = [
  {
    name: 'create', desc: 'Create a domain from config file <filename>', usage: '<ConfigFile> [options] [vars]',
    options: '-h                      Print this help.\n'
      + '-p                      Leave the domain paused after it is created.\n'
      + '-c                      Connect to the console after the domain is created.\n'
      + '-n                      Dry run - prints the resulting configuration.\n'
      + '-q, -e                  Accepted, as xl takes them; they change nothing here.',
    opts: 'cpnqe', minArgs: 1, run: dom.create,
  },
  {
    name: 'list', desc: 'List information about all/some domains', usage: '[options] [Domain]',
    options: '-l                      Output all VM details (JSON)\n'
      + '-v                      Accepted; the list is the same.',
    opts: 'lv', minArgs: 0, run: dom.list,
  },
  {
    name: 'destroy', desc: 'Terminate a domain immediately', usage: '[options] <Domain>',
    options: '-f                      Accepted; Domain-0 is never destroyed.',
    opts: 'f', minArgs: 1, run: dom.destroy,
  },
  {
    name: 'shutdown', desc: 'Issue a shutdown signal to a domain', usage: '[options] <Domain>',
    options: '-h                      Print this help.\n'
      + '-F                      Fallback to ACPI power event for HVM guests with no PV drivers.\n'
      + '-w                      Wait for guest(s) to shutdown.',
    opts: 'wF', minArgs: 1, run: dom.shutdown,
  },
  {
    name: 'reboot', desc: 'Issue a reboot signal to a domain', usage: '[options] <Domain>',
    options: '-h                      Print this help.\n'
      + '-F                      Accepted (xenemu has no ACPI reset event to fall back to).\n'
      + '-w                      Wait for guest(s) to reboot.',
    opts: 'wF', minArgs: 1, run: dom.shutdown,
  },
  { name: 'pause', desc: 'Pause execution of a domain', usage: '<Domain>', opts: '', minArgs: 1, run: dom.pause },
  { name: 'unpause', desc: 'Unpause a paused domain', usage: '<Domain>', opts: '', minArgs: 1, run: dom.unpause },
  {
    name: 'console', desc: "Attach to domain's console",
    usage: '[options] <Domain>\n-t <type>       console type, pv or serial\n-n <number>     console number',
    opts: 't:n:', minArgs: 1, run: dom.console,
  },
  {
    name: 'mem-set', desc: 'Set the current memory usage for a domain',
    usage: "<Domain> <MemMB['b'[bytes]|'k'[KB]|'m'[MB]|'g'[GB]|'t'[TB]]>", opts: '', minArgs: 2, run: dom.memSet,
  },
  { name: 'vcpu-list', desc: 'List the VCPUs for all/some domains', usage: '[Domain, ...]', opts: '', minArgs: 0, run: sched.vcpuList },
  {
    name: 'vcpu-pin', desc: 'Set which CPUs a VCPU can use',
    usage: '[option] <Domain> <VCPU|all> <Hard affinity|-|all> <Soft affinity|-|all>',
    options: '-f                 Accepted; there is no kernel pinning to undo.',
    opts: 'f', minArgs: 3, run: sched.vcpuPin,
  },
  { name: 'vcpu-set', desc: 'Set the number of active VCPUs allowed for the domain', usage: '<Domain> <vCPUs>', opts: '', minArgs: 2, run: dom.vcpuSet },
  { name: 'info', desc: 'Get information about Xen host', usage: '', opts: '', minArgs: 0, run: dom.info },
  {
    name: 'sched-credit', desc: 'Get/set credit scheduler parameters',
    usage: '[-d <Domain> [-w[=WEIGHT]|-c[=CAP]]] [-s [-t TSLICE] [-r RATELIMIT]] [-p CPUPOOL]',
    options: '-d DOMAIN          Domain to modify\n'
      + '-w WEIGHT          Weight (int)\n'
      + '-c CAP             Cap (int)\n'
      + '-s                 Query / modify scheduler parameters\n'
      + '-t TSLICE          Set the timeslice, in milliseconds\n'
      + '-r RLIMIT          Set the scheduling rate limit, in microseconds\n'
      + '-p CPUPOOL         Accepted; there is one pool, Pool-0',
    opts: 'd:w:c:t:r:sp:', minArgs: 0, run: sched.schedCredit,
  },
  { name: 'domid', desc: 'Convert a domain name to domain id', usage: '<DomainName>', opts: '', minArgs: 1, run: dom.domid },
  { name: 'domname', desc: 'Convert a domain id to domain name', usage: '<DomainId>', opts: '', minArgs: 1, run: dom.domname },
  {
    name: 'dmesg', desc: 'Read and/or clear dmesg buffer', usage: '[-c]',
    options: '  -c                        Clear dmesg buffer as well as printing it',
    opts: 'c', minArgs: 0, run: dom.dmesg,
  },
  {
    name: 'top', desc: 'Monitor a host and the domains in real time', usage: '[-d <delay>] [-b] [-i <iterations>]',
    options: '-d <delay>         Seconds between screens (1)\n'
      + '-b                 Batch mode: screens one after another, no keys (the default off a terminal)\n'
      + '-i <iterations>    Screens to show (1 in batch mode)',
    opts: 'd:bi:', minArgs: 0, run: sched.top,
  },
  {
    name: 'network-attach', desc: 'Create a new virtual network device',
    usage: '<Domain> [type=<type>] [mac=<mac>] [bridge=<bridge>] [ip=<ip>] [script=<script>] '
      + '[backend=<BackDomain>] [vifname=<name>] [rate=<rate>] [model=<model>] [accel=<accel>]',
    opts: '', minArgs: 1, run: dom.networkAttach,
  },
  { name: 'network-list', desc: 'List virtual network interfaces for a domain', usage: '<Domain(s)>', opts: '', minArgs: 1, run: dom.networkList },
  { name: 'network-detach', desc: "Destroy a domain's virtual network device", usage: '<Domain> <DevId|mac>', opts: '', minArgs: 2, run: dom.networkDetach },
  { name: 'block-attach', desc: 'Create a new virtual block device', usage: '<Domain> <disk-spec-component(s)>...', opts: '', minArgs: 2, run: dom.blockAttach },
  { name: 'block-list', desc: 'List virtual block devices for a domain', usage: '<Domain(s)>', opts: '', minArgs: 1, run: dom.blockList },
  { name: 'block-detach', desc: "Destroy a domain's virtual block device", usage: '<Domain> <DevId>', opts: 'f', minArgs: 2, run: dom.blockDetach },
  { name: 'pci-attach', desc: 'Insert a new pass-through pci device', usage: '<Domain> <PCI_SPEC_STRING>', opts: '', minArgs: 2, run: dom.pciAttach },
  {
    name: 'pci-detach', desc: "Remove a domain's pass-through pci device", usage: '<Domain> <PCI_SPEC_STRING>',
    options: '-f  Force the device to be removed, without waiting for the guest', opts: 'f', minArgs: 2, run: dom.pciDetach,
  },
  { name: 'pci-list', desc: 'List pass-through pci devices for a domain', usage: '<Domain>', opts: '', minArgs: 1, run: dom.pciList },
  {
    name: 'trigger', desc: 'Send a trigger to a domain', usage: '<Domain> <power|sleep> [<VCPU>]',
    opts: '', minArgs: 2, run: dom.trigger,
  },
  {
    name: 'screenshot', desc: "Print an HVM domain's VGA text screen, and save its display as PNG",
    usage: '<Domain> [<File.png>]', opts: '', minArgs: 1, run: dom.screenshot,
  },
  {
    name: 'save', desc: 'Save a domain state to restore later', usage: '[options] <Domain> <CheckpointFile>',
    options: '-h  Print this help.\n'
      + '-c  Leave domain running after creating the snapshot.\n'
      + '-p  Leave domain paused after creating the snapshot.',
    opts: 'cp', minArgs: 2, run: dom.save,
  },
  {
    name: 'restore', desc: 'Restore a domain from a saved state', usage: '[options] <CheckpointFile>',
    options: '-h  Print this help.\n'
      + '-p  Do not unpause domain after restoring it.\n'
      + '-e  Accepted, as xl takes it: xend watches the domain anyway.',
    opts: 'pe', minArgs: 1, run: dom.restore,
  },
  {
    name: 'migrate', desc: 'Migrate a domain to another host', usage: '[options] <Domain> <Host:Port>',
    options: '--live  Pre-copy the memory while the domain runs, then stop it for the rest.\n'
      + '-l      Print the summary as JSON (rounds, bytes sent, downtime).\n'
      + '-e      Accepted, as xl takes it.',
    opts: 'le', minArgs: 2, run: dom.migrate,
  },
  {
    name: 'pci-assignable-add', desc: 'Make a device assignable for pci-passthru', usage: '<BDF>',
    options: '-h                      Print this help.\n'
      + '-r                      Accepted; xenemu\'s devices have no Domain-0 driver to rebind.',
    opts: 'r', minArgs: 1, run: pci.pciAssignableAdd,
  },
  {
    name: 'pci-assignable-remove', desc: 'Remove a device from being assignable', usage: '[options] <BDF>',
    options: '-h                      Print this help.\n'
      + '-r                      Accepted, as above.',
    opts: 'r', minArgs: 1, run: pci.pciAssignableRemove,
  },
  { name: 'pci-assignable-list', desc: 'List all the assignable pci devices', usage: '', opts: '', minArgs: 0, run: pci.pciAssignableList },
  { name: 'uptime', desc: 'Print uptime for all/some domains', usage: '[-s] [Domain]', opts: 's', minArgs: 0, run: dom.uptime },
];

export function lookupCommand(name: string): XmCommand | undefined {
  return XM_COMMANDS.find((c) => c.name === name);
}

/** The global options, where xl has [-vfN]. */
const GLOBAL_OPTS = '[--host HOST]';

/** help(NULL) of xl.c: the usage line and every command with its description. */
export function helpList(prog: string): string {
  let s = `Usage ${prog} ${GLOBAL_OPTS} <subcommand> [args]\n\n${prog} full list of subcommands:\n\n`;
  for (const c of XM_COMMANDS) {
    s += ` ${c.name.padEnd(19)} `;
    if (c.name.length > 19) s += `\n ${''.padEnd(19)} `;
    s += `${c.desc}\n`;
  }
  return s;
}

/** help(command) of xl.c. */
export function helpCommand(prog: string, name: string): string {
  const c = lookupCommand(name);
  if (!c) return `command "${name}" not implemented\n`;
  return `Usage: ${prog} ${GLOBAL_OPTS} ${c.name} ${c.usage}\n\n${c.desc}.\n\n${c.options ? `Options:\n\n${c.options}\n` : ''}`;
}
