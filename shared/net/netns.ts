// Network namespaces and links for a host's uplink, through iproute2's `ip`
// (named namespaces are /run/netns/NAME, as `ip netns add` makes them) and
// setns(2) of the calling thread (the xenemu_net addon).
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { netAddon } from './addon.js';

const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

export class NetError extends Error {}

/** Runs `ip ARGS` (in namespace `ns` when given: `ip -n ns`); its stdout. Throws NetError with ip's message. */
export function ip(args: string[], ns?: string): string {
  try {
    return execFileSync(IP, ns ? ['-n', ns, ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string; code?: string };
    if (err.code === 'ENOENT') throw new NetError('no `ip` command (iproute2 is needed for --netns)');
    throw new NetError(`ip ${args.join(' ')}${ns ? ` (netns ${ns})` : ''}: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** `ip ARGS`, ignoring failure (teardown of what may be gone already). */
export function ipQuiet(args: string[], ns?: string): boolean {
  try { ip(args, ns); return true; } catch { return false; }
}

export const netnsPath = (name: string) => `/run/netns/${name}`;
export const NETNS_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

export function linkExists(name: string, ns?: string): boolean {
  return ipQuiet(['link', 'show', 'dev', name], ns);
}

/** The links enslaved to bridge `br`. */
export function bridgePorts(br: string, ns?: string): string[] {
  try {
    return (JSON.parse(ip(['-j', 'link', 'show', 'master', br], ns) || '[]') as Array<{ ifname: string }>).map((l) => l.ifname);
  } catch { return []; }
}

/** The alias (`ip link set dev X alias A`) of a link, or null. */
export function linkAlias(name: string, ns?: string): string | null {
  try {
    const [l] = JSON.parse(ip(['-j', 'link', 'show', 'dev', name], ns)) as Array<{ ifalias?: string }>;
    return l?.ifalias ?? null;
  } catch { return null; }
}

/** The inode of a namespace file: two paths name the same namespace when equal. */
export function netnsId(path: string): number | null {
  try { return statSync(path).ino; } catch { return null; }
}

/**
 * Runs `fn` with this thread in the namespace at `path` (a /run/netns file
 * or /proc/PID/ns/net), then returns to the namespace it was in. What `fn`
 * spawns is born there; sockets and TAPs it opens are that namespace's.
 */
export function inNetns<T>(path: string, fn: () => T): T {
  if (netnsId(path) === netnsId('/proc/thread-self/ns/net')) return fn();
  const old = netAddon().netnsEnter(path);
  try { return fn(); } finally { netAddon().netnsRestore(old); }
}
