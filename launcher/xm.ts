// `xm` and `xl`: the management commands, one implementation (docs/design.md §6:
// command names, flags, `xl list` columns and state flags as Xen's xl).
// They talk XML-RPC to xend on <root>/<host>/xend.sock; the host is
// `--host H`, else $XENEMU_HOST, else the only host running under the run
// root ($XENEMU_RUN_DIR or /run/xenemu).
//
// runXm(argv, io) is the whole command: argv after the program name, io the
// streams and environment; it resolves to the exit status. The launcher
// binds it to process.stdin/stdout/stderr; tests run it in-process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { runRoot } from '../shared/host.js';
import { xmlrpcCall, XmlRpcFault, XMLRPC_ERROR_INVALID_DOMAIN, type XmlRpcValue } from '../shared/xmlrpc.js';
import { parseXlCfg, XlCfgError, type DomainConfig } from '../shared/toolstack/xlcfg.js';
import { XEND_METHODS, XEND_SOCKET, type DomainRecord, type NodeInfo } from '../shared/toolstack/xend_api.js';
import { SCHED_USAGE, schedCredit, top, vcpuList, vcpuPin, type SchedCmdContext } from './xm_sched.js';

export interface XmIo {
  stdout: { write(chunk: string | Uint8Array): unknown };
  stderr: { write(chunk: string | Uint8Array): unknown };
  /** Keyboard for `console`; a TTY is put in raw mode while attached. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  env?: NodeJS.ProcessEnv;
  /** 'xl' (default) or 'xm': only changes the program name in messages and mem-set's default unit. */
  prog?: 'xl' | 'xm';
}

/** The byte that detaches a console, as in xl and xm: Ctrl-]. */
export const CONSOLE_ESCAPE = 0x1d;

class UsageError extends Error {}
/** A failure whose message is already what xl prints. */
class XmError extends Error {}

const LIST_HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';

/** One `xl list` line: printf("%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f"). */
export function formatListLine(d: Pick<DomainRecord, 'name' | 'domid' | 'memory' | 'vcpus' | 'state' | 'cpu_time'>): string {
  return `${d.name.padEnd(40)} ${String(d.domid).padStart(5)} ${String(Math.floor(d.memory)).padStart(5)} ${String(d.vcpus).padStart(5)}     ${d.state}  ${d.cpu_time.toFixed(1).padStart(8)}`;
}

/** xl's uptime_to_string (long form). */
export function formatUptime(seconds: number): string {
  let s = Math.max(0, Math.floor(seconds));
  const day = Math.floor(s / 86400); s -= day * 86400;
  const hour = Math.floor(s / 3600); s -= hour * 3600;
  const min = Math.floor(s / 60); s -= min * 60;
  const hms = `${String(hour).padStart(2)}:${String(min).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return day > 1 ? `${day} days, ${hms}` : day === 1 ? `${day} day, ${hms}` : hms;
}

/** xl's parse_mem_size_kb: a number with an optional b/k/m/g/t suffix; `defaultUnit` when bare. */
export function parseMemSizeKiB(text: string, defaultUnit: 'k' | 'm'): number | undefined {
  const m = /^([0-9]+)([bBkKmMgGtT]?)$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] || defaultUnit).toLowerCase();
  const kib = unit === 'b' ? n / 1024 : unit === 'k' ? n : unit === 'm' ? n * 1024 : unit === 'g' ? n * 1024 ** 2 : n * 1024 ** 3;
  return Number.isSafeInteger(Math.floor(kib)) ? Math.floor(kib) : undefined;
}

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

const USAGE: Record<string, string> = {
  create: 'create [-c] [-p] [-n] <ConfigFile> [key=value ...]',
  list: 'list [-l] [Domain ...]',
  console: 'console [-t pv|serial] [-n N] <Domain>',
  destroy: 'destroy <Domain>',
  shutdown: 'shutdown [-w] <Domain>',
  reboot: 'reboot [-w] <Domain>',
  pause: 'pause <Domain>',
  unpause: 'unpause <Domain>',
  'mem-set': 'mem-set <Domain> <Mem>',
  'vcpu-set': 'vcpu-set <Domain> <vCPUs>',
  ...SCHED_USAGE,
  info: 'info',
  dmesg: 'dmesg [-c]',
  uptime: 'uptime [Domain ...]',
  domid: 'domid <DomainName>',
  domname: 'domname <DomainId>',
  'network-attach': 'network-attach <Domain> [mac=<mac>] [bridge=<bridge>] [ip=<ip>] ...',
  'network-detach': 'network-detach <Domain> <DevId|mac>',
  'network-list': 'network-list <Domain(s)>',
  'block-attach': 'block-attach <Domain> <disk-spec-component(s)>...',
  'block-detach': 'block-detach <Domain> <DevId>',
  'block-list': 'block-list <Domain(s)>',
};

/** Split flags (single letters, listed in `known`) from operands, getopt-style. */
function getopt(args: string[], known: string, cmd: string): { flags: Set<string>; values: Map<string, string>; rest: string[] } {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { rest.push(...args.slice(i + 1)); break; }
    if (/^-[A-Za-z]+$/.test(a) && rest.length === 0) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        const k = known.indexOf(c);
        if (k < 0) throw new UsageError(`${cmd}: invalid option -- '${c}'`);
        if (known[k + 1] === ':') {
          const v = a.slice(j + 1) || args[++i];
          if (v === undefined) throw new UsageError(`${cmd}: option requires an argument -- '${c}'`);
          values.set(c, v);
          break;
        }
        flags.add(c);
      }
      continue;
    }
    rest.push(a);
  }
  return { flags, values, rest };
}

class Xm {
  private socket: string | undefined;
  constructor(private readonly io: XmIo, private readonly prog: 'xl' | 'xm', private readonly host: string | undefined) {}

  private out(s: string) { this.io.stdout.write(s); }
  private err(s: string) { this.io.stderr.write(s); }

  private async call(method: string, params: XmlRpcValue[] = []): Promise<XmlRpcValue> {
    this.socket ??= findXendSocket(this.host, this.io.env ?? process.env);
    try {
      return await xmlrpcCall({ socketPath: this.socket }, method, params);
    } catch (e) {
      if (e instanceof XmlRpcFault) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') throw new XmError(`cannot connect to xend at ${this.socket}: is the host running? (${code})`);
      throw e;
    }
  }

  /** A call naming a domain: an unknown domain reads as xl says it. */
  private async callDom(method: string, dom: string, params: XmlRpcValue[] = []): Promise<XmlRpcValue> {
    try {
      return await this.call(method, [dom, ...params]);
    } catch (e) {
      if (e instanceof XmlRpcFault && e.faultCode === XMLRPC_ERROR_INVALID_DOMAIN) throw new XmError(`${dom} is an invalid domain identifier (rc=-6)`);
      throw e;
    }
  }

  private async domains(): Promise<DomainRecord[]> {
    return (await this.call(XEND_METHODS.domains, [true])) as unknown as DomainRecord[];
  }

  private schedCtx(): SchedCmdContext {
    return {
      call: (m, p) => this.call(m, p), callDom: (m, d, p) => this.callDom(m, d, p),
      out: (s) => this.out(s), stdin: this.io.stdin,
      isTTY: !!(this.io.stdout as { isTTY?: boolean }).isTTY,
      usage: (m) => new UsageError(m), getopt,
    };
  }

  private one(rest: string[], cmd: string): string {
    if (rest.length !== 1) throw new UsageError(`'${this.prog} ${cmd}' requires exactly one domain`);
    return rest[0]!;
  }

  async run(cmd: string, args: string[]): Promise<number> {
    switch (cmd) {
      case 'create': return this.create(args);
      case 'list': return this.list(args);
      case 'console': {
        const o = getopt(args, 't:n:', cmd);
        const t = o.values.get('t');
        if (t !== undefined && t !== 'pv' && t !== 'serial') throw new UsageError(`console: type must be pv or serial, not '${t}'`);
        return this.console(this.one(o.rest, cmd));
      }
      case 'destroy': {
        await this.callDom(XEND_METHODS.destroy, this.one(getopt(args, 'f', cmd).rest, cmd));
        return 0;
      }
      case 'shutdown': case 'reboot': {
        const o = getopt(args, 'wFa', cmd);
        const dom = this.one(o.rest, cmd);
        const rec = (await this.callDom(XEND_METHODS.domain, dom)) as unknown as DomainRecord;
        this.err(`${cmd === 'reboot' ? 'Rebooting' : 'Shutting down'} domain ${rec.domid}\n`);
        await this.callDom(XEND_METHODS.shutdown, dom, [cmd === 'reboot' ? 'reboot' : 'poweroff']);
        if (o.flags.has('w')) {
          this.err('Waiting for 1 domains\n');
          // Long-poll xend: each call returns when the domain shut down or after 60 s.
          while (!(await this.call(XEND_METHODS.waitForShutdown, [String(rec.domid), 60]).catch((e) => {
            if (e instanceof XmlRpcFault && e.faultCode === XMLRPC_ERROR_INVALID_DOMAIN) return true;
            throw e;
          }))) { /* keep waiting */ }
          this.err(`Domain ${rec.domid} has been shut down, reason code 0\n`);
        }
        return 0;
      }
      case 'pause': await this.callDom(XEND_METHODS.pause, this.one(args, cmd)); return 0;
      case 'unpause': await this.callDom(XEND_METHODS.unpause, this.one(args, cmd)); return 0;
      case 'mem-set': {
        if (args.length !== 2) throw new UsageError(`'${this.prog} mem-set' requires a domain and a memory size`);
        const kib = parseMemSizeKiB(args[1]!, this.prog === 'xm' ? 'm' : 'k');
        if (kib === undefined || kib < 1024) throw new XmError(`invalid memory size: ${args[1]}`);
        await this.callDom(XEND_METHODS.setMemoryTarget, args[0]!, [Math.floor(kib / 1024)]);
        return 0;
      }
      case 'vcpu-set': {
        if (args.length !== 2 || !/^[0-9]+$/.test(args[1]!) || Number(args[1]) < 1) throw new UsageError(`'${this.prog} vcpu-set' requires a domain and a vCPU count`);
        await this.callDom(XEND_METHODS.setVCpuCount, args[0]!, [Number(args[1])]);
        return 0;
      }
      case 'sched-credit': return schedCredit(this.schedCtx(), args);
      case 'vcpu-list': return vcpuList(this.schedCtx(), args);
      case 'vcpu-pin': return vcpuPin(this.schedCtx(), args);
      case 'top': return top(this.schedCtx(), args);
      case 'info': {
        const info = (await this.call(XEND_METHODS.nodeInfo)) as NodeInfo;
        for (const [k, v] of Object.entries(info)) this.out(`${k.padEnd(23)}: ${v}\n`);
        return 0;
      }
      case 'dmesg': {
        const o = getopt(args, 'c', cmd);
        this.out(String(await this.call(XEND_METHODS.dmesg, [o.flags.has('c')])));
        return 0;
      }
      case 'uptime': {
        const doms = await this.select(getopt(args, 's', cmd).rest);
        const now = Date.now() / 1000;
        this.out(`${'Name'.padEnd(33)} ${'ID'.padStart(4)} Uptime\n`);
        for (const d of doms) this.out(`${d.name.padEnd(33)} ${String(d.domid).padStart(4)} ${formatUptime(now - d.start_time)}\n`);
        return 0;
      }
      case 'domid': {
        const name = this.one(args, cmd);
        const d = (await this.domains()).find((x) => x.name === name);
        if (!d) throw new XmError(`Can't get domid of domain name '${name}', maybe this domain does not exist.`);
        this.out(`${d.domid}\n`);
        return 0;
      }
      case 'domname': {
        const id = this.one(args, cmd);
        const d = /^[0-9]+$/.test(id) ? (await this.domains()).find((x) => x.domid === Number(id)) : undefined;
        if (!d) throw new XmError(`Can't get domain name of domain id '${id}', maybe this domain does not exist.`);
        this.out(`${d.name}\n`);
        return 0;
      }
      case 'block-attach': {
        if (args.length < 2) throw new UsageError(`'${this.prog} block-attach' requires a domain and a disk spec`);
        await this.callDom(XEND_METHODS.blockAttach, args[0]!, [args.slice(1).join(',')]);
        return 0;
      }
      case 'block-detach': {
        const o = getopt(args, 'f', cmd);
        if (o.rest.length !== 2) throw new UsageError(`'${this.prog} block-detach' requires a domain and a device`);
        await this.callDom(XEND_METHODS.blockDetach, o.rest[0]!, [o.rest[1]!]);
        return 0;
      }
      case 'block-list': {
        if (args.length < 1) throw new UsageError(`'${this.prog} block-list' requires at least one domain`);
        // xl's main_blocklist columns.
        this.out(`${'Vdev'.padEnd(5)} ${'BE'.padEnd(3)} ${'handle'.padEnd(6)} ${'state'.padEnd(5)} ${'evt-ch'.padEnd(6)} ${'ring-ref'.padEnd(8)} ${'BE-path'.padEnd(30)}\n`);
        for (const dom of args) {
          const rows = (await this.callDom(XEND_METHODS.blockList, dom)) as unknown as Array<Record<string, number | string>>;
          for (const r of rows) {
            this.out(`${String(r.devid).padEnd(5)} ${String(r.backendId).padEnd(3)} ${String(r.frontendId).padEnd(6)} ${String(r.state).padEnd(5)} ` +
              `${String(r.evtch).padEnd(6)} ${String(r.rref).padEnd(8)} ${String(r.backend).padEnd(30)}\n`);
          }
        }
        return 0;
      }
      case 'network-attach': {
        if (args.length < 1) throw new UsageError(`'${this.prog} network-attach' requires a domain`);
        await this.callDom(XEND_METHODS.networkAttach, args[0]!, [args.slice(1).join(',')]);
        return 0;
      }
      case 'network-detach': {
        if (args.length !== 2) throw new UsageError(`'${this.prog} network-detach' requires a domain and a device`);
        await this.callDom(XEND_METHODS.networkDetach, args[0]!, [args[1]!]);
        return 0;
      }
      case 'network-list': {
        if (args.length < 1) throw new UsageError(`'${this.prog} network-list' requires at least one domain`);
        // xl's main_networklist format.
        this.out(`${'Idx'.padEnd(3)} ${'BE'.padEnd(2)} ${'Mac Addr.'.padEnd(17)} ${'handle'.padEnd(6)} ${'state'.padEnd(5)} ${'evt-ch'.padEnd(6)} ${'tx-'.padStart(5)}/${'rx-ring-ref'.padEnd(5)} ${'BE-path'.padEnd(30)}\n`);
        for (const dom of args) {
          const rows = (await this.callDom(XEND_METHODS.networkList, dom)) as unknown as Array<Record<string, number | string>>;
          for (const r of rows) {
            this.out(`${String(r.devid).padEnd(3)} ${String(r.backendId).padEnd(2)} ${String(r.mac).padEnd(17)} ${String(r.handle).padEnd(6)} ` +
              `${String(r.state).padEnd(5)} ${String(r.evtch).padEnd(6)} ${String(r.txRingRef).padStart(5)}/${String(r.rxRingRef).padEnd(11)} ${String(r.backend).padEnd(30)}\n`);
          }
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  }

  /** The named domains (all when none is named), each checked. */
  private async select(names: string[]): Promise<DomainRecord[]> {
    const all = await this.domains();
    if (names.length === 0) return all;
    return names.map((n) => {
      const d = /^[0-9]+$/.test(n) ? all.find((x) => x.domid === Number(n)) : all.find((x) => x.name === n);
      if (!d) throw new XmError(`${n} is an invalid domain identifier (rc=-6)`);
      return d;
    });
  }

  private async list(args: string[]): Promise<number> {
    const o = getopt(args, 'lv', 'list');
    const doms = await this.select(o.rest);
    if (o.flags.has('l')) {
      this.out(`${JSON.stringify(doms.map((d) => ({ domid: d.domid, name: d.name, state: d.state, config: d.config ?? null })), null, 4)}\n`);
      return 0;
    }
    this.out(`${LIST_HEADER}\n`);
    for (const d of doms) this.out(`${formatListLine(d)}\n`);
    return 0;
  }

  private async create(args: string[]): Promise<number> {
    const o = getopt(args, 'cpnqe', 'create');
    const [file, ...overrides] = o.rest;
    if (file === undefined) throw new UsageError(`'${this.prog} create' requires a config file`);
    this.err(`Parsing config from ${file}\n`);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new XmError(`Failed to read config file: ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}`);
    }
    let cfg: DomainConfig;
    try {
      cfg = parseXlCfg(text, { file, overrides });
    } catch (e) {
      if (e instanceof XlCfgError) throw new XmError(e.message);
      throw e;
    }
    if (o.flags.has('n')) {
      this.out(`${JSON.stringify(cfg, null, 4)}\n`);
      return 0;
    }
    const rec = (await this.call(XEND_METHODS.create, [cfg as unknown as XmlRpcValue])) as unknown as DomainRecord;
    if (o.flags.has('p')) await this.callDom(XEND_METHODS.pause, String(rec.domid));
    if (o.flags.has('c')) return this.console(String(rec.domid));
    return 0;
  }

  /**
   * Attach the terminal to a domain's console: show the backlog xenconsoled
   * kept, then copy PTY -> stdout and stdin -> PTY until Ctrl-] (or the
   * console goes away). The PTY slave is already raw (xenconsoled set it);
   * a TTY on our stdin is made raw too, and restored on detach.
   */
  private async console(dom: string): Promise<number> {
    const att = (await this.callDom(XEND_METHODS.console, dom)) as { ptyPath: string; backlog: Uint8Array };
    if (att.backlog.byteLength > 0) this.io.stdout.write(att.backlog);
    const fd = fs.openSync(att.ptyPath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    const stream = new tty.ReadStream(fd);
    const stdin = this.io.stdin;
    const rawSet = !!(stdin?.isTTY && stdin.setRawMode);
    if (rawSet) stdin!.setRawMode!(true);

    return new Promise<number>((resolve) => {
      let done = false;
      const detach = () => {
        if (done) return;
        done = true;
        if (stdin) {
          stdin.off('data', onKey);
          stdin.pause();
          if (rawSet) stdin.setRawMode!(false);
        }
        stream.once('close', () => {
          // libuv re-opened the slave for the stream; our own descriptor stays ours.
          const streamFd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
          if (streamFd !== fd) { try { fs.closeSync(fd); } catch { /* gone */ } }
          resolve(0);
        });
        stream.destroy();
      };
      const onKey = (chunk: Buffer | string) => {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        const esc = b.indexOf(CONSOLE_ESCAPE);
        const send = esc >= 0 ? b.subarray(0, esc) : b;
        try {
          if (send.length > 0) fs.writeSync(fd, send);
        } catch { detach(); return; }
        if (esc >= 0) detach();
      };
      stream.on('data', (d: Buffer) => this.io.stdout.write(d));
      stream.on('error', detach);
      stream.on('end', detach);
      if (stdin) {
        stdin.on('data', onKey);
        stdin.resume();
      }
    });
  }
}

function usage(prog: string): string {
  return `Usage: ${prog} [--host HOST] <subcommand> [args]\n\nSubcommands:\n${Object.values(USAGE).map((u) => ` ${u}`).join('\n')}\n`;
}

/** Run one `xm`/`xl` command; resolves to the exit status. */
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
  const cmd = argv[i];
  const args = argv.slice(i + 1);
  if (cmd === undefined || cmd === 'help' || cmd === '-h' || cmd === '--help') {
    (cmd === undefined ? io.stderr : io.stdout).write(usage(prog));
    return cmd === undefined ? 1 : 0;
  }
  try {
    return await new Xm(io, prog, host).run(cmd, args);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`${prog}: ${e.message}\n`);
      const u = USAGE[cmd];
      io.stderr.write(u ? `Usage: ${prog} ${u}\n` : usage(prog));
      return cmd in USAGE ? 2 : 1;
    }
    if (e instanceof XmError) { io.stderr.write(`${e.message}\n`); return 1; }
    if (e instanceof XmlRpcFault) { io.stderr.write(`${e.faultString}\n`); return 1; }
    io.stderr.write(`${prog}: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}
