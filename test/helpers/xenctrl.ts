// Xen's own C tools run against a test host through xenemu's privcmd
// library (shared/xenctrl.ts, docs/xenctrl.md). Debian's xen-utils-4.17 is
// fetched by fetchXenUtils (test/helpers/xenstored.ts) when it is not
// there; libxen-dev (.ci/setup installs it) brings the libraries it links.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { XEN_BIN_DIRS, privcmdEnv, privcmdLibraryMissing } from '../../shared/xenctrl.js';
import { productEnv, type TestHost } from './host.js';
import { ccMissing } from './cc.js';
import { fetchXenUtils } from './xenstored.js';

/** Where Xen's program `name` is (installed, else the unpacked package). */
export function xenTool(name: string): string {
  for (const d of XEN_BIN_DIRS) if (existsSync(join(d, name))) return join(d, name);
  return join(XEN_BIN_DIRS[XEN_BIN_DIRS.length - 1]!, name);
}

/** Why Xen's tools cannot run here (a loud tap skip), or null. */
export function xenToolsMissing(): string | null {
  const why = privcmdLibraryMissing() ?? ccMissing(['xenctrl.h', 'xenevtchn.h']) ?? fetchXenUtils();
  if (why) return why;
  const ldd = spawnSync('ldd', [xenTool('xl')], { encoding: 'utf8' });
  const lib = /(\S+) => not found/.exec(ldd.stdout ?? '');
  if (lib) return `${lib[1]} not found for Xen's xl: install the Debian package libxen-dev (.ci/setup does)`;
  return null;
}

export interface XenRun { code: number; stdout: string; stderr: string }

/** Runs Xen's `tool` with `args` as a Domain-0 program of `h`; never throws on a non-zero exit. */
export function runXen(h: TestHost, tool: string, args: string[], timeout = 30_000): Promise<XenRun> {
  return new Promise((resolve) => {
    execFile(tool.includes('/') ? tool : xenTool(tool), args, { env: privcmdEnv(h.rundir, productEnv()), timeout },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
  });
}

/** Xen's tool must succeed, saying nothing on stderr: its stdout. */
export async function xenOk(h: TestHost, tool: string, ...args: string[]): Promise<string> {
  const r = await runXen(h, tool, args);
  if (r.code !== 0 || r.stderr !== '') throw new Error(`${tool} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
