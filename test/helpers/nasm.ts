// x86 programs the HVM tests assemble at run time with nasm (Debian's nasm
// package, which .ci/setup installs). A missing nasm is a loud skip; a
// source that does not assemble is a test failure.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function nasmMissing(): string | null {
  return spawnSync('nasm', ['-v']).status === 0 ? null : 'nasm not found: install the Debian package nasm (.ci/setup does)';
}

interface Tap { equal(a: unknown, b: unknown, m: string): void }

/** `nasm -f bin [-Dname...] src -o out`, asserted to succeed; the binary, or null. */
export function nasmBuild(t: Tap, src: string, out: string, defines: string[] = []): Uint8Array | null {
  const r = spawnSync('nasm', ['-f', 'bin', ...defines.map((d) => `-D${d}`), src, '-o', out], { encoding: 'utf8' });
  t.equal(r.status, 0, `nasm assembles ${src}${r.stderr ? `: ${r.stderr}` : ''}`);
  return r.status === 0 ? new Uint8Array(readFileSync(out)) : null;
}
