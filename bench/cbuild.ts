// Builds a benchmark's C client at run time (bench/c/<name>.c ->
// bench/build/<name>, gitignored) with the system compiler, so that the load
// generator costs far less than what it loads. Rebuilt when the source is
// newer than the binary.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CProgram {
  /** bench/c/<name>.c */
  name: string;
  /** Extra arguments after the source, e.g. ['-lxenstore']. */
  libs: string[];
  /** What to tell the user when the build fails (a missing package). */
  hint: string;
}

export async function buildC(root: string, prog: CProgram): Promise<string> {
  const src = join(root, 'bench', 'c', `${prog.name}.c`);
  const outDir = join(root, 'bench', 'build');
  const bin = join(outDir, prog.name);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(outDir, { recursive: true });
  const cc = process.env.CC ?? 'cc';
  try {
    await run(cc, ['-O2', '-Wall', '-o', bin, src, ...prog.libs]);
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`bench: cannot build ${src} with ${cc} (${prog.hint}):\n${err.stderr || err.message}`);
  }
  return bin;
}
