// The domain and host commands of `xm`/`xl` (tools/xl/xl_vmcontrol.c,
// xl_info.c, xl_mem.c, xl_block.c, xl_nic.c, xl_misc.c): output in xl's
// formats, so that scripts written for Xen read it. Each is a handler of the
// command table (launcher/xm_cmdtable.ts), which has parsed the options and
// checked the operand count already.
import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { parsePciSpec, parseXlCfg, XlCfgError, type DomainConfig } from '../shared/toolstack/xlcfg.js';
import type { DomainRecord, MigrationProgress, MigrationSummary } from '../shared/toolstack/xend_api.js';
import { attachConsole } from './xm_console.js';
import { XmlRpcFault } from '../shared/xmlrpc.js';
import { NoSuchDomain, UsageError, XmError, type Opts, type XmContext } from './xm_context.js';

export const LIST_HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';

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

/** The named domains (all when none is named), each checked. */
async function select(x: XmContext, names: string[]): Promise<DomainRecord[]> {
  const all = await x.domains();
  if (names.length === 0) return all;
  return names.map((n) => {
    const d = /^[0-9]+$/.test(n) ? all.find((r) => r.domid === Number(n)) : all.find((r) => r.name === n);
    if (!d) throw new NoSuchDomain(n);
    return d;
  });
}

export async function create(x: XmContext, o: Opts): Promise<number> {
  const [file, ...overrides] = o.rest as [string, ...string[]];
  x.err(`Parsing config from ${file}\n`);
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
    x.out(`${JSON.stringify(cfg, null, 4)}\n`);
    return 0;
  }
  // -p: the domain is built and left paused, never run (libxl leaves it so).
  const rec = await x.call('xend.domain.create', cfg, o.flags.has('p'));
  if (o.flags.has('c')) return attachConsole(x, String(rec.domid));
  return 0;
}

export async function list(x: XmContext, o: Opts): Promise<number> {
  const doms = await select(x, o.rest);
  if (o.flags.has('l')) {
    x.out(`${JSON.stringify(doms.map((d) => ({ domid: d.domid, name: d.name, state: d.state, config: d.config ?? null })), null, 4)}\n`);
    return 0;
  }
  x.out(`${LIST_HEADER}\n`);
  for (const d of doms) x.out(`${formatListLine(d)}\n`);
  return 0;
}

/** xl console [-t pv|serial] [-n N]: without -t, the primary console (an HVM guest's is serial port 0). */
export async function console(x: XmContext, o: Opts): Promise<number> {
  const t = o.values.get('t');
  if (t !== undefined && t !== 'pv' && t !== 'serial') throw new XmError('console type supported are: pv, serial');
  const n = o.values.get('n');
  if (n !== undefined && !/^[0-9]+$/.test(n)) throw new UsageError(`console: invalid console number '${n}'`);
  return attachConsole(x, o.rest[0]!, t ?? '', n === undefined ? 0 : Number(n));
}

export async function destroy(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.domain.destroy', o.rest[0]!);
  return 0;
}

/** libxl's ERROR_NOPARAVIRT, as xend words it (processes/dom0/toolstack/hvm/hvm_kind.ts refuseShutdown). */
const NOPARAVIRT = 'PV control interface not available: external graceful';

/**
 * shutdown and reboot: -w waits with a long poll on xend (no timers here).
 * -F: a guest without PV drivers gets the ACPI power button instead
 * (xl_vmcontrol.c shutdown_domain: libxl_send_trigger LIBXL_TRIGGER_POWER).
 */
export async function shutdown(x: XmContext, o: Opts, cmd: string): Promise<number> {
  const dom = o.rest[0]!;
  const rec = await x.call('xend.domain', dom);
  x.err(`${cmd === 'reboot' ? 'Rebooting' : 'Shutting down'} domain ${rec.domid}\n`);
  try {
    await x.call('xend.domain.shutdown', dom, cmd === 'reboot' ? 'reboot' : 'poweroff');
  } catch (e) {
    if (!(e instanceof XmlRpcFault) || !e.faultString.startsWith(NOPARAVIRT) || !o.flags.has('F') || cmd === 'reboot') throw e;
    x.err('PV control interface not available: sending ACPI power button event.\n');
    await x.call('xend.domain.trigger', dom, 'power');
  }
  if (o.flags.has('w')) {
    x.err('Waiting for 1 domains\n');
    // Each call returns when the domain shut down (or went), or after 60 s.
    const gone = (e: unknown) => { if (e instanceof NoSuchDomain) return true; throw e; };
    while (!(await x.call('xend.domain.waitForShutdown', rec.domid, 60).catch(gone))) { /* keep waiting */ }
    x.err(`Domain ${rec.domid} has been shut down, reason code 0\n`);
  }
  return 0;
}

export async function pause(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.domain.pause', o.rest[0]!);
  return 0;
}

export async function unpause(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.domain.unpause', o.rest[0]!);
  return 0;
}

/** A bare number is KiB for xl, MiB for xm (their documented defaults). */
export async function memSet(x: XmContext, o: Opts): Promise<number> {
  const [dom, size] = o.rest as [string, string];
  const kib = parseMemSizeKiB(size, x.prog === 'xm' ? 'm' : 'k');
  if (kib === undefined || kib < 1024) throw new XmError(`invalid memory size: ${size}`);
  await x.call('xend.domain.setMemoryTarget', dom, Math.floor(kib / 1024));
  return 0;
}

export async function vcpuSet(x: XmContext, o: Opts): Promise<number> {
  const [dom, n] = o.rest as [string, string];
  if (!/^[0-9]+$/.test(n) || Number(n) < 1) throw new UsageError(`invalid number of vCPUs: '${n}'`);
  await x.call('xend.domain.setVCpuCount', dom, Number(n));
  return 0;
}

export async function info(x: XmContext): Promise<number> {
  for (const [k, v] of Object.entries(await x.call('xend.node.info'))) x.out(`${k.padEnd(23)}: ${v}\n`);
  return 0;
}

export async function dmesg(x: XmContext, o: Opts): Promise<number> {
  x.out(await x.call('xend.node.dmesg', o.flags.has('c')));
  return 0;
}

export async function uptime(x: XmContext, o: Opts): Promise<number> {
  const doms = await select(x, o.rest);
  const now = Date.now() / 1000;
  x.out(`${'Name'.padEnd(33)} ${'ID'.padStart(4)} Uptime\n`);
  for (const d of doms) x.out(`${d.name.padEnd(33)} ${String(d.domid).padStart(4)} ${formatUptime(now - d.start_time)}\n`);
  return 0;
}

export async function domid(x: XmContext, o: Opts): Promise<number> {
  const name = o.rest[0]!;
  const d = (await x.domains()).find((r) => r.name === name);
  if (!d) throw new XmError(`Can't get domid of domain name '${name}', maybe this domain does not exist.`);
  x.out(`${d.domid}\n`);
  return 0;
}

export async function domname(x: XmContext, o: Opts): Promise<number> {
  const id = o.rest[0]!;
  const d = /^[0-9]+$/.test(id) ? (await x.domains()).find((r) => r.domid === Number(id)) : undefined;
  if (!d) throw new XmError(`Can't get domain name of domain id '${id}', maybe this domain does not exist.`);
  x.out(`${d.name}\n`);
  return 0;
}

/** The disk spec may come in pieces, as xl's block-attach takes it. */
export async function blockAttach(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.domain.blockAttach', o.rest[0]!, o.rest.slice(1).join(','));
  return 0;
}

export async function blockDetach(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.domain.blockDetach', o.rest[0]!, o.rest[1]!);
  return 0;
}

/** xl's main_blocklist columns. */
export async function blockList(x: XmContext, o: Opts): Promise<number> {
  x.out(`${'Vdev'.padEnd(5)} ${'BE'.padEnd(3)} ${'handle'.padEnd(6)} ${'state'.padEnd(5)} ${'evt-ch'.padEnd(6)} ${'ring-ref'.padEnd(8)} ${'BE-path'.padEnd(30)}\n`);
  for (const dom of o.rest) {
    for (const r of await x.call('xend.domain.blockList', dom)) {
      x.out(`${String(r.devid).padEnd(5)} ${String(r.backendId).padEnd(3)} ${String(r.frontendId).padEnd(6)} ${String(r.state).padEnd(5)} ` +
        `${String(r.evtch).padEnd(6)} ${String(r.rref).padEnd(8)} ${r.backend.padEnd(30)}\n`);
    }
  }
  return 0;
}

export async function networkAttach(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.domain.networkAttach', o.rest[0]!, o.rest.slice(1).join(','));
  return 0;
}

export async function networkDetach(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.domain.networkDetach', o.rest[0]!, o.rest[1]!);
  return 0;
}

/** xl's main_networklist format. */
export async function networkList(x: XmContext, o: Opts): Promise<number> {
  x.out(`${'Idx'.padEnd(3)} ${'BE'.padEnd(2)} ${'Mac Addr.'.padEnd(17)} ${'handle'.padEnd(6)} ${'state'.padEnd(5)} ${'evt-ch'.padEnd(6)} ${'tx-'.padStart(5)}/${'rx-ring-ref'.padEnd(5)} ${'BE-path'.padEnd(30)}\n`);
  for (const dom of o.rest) {
    for (const r of await x.call('xend.domain.networkList', dom)) {
      x.out(`${String(r.devid).padEnd(3)} ${String(r.backendId).padEnd(2)} ${r.mac.padEnd(17)} ${String(r.handle).padEnd(6)} ` +
        `${String(r.state).padEnd(5)} ${String(r.evtch).padEnd(6)} ${String(r.txRingRef).padStart(5)}/${String(r.rxRingRef).padEnd(11)} ${r.backend.padEnd(30)}\n`);
    }
  }
  return 0;
}

/** xl_pci.c: the spec is checked here first, with xl's message and status 2 when libxlu refuses it. */
function checkPciSpec(cmd: string, spec: string): void {
  try { parsePciSpec(spec); } catch { throw new UsageError(`${cmd}: malformed PCI_SPEC_STRING "${spec}"`, false); }
}

export async function pciAttach(x: XmContext, o: Opts): Promise<number> {
  checkPciSpec('pci-attach', o.rest[1]!);
  await x.call('xend.domain.pciAttach', o.rest[0]!, o.rest[1]!);
  return 0;
}

export async function pciDetach(x: XmContext, o: Opts): Promise<number> {
  checkPciSpec('pci-detach', o.rest[1]!);
  await x.call('xend.domain.pciDetach', o.rest[0]!, o.rest[1]!, o.flags.has('f'));
  return 0;
}

/** xl_pci.c pcilist: `Vdev Device`, then `%02x.%01x %04x:%02x:%02x.%01x`. */
export async function pciList(x: XmContext, o: Opts): Promise<number> {
  const rows = await x.call('xend.domain.pciList', o.rest[0]!);
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  x.out('Vdev Device\n');
  for (const r of rows) {
    x.out(`${h((r.vdevfn >> 3) & 0x1f, 2)}.${h(r.vdevfn & 7, 1)} ${h(r.domain, 4)}:${h(r.bus, 2)}:${h(r.dev, 2)}.${h(r.func, 1)}\n`);
  }
  return 0;
}


/** xl trigger <Domain> <power|sleep> [<VCPU>]: XEN_DOMCTL_sendtrigger. */
export async function trigger(x: XmContext, o: Opts): Promise<number> {
  const [dom, what, vcpu] = o.rest as [string, string, string | undefined];
  if (what !== 'power' && what !== 'sleep') {
    throw new XmError(`Invalid trigger "${what}" (xenemu sends power and sleep: the ACPI buttons of an HVM guest)`);
  }
  if (vcpu !== undefined && vcpu !== '0') throw new XmError(`Invalid vcpu ${vcpu}: an HVM guest here has vCPU 0 only`);
  await x.call('xend.domain.trigger', dom, what);
  return 0;
}

/**
 * xl screenshot <Domain> [<File.png>] (xenemu's; QEMU's QMP screendump): the
 * emulated VGA's text screen on stdout (rows without trailing blanks, the
 * blank rows at the bottom left out), and with a file its PNG.
 */
export async function screenshot(x: XmContext, o: Opts): Promise<number> {
  const [dom, file] = o.rest as [string, string | undefined];
  const png = file === undefined ? '' : resolve(file);
  const r = await x.call('xend.domain.screenshot', dom, png);
  if (r.text) {
    const lines = r.text.lines.map((l) => l.replace(/\s+$/, ''));
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    x.out(lines.map((l) => `${l}\n`).join(''));
  } else {
    x.err(`The display is in a graphics mode (${r.mode}, ${r.width}x${r.height}): no text to print.\n`);
  }
  if (png) x.err(`Wrote ${png} (${r.width}x${r.height} PNG)\n`);
  return 0;
}

/**
 * xl save [-c] [-p] <Domain> <CheckpointFile> [<ConfigFile>]: the guest
 * suspends and its configuration and pages go to the file
 * (docs/saverestore.md); it is destroyed unless -c (keep running) or -p
 * (keep it, paused). A <ConfigFile> to store instead is not taken: the
 * configuration saved is the one the domain runs with.
 */
export async function save(x: XmContext, o: Opts): Promise<number> {
  const [dom, file, cfgFile] = o.rest as [string, string, string | undefined];
  if (cfgFile !== undefined) throw new XmError('xenemu saves the configuration the domain runs with: a <ConfigFile> is not taken');
  const path = resolve(file);
  const rec = await x.call('xend.domain', dom);
  x.err(`Saving to ${path} new xl format (info 0x1/0x0/${JSON.stringify(rec.config ?? {}).length})\n`);
  await x.call('xend.domain.save', dom, path, o.flags.has('c'), o.flags.has('p'));
  return 0;
}

/** xl restore [-p] [-e] <CheckpointFile>: the saved guest back under its name, a new domid. */
export async function restore(x: XmContext, o: Opts): Promise<number> {
  if (o.rest.length > 1) throw new XmError('xenemu restores the configuration saved with the domain: a <ConfigFile> is not taken');
  const path = resolve(o.rest[0]!);
  x.err(`Loading new save file ${path} (new xl fmt info 0x1/0x0)\n`);
  const rec = await x.call('xend.domain.restore', path, o.flags.has('p'));
  x.err(` Savefile contains xl domain config in JSON format\nRestored domain ${rec.name} as domid ${rec.domid}\n`);
  return 0;
}

const BAR_WIDTH = 24;

/** One progress line, redrawn in place. */
export function renderProgress(p: MigrationProgress): string {
  const done = Math.round(Math.min(1, Math.max(0, p.scanned)) * BAR_WIDTH);
  const phase = { precopy: `round ${p.round + 1}`, stopcopy: 'stop-and-copy', commit: 'target restoring', go: 'target starting' }[p.phase];
  return `[${'#'.repeat(done)}${'.'.repeat(BAR_WIDTH - done)}] ${phase.padEnd(16)} ${(p.sentBytes / 1048576).toFixed(1).padStart(7)} MB sent  ` +
    `dirty ${(p.dirtyBytesPerSec / 1048576).toFixed(1).padStart(6)} MB/s  est. downtime ${p.estDowntimeMs.toFixed(0).padStart(5)} ms`;
}

/** Polls xend for the migration of `domid` and redraws one line on the terminal until stopped. */
function progressBar(x: XmContext, domid: number): { stop(): Promise<void> } {
  let stopped = false;
  let drawn = false;
  const loop = (async () => {
    while (!stopped) {
      const p = await x.call('xend.domain.migrateProgress', domid).catch(() => null);
      if (p && !stopped) { x.err(`\r${renderProgress(p)}`); drawn = true; }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return { async stop() { stopped = true; await loop; if (drawn) x.err('\n'); } };
}

/**
 * xl migrate [--live] [-l] <Domain> <Host:Port>: the guest to the host whose
 * xenemu listens there (xenemu up --listen). --live: pre-copy rounds while
 * it runs. A line per round, the downtime at the end; -l prints the summary
 * as JSON instead.
 */
export async function migrate(x: XmContext, o: Opts): Promise<number> {
  const live = o.rest.includes('--live');
  const json = o.flags.has('l') || o.rest.includes('-l');
  const operands = o.rest.filter((a) => a !== '--live' && a !== '-l' && a !== '-e');
  const bad = operands.find((a) => a.startsWith('-'));
  if (bad) throw new UsageError(`option \`${bad.replace(/^-+/, '')}' not supported.`, false);
  if (operands.length !== 2) throw new UsageError('migrate needs <Domain> and <Host:Port>', true);
  const [dom, target] = operands as [string, string];
  const rec = await x.call('xend.domain', dom);
  if (!json) x.err(`migration target: ${target}${live ? ' (live)' : ''}\n`);
  const bar = !json && x.isTTY ? progressBar(x, rec.domid) : null;
  let s: MigrationSummary;
  try {
    s = await x.call('xend.domain.migrate', dom, target, live);
  } finally {
    await bar?.stop();
  }
  if (json) {
    x.out(`${JSON.stringify(s, null, 2)}\n`);
    return 0;
  }
  for (const r of s.rounds) {
    x.err(`round ${r.round}: ${r.pages} pages, ${(r.bytes / 1048576).toFixed(1)} MB in ${r.ms.toFixed(0)} ms\n`);
  }
  x.err(`migration sender: Target reports successful startup (domid ${s.targetDomid}); ` +
    `${(s.sentBytes / 1048576).toFixed(1)} MB sent, downtime ${s.downtimeMs.toFixed(0)} ms, total ${s.totalMs.toFixed(0)} ms\n`);
  return 0;
}
