// What the host tests share: the real CLI (`node dist/launcher/cli.js xl
// ...`) against a TestHost, `xl list` parsed, a privileged xenstore
// connection for watching @introduceDomain/@releaseDomain, and a PTY
// reader that waits for text (no sleeping).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XENEMU_CLI, type TestHost } from '../helpers/host.js';
import { XsClient } from '../../shared/xenstore/client.js';
import { XEND_SOCKET, xendCall, type XendMethod, type XendParams, type XendResult } from '../../shared/toolstack/xend_api.js';

interface Tap { teardown(fn: () => unknown): void }

export interface XlResult { code: number; stdout: string; stderr: string }

/** Runs `xenemu xl <args>` (or xm) for this host; never throws on a non-zero exit. */
export function xl(h: TestHost, args: string[], prog: 'xl' | 'xm' = 'xl'): Promise<XlResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [XENEMU_CLI, prog, ...args], { env: { ...h.env, XENEMU_HOST: h.name }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
  });
}

/** xl must succeed: returns stdout. */
export async function xlOk(h: TestHost, ...args: string[]): Promise<string> {
  const r = await xl(h, args);
  if (r.code !== 0) throw new Error(`xl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export interface ListRow { name: string; id: number; mem: number; vcpus: number; state: string; time: number }

/** Parses `xl list` with its fixed columns. */
export function parseList(out: string): ListRow[] {
  const lines = out.trimEnd().split('\n');
  return lines.slice(1).map((l) => {
    const m = /^(.{40}) +(\d+) +(\d+) +(\d+) +([-a-zA-Z]{6}) +([\d.]+)$/.exec(l);
    if (!m) throw new Error(`not an xl list line: ${JSON.stringify(l)}`);
    return { name: m[1]!.trim(), id: Number(m[2]), mem: Number(m[3]), vcpus: Number(m[4]), state: m[5]!, time: Number(m[6]) };
  });
}

export async function list(h: TestHost): Promise<ListRow[]> {
  return parseList(await xlOk(h, 'list'));
}

export function xend<M extends XendMethod>(h: TestHost, method: M, ...params: XendParams<M>): Promise<XendResult<M>> {
  return xendCall({ socketPath: path.join(h.rundir, XEND_SOCKET) }, method, ...params);
}

/** A privileged xenstore connection (the host's socket), closed at teardown. */
export async function xenstore(t: Tap, h: TestHost): Promise<XsClient> {
  const xs = await XsClient.connect(path.join(h.rundir, 'xenstored.sock'));
  t.teardown(() => xs.close());
  return xs;
}

/**
 * Resolves on the first event of a xenstore watch after `arm()` for which
 * `test` holds (rechecked on every event), or rejects after timeoutMs.
 */
export async function onWatch<T>(xs: XsClient, watchPath: string, test: () => Promise<T | undefined | false>,
                                 timeoutMs = 10_000): Promise<T> {
  const token = `t${Math.random().toString(36).slice(2)}`;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, v?: T) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void xs.unwatch(watchPath, token).catch(() => undefined);
      if (err) reject(err); else resolve(v as T);
    };
    const timer = setTimeout(() => finish(new Error(`timed out waiting on watch ${watchPath}`)), timeoutMs);
    const check = () => { void test().then((v) => { if (v) finish(null, v); }, (e: Error) => finish(e)); };
    // XS_WATCH fires once on registration, so a condition already true is seen.
    xs.watch(watchPath, token, check).catch((e: Error) => finish(e));
  });
}

export { PtyClient } from '../helpers/pty_client.js';

/** Writes a config file into the host's run root and returns its path. */
export function writeCfg(h: TestHost, file: string, text: string): string {
  const p = path.join(h.root, file);
  fs.writeFileSync(p, text);
  return p;
}
