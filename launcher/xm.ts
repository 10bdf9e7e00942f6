// `xm` and `xl`: the management commands, one implementation (docs/design.md §6:
// command names, flags, messages, `xl list` columns and state flags as
// Xen's xl). They talk XML-RPC to xend on <root>/<host>/xend.sock through
// the typed method map (shared/toolstack/xend_api.ts); the host is
// `--host H`, else $XENEMU_HOST, else the only host running under the run
// root ($XENEMU_RUN_DIR or /run/xenemu). The commands are one table
// (launcher/xm_cmdtable.ts), as xl's.
//
// runXm(argv, io) is the whole command: argv after the program name, io the
// streams and environment; it resolves to the exit status. The launcher
// binds it to process.stdin/stdout/stderr; tests run it in-process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runRoot } from '../shared/host.js';
import { XmlRpcFault, XMLRPC_ERROR_INVALID_DOMAIN } from '../shared/xmlrpc.js';
import {
  XEND_SOCKET, xendCall, type DomainRecord, type XendMethod, type XendParams, type XendResult,
} from '../shared/toolstack/xend_api.js';
import { getopt, NoSuchDomain, UsageError, XmError, type XmContext, type XmIo } from './xm_context.js';
import { helpCommand, helpList, lookupCommand } from './xm_cmdtable.js';

export { formatListLine, formatUptime, parseMemSizeKiB } from './xm_domain.js';
export { CONSOLE_ESCAPE } from './xm_console.js';
export type { XmIo } from './xm_context.js';

/** Where the xend socket of the chosen host is. */
export function findXendSocket(host: string | undefined, env: NodeJS.ProcessEnv): string {
  const root = runRoot(env);
  const name = host ?? (env.XENEMU_HOST && env.XENEMU_HOST.length > 0 ? env.XENEMU_HOST : undefined);
  if (name !== undefined) return path.join(root, name, XEND_SOCKET);
  let names: string[];
  try {
    names = fs.readdirSync(root).filter((n) => fs.existsSync(path.join(root, n, XEND_SOCKET))).sort();
  } catch {
    names = [];
  }
  if (names.length === 1) return path.join(root, names[0]!, XEND_SOCKET);
  if (names.length === 0) throw new XmError(`no xenemu host is running under ${root} (start one with \`xenemu up\`)`);
  throw new XmError(`several xenemu hosts are running under ${root} (${names.join(', ')}): choose one with --host or XENEMU_HOST`);
}

/** A command's view of xend and the terminal; the socket is found on the first call. */
class Xm implements XmContext {
  private socket: string | undefined;
  readonly isTTY: boolean;

  constructor(readonly io: XmIo, readonly prog: 'xl' | 'xm', private readonly host: string | undefined) {
    this.isTTY = !!(io.stdout as { isTTY?: boolean }).isTTY;
  }

  out(s: string | Uint8Array): void { this.io.stdout.write(s); }
  err(s: string): void { this.io.stderr.write(s); }

  async call<M extends XendMethod>(method: M, ...params: XendParams<M>): Promise<XendResult<M>> {
    this.socket ??= findXendSocket(this.host, this.io.env ?? process.env);
    try {
      return await xendCall({ socketPath: this.socket }, method, ...params);
    } catch (e) {
      // Only methods that name a domain (their first parameter) fault with ERROR_INVALID_DOMAIN.
      if (e instanceof XmlRpcFault && e.faultCode === XMLRPC_ERROR_INVALID_DOMAIN) throw new NoSuchDomain(params[0]);
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') throw new XmError(`cannot connect to xend at ${this.socket}: is the host running? (${code})`);
      throw e;
    }
  }

  async domains(): Promise<DomainRecord[]> {
    const recs: DomainRecord[] = [];
    for (const d of await this.call('xend.domains', true)) {
      if (typeof d === 'string') throw new XmError('xend listed domain names where their records were asked for');
      recs.push(d);
    }
    return recs;
  }
}

/**
 * Run one `xm`/`xl` command; resolves to the exit status. As xl: no
 * command prints the command list (status 1), `help [command]` prints it or
 * the command's help (0), an unknown command is "command not implemented"
 * (1), a bad option 2, too few operands 2 with the command's help.
 */
export async function runXm(argv: string[], io: XmIo): Promise<number> {
  const prog = io.prog ?? 'xl';
  let host: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--host') { host = argv[++i]; if (host === undefined) { io.stderr.write(`${prog}: --host needs a value\n`); return 1; } }
    else if (a.startsWith('--host=')) host = a.slice(7);
    else break;
  }
  const name = argv[i];
  const args = argv.slice(i + 1);
  if (name === undefined) { io.stdout.write(helpList(prog)); return 1; }
  if (name === 'help') {
    io.stdout.write(args[0] === undefined || args[0] === 'help' ? helpList(prog) : helpCommand(prog, args[0]));
    return 0;
  }
  const cmd = lookupCommand(name);
  if (!cmd) {
    io.stderr.write('command not implemented\n');
    io.stdout.write(helpList(prog));
    return 1;
  }
  try {
    const o = getopt(args, `${cmd.opts}h`);
    if (o.flags.has('h')) { io.stdout.write(helpCommand(prog, cmd.name)); return 0; }
    if (o.rest.length < cmd.minArgs) {
      throw new UsageError(`'${prog} ${cmd.name}' requires at least ${cmd.minArgs} argument${cmd.minArgs > 1 ? 's' : ''}.\n`);
    }
    return await cmd.run(new Xm(io, prog, host), o, cmd.name);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`${e.message}\n`);
      if (e.showHelp) io.stdout.write(helpCommand(prog, cmd.name));
      return 2;
    }
    if (e instanceof XmError) { io.stderr.write(`${e.message}\n`); return 1; }
    if (e instanceof XmlRpcFault) { io.stderr.write(`${e.faultString}\n`); return 1; }
    io.stderr.write(`${prog}: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}
