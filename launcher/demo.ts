// `xenemu demo` (what `npm start` runs): a host with Domain-0 and one PV
// guest, its list, and its console.
//
//   1. `xenemu up` unless the host already runs
//   2. `xl create docs/examples/demo.cfg` unless a domain "demo" exists
//   3. `xl list`
//   4. stdin a TTY: `xl console demo` (backlog, then live; Ctrl-] detaches)
//      otherwise (CI): wait for the guest's shell prompt on its PTY, print
//      what it wrote, say how to attach and how to stop, exit 0 with the
//      host left up.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HOST_NAME, hostDir, runRoot } from '../shared/host.js';
import { xmlrpcCall } from '../shared/xmlrpc.js';
import { XEND_METHODS, XEND_SOCKET, type DomainRecord } from '../shared/toolstack/xend_api.js';
import { hostRunning, up } from './host.js';
import { runXm, type XmIo } from './xm.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The shipped config (the repository's docs/examples/demo.cfg; dist/ sits beside docs/). */
export const DEMO_CFG = path.join(here, '..', '..', 'docs', 'examples', 'demo.cfg');
export const DEMO_DOMAIN = 'demo';

/** A shell prompt at the end of what the guest wrote ("demo:~# ", "$ ", "> "). */
export const PROMPT_RE = /[#$>] ?$/;

export interface DemoOptions {
  name?: string;
  memoryMB?: number;
  pcpus?: number;
  /** How long to wait for the prompt when not attached to a TTY. */
  promptTimeoutMs?: number;
}

/**
 * Reads the guest's PTY until its output ends in a prompt (or the timeout):
 * the backlog xenconsoled kept plus what arrives. Resolves with the text.
 */
export async function waitForPrompt(socketPath: string, dom: string, timeoutMs: number): Promise<{ text: string; prompt: boolean }> {
  const att = (await xmlrpcCall({ socketPath }, XEND_METHODS.console, [dom])) as { ptyPath: string; backlog: Uint8Array };
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
  const env = { ...(io.env ?? process.env), XENEMU_HOST: name };
  const xm = (...argv: string[]) => runXm(argv, { ...io, env });
  const out = (s: string) => io.stdout.write(s);

  if (hostRunning(root, name)) out(`host ${name} is already up (${hostDir(root, name)})\n`);
  else await up({ root, name, memoryMB: o.memoryMB ?? 2048, pcpus: o.pcpus ?? 2, foreground: false }, out);

  const socketPath = path.join(hostDir(root, name), XEND_SOCKET);
  const doms = (await xmlrpcCall({ socketPath }, XEND_METHODS.domains, [true])) as unknown as DomainRecord[];
  const t0 = performance.now();
  const creating = !doms.some((d) => d.name === DEMO_DOMAIN);
  if (creating) {
    out(`$ xl create ${path.relative(process.cwd(), DEMO_CFG) || DEMO_CFG}\n`);
    const rc = await xm('create', DEMO_CFG);
    if (rc !== 0) return rc;
  }
  out('$ xl list\n');
  await xm('list');

  if (io.stdin?.isTTY) {
    const hostOpt = name === DEFAULT_HOST_NAME ? '' : ` --host ${name}`;
    const host = name === DEFAULT_HOST_NAME ? '' : ` ${name}`;
    out(`$ xl console ${DEMO_DOMAIN}        (Ctrl-] detaches; \`xenemu down${host}\` stops the host)\n`);
    const rc = await xm('console', DEMO_DOMAIN);
    out(`\ndetached. The host is still up: \`xenemu xl${hostOpt} console ${DEMO_DOMAIN}\` attaches again, ` +
        `\`xenemu down${host}\` stops it.\n`);
    return rc;
  }

  const { text, prompt } = await waitForPrompt(socketPath, DEMO_DOMAIN, o.promptTimeoutMs ?? 30_000);
  out(`--- console of ${DEMO_DOMAIN} ---\n${text}${text.endsWith('\n') ? '' : '\n'}--- end of console ---\n`);
  if (prompt && creating) out(`create to shell prompt: ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
  else if (!prompt) out(`no shell prompt from ${DEMO_DOMAIN} yet (see ${path.join(hostDir(root, name), 'logs')})\n`);
  const cli = `node ${path.relative(process.cwd(), path.join(here, 'cli.js')) || 'dist/launcher/cli.js'}`;
  const host = name === DEFAULT_HOST_NAME ? '' : ` ${name}`;
  const hostOpt = name === DEFAULT_HOST_NAME ? '' : ` --host ${name}`;
  out(`stdin is not a terminal, so not attaching. The host is still up:\n` +
      `  ${cli} xl${hostOpt} console ${DEMO_DOMAIN}   attach (Ctrl-] detaches)\n` +
      `  ${cli} xl${hostOpt} list\n` +
      `  ${cli} down${host}   stop it (xenemu down)\n`);
  return 0;
}
