// `xenemu demo` (what `npm start` runs): a host with Domain-0 and two PV
// guests that can reach each other and have a disk, their list, and the
// console of the first.
//
//   1. `xenemu up` unless the host already runs
//   2. for each of demo1 (10.0.0.1) and demo2 (10.0.0.2) that does not exist:
//      a blank 64 MiB image <rundir>/<name>.img (kept if there), then
//      `xl create docs/examples/demo.cfg name=<name> disk=[image as xvda]
//      vif=[xenbr0 with its address]`
//   3. `xl list`
//   4. wait for both guests' shell prompts (so the other guest answers a
//      ping at once)
//   5. stdin a TTY: what to try, then `xl console demo1` (backlog, then live;
//      Ctrl-] detaches)
//      otherwise (CI): print demo1's console up to its prompt, say how to
//      attach and how to stop, exit 0 with the host left up.
//
// The images live in the run directory, so `xenemu down` removes them with
// the host. README.md's "Try it" lists DEMO_TRY; test/host/demo.test.ts
// runs that list through the console.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HOST_NAME, hostDir, runRoot } from '../shared/host.js';
import { XEND_SOCKET, xendCall } from '../shared/toolstack/xend_api.js';
import { hostRunning, up } from './host.js';
import { runXm, type XmIo } from './xm.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The shipped config (the repository's docs/examples/demo.cfg; dist/ sits beside docs/). */
export const DEMO_CFG = path.join(here, '..', '..', 'docs', 'examples', 'demo.cfg');

export interface DemoGuest { name: string; ip: string }
/** The demo's guests; the first is the one whose console is attached. */
export const DEMO_GUESTS: readonly DemoGuest[] = [
  { name: 'demo1', ip: '10.0.0.1' },
  { name: 'demo2', ip: '10.0.0.2' },
];
export const DEMO_DOMAIN = DEMO_GUESTS[0]!.name;
/** Size of each guest's disk image: sparse, so it costs nothing until written. */
export const DEMO_DISK_MB = 64;

/** What to type in demo1's console (README.md "Try it" shows the same lines). */
export const DEMO_TRY: readonly string[] = [
  `ping -c 3 ${DEMO_GUESTS[1]!.ip}`,
  'mkfs /dev/xvda',
  `write hello.txt hello from ${DEMO_DOMAIN}`,
  'cat hello.txt',
  'ls -l',
];

/** A shell prompt at the end of what the guest wrote ("root@demo1:~# ", "$ ", "> "). */
export const PROMPT_RE = /[#$>] ?$/;

export interface DemoOptions {
  name?: string;
  memoryMB?: number;
  pcpus?: number;
  /** How long to wait for the prompt when not attached to a TTY. */
  promptTimeoutMs?: number;
}

/** The disk image of a demo guest, in the host's run directory. */
export function demoImage(rundir: string, g: DemoGuest): string {
  return path.join(rundir, `${g.name}.img`);
}

/** `xl create` arguments for a demo guest: the shipped config and what differs per guest. */
export function demoCreateArgs(rundir: string, g: DemoGuest): string[] {
  return [DEMO_CFG, `name=${g.name}`, `disk=['${demoImage(rundir, g)},raw,xvda,rw']`, `vif=['bridge=xenbr0,ip=${g.ip}']`];
}

/** An argument as a POSIX shell would need it to be typed. */
function shellWord(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/["\\$`]/g, '\\$&')}"`;
}

/**
 * Reads the guest's PTY until its output ends in a prompt (or the timeout):
 * the backlog xenconsoled kept plus what arrives. Resolves with the text.
 */
export async function waitForPrompt(socketPath: string, dom: string, timeoutMs: number): Promise<{ text: string; prompt: boolean }> {
  const att = await xendCall({ socketPath }, 'xend.domain.console', dom, '', 0);
  let text = Buffer.from(att.backlog).toString('utf8');
  if (PROMPT_RE.test(text)) return { text, prompt: true };
  const fd = fs.openSync(att.ptyPath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  const stream = new tty.ReadStream(fd);
  return new Promise((resolve) => {
    let done = false;
    const finish = (prompt: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.once('close', () => resolve({ text, prompt }));
      stream.destroy();
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    stream.on('data', (d: Buffer) => { text += d.toString('utf8'); if (PROMPT_RE.test(text)) finish(true); });
    stream.on('error', () => finish(false));
    stream.on('end', () => finish(false));
  });
}

export async function runDemo(o: DemoOptions = {}, io: XmIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<number> {
  const root = runRoot(io.env);
  const name = o.name ?? DEFAULT_HOST_NAME;
  const rundir = hostDir(root, name);
  const env = { ...(io.env ?? process.env), XENEMU_HOST: name };
  const xm = (...argv: string[]) => runXm(argv, { ...io, env });
  const out = (s: string) => io.stdout.write(s);

  if (hostRunning(root, name)) out(`host ${name} is already up (${rundir})\n`);
  else await up({ root, name, memoryMB: o.memoryMB ?? 2048, pcpus: o.pcpus ?? 2, foreground: false }, out);

  const socketPath = path.join(rundir, XEND_SOCKET);
  const doms = await xendCall({ socketPath }, 'xend.domains', true);
  const t0 = performance.now();
  const missing = DEMO_GUESTS.filter((g) => !doms.some((d) => typeof d !== 'string' && d.name === g.name));
  for (const g of missing) {
    const img = demoImage(rundir, g);
    if (!fs.existsSync(img)) {
      fs.closeSync(fs.openSync(img, 'w'));
      fs.truncateSync(img, DEMO_DISK_MB << 20);
      out(`${path.basename(img)}: a blank ${DEMO_DISK_MB} MiB disk for ${g.name} (${img})\n`);
    }
    const args = demoCreateArgs(rundir, g);
    out(`$ xl create ${[path.relative(process.cwd(), args[0]!) || args[0]!, ...args.slice(1)].map(shellWord).join(' ')}\n`);
    const rc = await xm('create', ...args);
    if (rc !== 0) return rc;
  }
  out('$ xl list\n');
  await xm('list');

  const timeout = o.promptTimeoutMs ?? 30_000;
  const consoles = await Promise.all(DEMO_GUESTS.map((g) => waitForPrompt(socketPath, g.name, timeout)));
  const upMs = performance.now() - t0;
  const hostOpt = name === DEFAULT_HOST_NAME ? '' : ` --host ${name}`;
  const host = name === DEFAULT_HOST_NAME ? '' : ` ${name}`;
  const late = DEMO_GUESTS.filter((_, i) => !consoles[i]!.prompt).map((g) => g.name);
  if (late.length) out(`no shell prompt from ${late.join(', ')} yet (see ${path.join(rundir, 'logs')})\n`);
  else if (missing.length) out(`create to shell prompt: ${(upMs / 1000).toFixed(2)} s (${missing.map((g) => g.name).join(', ')})\n`);

  if (io.stdin?.isTTY) {
    out(`\nIn ${DEMO_DOMAIN}'s console, try: ${DEMO_TRY.map((c) => `\`${c}\``).join(', ')} (README.md, "Try it").\n`);
    out(`$ xl console ${DEMO_DOMAIN}        (Ctrl-] detaches; \`xenemu down${host}\` stops the host)\n`);
    const rc = await xm('console', DEMO_DOMAIN);
    out(`\ndetached. The host is still up: \`xenemu xl${hostOpt} console ${DEMO_DOMAIN}\` attaches again, ` +
        `\`xenemu down${host}\` stops it.\n`);
    return rc;
  }

  const text = consoles[0]!.text;
  out(`--- console of ${DEMO_DOMAIN} ---\n${text}${text.endsWith('\n') ? '' : '\n'}--- end of console ---\n`);
  const cli = `node ${path.relative(process.cwd(), path.join(here, 'cli.js')) || 'dist/launcher/cli.js'}`;
  out(`stdin is not a terminal, so not attaching. The host is still up:\n` +
      `  ${cli} xl${hostOpt} console ${DEMO_DOMAIN}   attach (Ctrl-] detaches); try ${DEMO_TRY.map((c) => `\`${c}\``).join(', ')}\n` +
      `  ${cli} xl${hostOpt} list\n` +
      `  ${cli} down${host}   stop it (xenemu down)\n`);
  return 0;
}
