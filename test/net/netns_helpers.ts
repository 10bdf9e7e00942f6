// What the namespace tests share: whether this machine lets them make
// network namespaces and TAPs (root, iproute2, /dev/net/tun), and a
// throwaway namespace removed at teardown.
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ip, ipQuiet, netnsExists } from '../../shared/net/netns.js';

interface Tap { teardown(fn: () => unknown): void }

/** Why the namespace tests cannot run here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces and TAPs need root';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  const probe = `xq${randomBytes(4).toString('hex')}`;
  try {
    ip(['netns', 'add', probe]);
  } catch (e) {
    return `ip netns add fails: ${(e as Error).message}`;
  } finally {
    ipQuiet(['netns', 'del', probe]);
  }
  return null;
}

/** A fresh namespace name (not yet made). */
export function netnsName(prefix = 'xt'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/** Makes namespace `name` and removes it at teardown. */
export function throwawayNetns(t: Tap, name = netnsName()): string {
  ip(['netns', 'add', name]);
  t.teardown(() => { ipQuiet(['netns', 'del', name]); });
  return name;
}

export { netnsExists };
