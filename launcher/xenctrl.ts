// `xenemu run [--host H] -- CMD ...` and `xenemu env [--host H]`: Xen's own C
// tools as Domain-0 programs of a running host, through xenemu's privcmd
// library (shared/xenctrl.ts, docs/xenctrl.md). The host is chosen as xm's
// is: --host, else $XENEMU_HOST, else the only one running.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { findXendSocket } from './xm.js';
import { privcmdEnv, privcmdLibraryMissing, privcmdSocket } from '../shared/xenctrl.js';

/** `--host H` / `--host=H` before the command; the rest. */
function hostArg(argv: string[]): { host: string | undefined; rest: string[] } {
  let host: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { i++; break; }
    if (a === '--host') { host = argv[++i]; continue; }
    if (a.startsWith('--host=')) { host = a.slice(7); continue; }
    break;
  }
  return { host, rest: argv.slice(i) };
}

function environment(host: string | undefined): NodeJS.ProcessEnv {
  const missing = privcmdLibraryMissing();
  if (missing) throw new Error(missing);
  const rundir = dirname(findXendSocket(host, process.env));
  if (!existsSync(privcmdSocket(rundir))) throw new Error(`no xenemu host is running at ${rundir} (start one with \`xenemu up\`)`);
  return privcmdEnv(rundir);
}

export async function runCommand(argv: string[]): Promise<number> {
  const { host, rest } = hostArg(argv);
  if (rest.length === 0) {
    process.stderr.write('usage: xenemu run [--host H] -- CMD [ARGS...]\n');
    return 2;
  }
  let env: NodeJS.ProcessEnv;
  try { env = environment(host); } catch (e) { process.stderr.write(`xenemu: ${(e as Error).message}\n`); return 1; }
  const child = spawn(rest[0]!, rest.slice(1), { stdio: 'inherit', env });
  // A terminal's Ctrl-C reaches the child itself (same process group): we wait for it to end.
  process.on('SIGINT', () => undefined);
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { child.kill(sig); });
  return new Promise((resolve) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      process.stderr.write(`xenemu: cannot run ${rest[0]}: ${e.code === 'ENOENT' ? 'not found (is xen-utils-4.17 installed? docs/xenctrl.md)' : e.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? 15 : 1)));
  });
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export async function envCommand(argv: string[]): Promise<number> {
  const { host, rest } = hostArg(argv);
  if (rest.length) {
    process.stderr.write('usage: xenemu env [--host H]\n');
    return 2;
  }
  let env: NodeJS.ProcessEnv;
  try { env = environment(host); } catch (e) { process.stderr.write(`xenemu: ${(e as Error).message}\n`); return 1; }
  for (const k of ['LD_PRELOAD', 'XENEMU_HOST', 'XENEMU_HOST_DIR', 'XENSTORED_PATH', 'PATH']) {
    process.stdout.write(`export ${k}=${shellQuote(env[k] ?? '')}\n`);
  }
  return 0;
}
