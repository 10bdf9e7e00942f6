// Running Xen's own C tools (xl, xentop, libxenctrl programs, Xen's
// xenstored) as Domain-0 programs of a xenemu host: the environment that
// puts xenemu's privcmd library (shared/native/xenemu_privcmd.c) under them
// (docs/xenctrl.md). `xenemu run` and `xenemu env` use it, and so do the
// tests and benchmarks.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostFiles } from './host.js';

const here = dirname(fileURLToPath(import.meta.url));
// dist/shared/xenctrl.js -> <root>/shared/native/build/Release, built at install (binding.gyp).
export const PRIVCMD_LIBRARY = join(here, '..', '..', 'shared', 'native', 'build', 'Release', 'xenemu_privcmd.so');

/**
 * Debian's xen-utils-4.17, unpacked into the user's cache when it is not
 * installed (installing it pulls in udev and a systemd upgrade; the tests
 * fetch it with apt-get download, test/helpers/xenstored.ts).
 */
export const XEN_UTILS_DIR = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'xenemu', 'xen-utils');
/** Where Xen 4.17's programs are: the installed package's directory, else the unpacked one. */
export const XEN_BIN_DIRS = ['/usr/lib/xen-4.17/bin', join(XEN_UTILS_DIR, 'usr', 'lib', 'xen-4.17', 'bin')];
/** Xen's C xenstored of the unpacked package. */
export const XEN_C_XENSTORED = join(XEN_UTILS_DIR, 'usr', 'lib', 'xen-4.17', 'bin', 'xenstored');

/**
 * Debian's xen-utils-4.17, downloaded (apt-get download: it is not installed,
 * as installing it pulls in udev and a systemd upgrade) and unpacked once
 * into XEN_UTILS_DIR. Returns why it cannot be had, or null.
 */
export function fetchXenUtils(): string | null {
  if (existsSync(XEN_C_XENSTORED)) return null;
  const cache = dirname(XEN_UTILS_DIR);
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(join(cache, 'dl-'));
  try {
    const download = () => spawnSync('apt-get', ['download', 'xen-utils-4.17'], { cwd: tmp, encoding: 'utf8', timeout: 120_000 });
    let dl = download();
    // A fresh machine may have no package lists yet (.ci/setup updates them only when it installs).
    if (dl.status !== 0 && process.getuid?.() === 0) {
      spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', timeout: 300_000 });
      dl = download();
    }
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) return `apt-get download xen-utils-4.17 failed: ${(dl.stderr || dl.error?.message || '').trim().split('\n').pop()}`;
    const unpacked = join(tmp, 'root');
    const x = spawnSync('dpkg', ['-x', join(tmp, deb), unpacked], { encoding: 'utf8' });
    if (x.status !== 0) return `dpkg -x ${deb} failed: ${x.stderr.trim()}`;
    // Another run may have won the race: keep theirs.
    try { renameSync(unpacked, XEN_UTILS_DIR); } catch { /* already there */ }
    return existsSync(XEN_C_XENSTORED) ? null : `${deb} has no usr/lib/xen-4.17/bin/xenstored`;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The environment of a Domain-0 program of the host whose run directory is
 * `rundir`: the library preloaded (before any other preload), the host it
 * serves (XENEMU_HOST_DIR), xenstore's socket for libxenstore
 * (XENSTORED_PATH), and Xen's program directory first on PATH.
 */
export function privcmdEnv(rundir: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const preload = [PRIVCMD_LIBRARY, ...(base.LD_PRELOAD ?? '').split(/[:\s]+/).filter((p) => p && p !== PRIVCMD_LIBRARY)];
  const bins = XEN_BIN_DIRS.filter((d) => existsSync(d));
  const path = [...bins, ...(base.PATH ?? '').split(delimiter).filter((p) => p && !bins.includes(p))];
  return {
    ...base,
    LD_PRELOAD: preload.join(':'),
    XENEMU_HOST: basename(rundir),
    XENEMU_HOST_DIR: rundir,
    XENSTORED_PATH: join(rundir, 'xenstored.sock'),
    PATH: path.join(delimiter),
  };
}

/** Why the library cannot be used (it was not built), or null. */
export function privcmdLibraryMissing(): string | null {
  return existsSync(PRIVCMD_LIBRARY) ? null : `${PRIVCMD_LIBRARY} is missing: \`npm ci\` builds it (node-gyp)`;
}

/** The host's privcmd socket. */
export function privcmdSocket(rundir: string): string {
  return join(rundir, hostFiles.privcmdSock);
}
