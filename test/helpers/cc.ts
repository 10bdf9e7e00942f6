// C programs the tests build at run time with the system compiler. A missing
// compiler or header is a loud skip (the Debian packages .ci/setup installs);
// a source that does not build with them there is a test failure.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Why C cannot be built here, or null: `cc` and each of `headers` (under /usr/include). */
export function ccMissing(headers: string[] = []): string | null {
  if (spawnSync('cc', ['--version']).status !== 0) return 'cc not found: install the Debian packages gcc and libc6-dev (.ci/setup does)';
  for (const h of headers) {
    if (!existsSync(`/usr/include/${h}`)) return `${h} not found: install the Debian package libxen-dev (.ci/setup does)`;
  }
  return null;
}

interface Tap { equal(a: unknown, b: unknown, m: string): void }

/** `cc ARGS -o exe src LIBS`, asserted to succeed; true when it did. */
export function ccBuild(t: Tap, src: string, exe: string, args: string[], libs: string[] = []): boolean {
  const cc = spawnSync('cc', [...args, '-o', exe, src, ...libs], { encoding: 'utf8' });
  t.equal(cc.status, 0, `cc builds ${src}${cc.stderr ? `: ${cc.stderr}` : ''}`);
  return cc.status === 0;
}
