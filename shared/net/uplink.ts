// A host in its own network namespace, and its uplink (docs/net.md "Uplink"):
//
//   root namespace                 namespace NS (xenemu up --netns NS)           Domain-0 (in NS)
//   pool bridge BR ── xv<hash> ═veth═ peth0 ── xenbr0 (Linux bridge, [--address]) ── vif0.0 (TAP) ── netback's xenbr0 ── vifs
//   (--join BR)
//
// As Xen's network-bridge script names them: the Linux bridge `xenbr0`
// carries the host's address, `peth0` is its "physical" NIC (one end of a
// veth pair whose other end is on the pool bridge), `vif0.0` is Domain-0's
// port. Domain-0 opens the TAP (processes/dom0/netback/uplink.ts); the
// launcher makes the rest before it starts the hypervisor in the namespace.
//
// What is made is written to <rundir>/net.json before it is made, and
// releaseHostNet undoes it (each step tolerating what is gone already): at
// `xenemu down`, at the hypervisor's exit, and in reapHost, which Domain-0
// runs when the hypervisor is killed. The namespace is removed only if
// xenemu created it; the pool bridge (marked by its alias) only once no port
// is left on it. The TAP goes with Domain-0's process.
import { readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bridgePorts, inNetns, ip, ipQuiet, linkAlias, linkExists, NetError, netnsExists, netnsId, netnsPath } from './netns.js';

export const NET_RECORD = 'net.json';
/** The Linux bridge in the host's namespace (Dom0's TAP and peth0 are its ports). */
export const NS_BRIDGE = 'xenbr0';
/** Domain-0's TAP: its xenbr0's port into the namespace. */
export const UPLINK_TAP = 'vif0.0';
/** The namespace's end of the veth pair to the pool bridge. */
export const NS_PHYS = 'peth0';
/** The alias that marks a pool bridge xenemu made (and may remove when empty). */
export const POOL_ALIAS = 'xenemu-pool';
/**
 * The descriptor, in a process of the host, of the namespace the launcher
 * was in (where the pool bridge is): the launcher hands it to the
 * hypervisor, the hypervisor to Domain-0 (processes/hypervisor/spawn.ts),
 * so that their release of net.json reaches the pool bridge from inside
 * the host's namespace (/proc/self/fd/N names it).
 */
export const ROOT_NETNS_FD_ENV = 'XENEMU_ROOT_NETNS_FD';

/** Where the pool side is, for this process: init's namespace when that is it, else an inherited descriptor. */
function rootNetnsPath(rec: HostNet): string | undefined {
  if (rec.rootNs) return rec.rootNs;
  const fd = Number(process.env[ROOT_NETNS_FD_ENV]);
  if (!Number.isInteger(fd) || fd < 3) return undefined;
  try {
    // Only a namespace's descriptor (`net:[inode]`): the variable may have come down to a process without it.
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith('net:[') ? `/proc/self/fd/${fd}` : undefined;
  } catch { return undefined; }
}

export interface HostNet {
  netns: string;
  createdNetns: boolean;
  /** The pool bridge in the root namespace (--join), its veth end there. */
  pool?: string;
  veth?: string;
  /** CIDR on the namespace's xenbr0 (--address). */
  address?: string;
  /** Where this host's xend takes migrations and pool requests (--listen), for its pool peers. */
  listen?: string;
  /** The namespace the pool bridge is in, when it is init's (/proc/1/ns/net); else the caller's. */
  rootNs?: string;
}

export interface UplinkOptions { netns: string; join?: string; address?: string; listen?: string }

export function readHostNet(dir: string): HostNet | null {
  try { return JSON.parse(readFileSync(join(dir, NET_RECORD), 'utf8')) as HostNet; } catch { return null; }
}

function writeHostNet(dir: string, rec: HostNet): void {
  const tmp = join(dir, `.${NET_RECORD}.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n');
  renameSync(tmp, join(dir, NET_RECORD));
}

/** The veth end on the pool bridge: one per run directory, within IFNAMSIZ. */
export function vethName(dir: string): string {
  // FNV-1a, 40 bits: every domain process loads this module (through
  // shared/host.ts), and node:crypto would cost each of them its load time.
  let h = 0xcbf29ce484222325n;
  for (const c of Buffer.from(dir)) h = BigInt.asUintN(64, (h ^ BigInt(c)) * 0x100000001b3n);
  return `xv${(h & 0xffffffffffn).toString(16).padStart(10, '0')}`;
}

/**
 * Makes the namespace, its xenbr0 and (with `join`) the veth pair to the
 * pool bridge, recording each step first. Throws NetError (after undoing
 * what it made) when a step fails.
 */
export function setupHostNet(dir: string, o: UplinkOptions): HostNet {
  const rootNs = netnsId('/proc/1/ns/net') === netnsId('/proc/thread-self/ns/net') ? '/proc/1/ns/net' : undefined;
  const rec: HostNet = { netns: o.netns, createdNetns: !netnsExists(o.netns), rootNs, listen: o.listen };
  if (!rec.createdNetns && linkExists(NS_BRIDGE, o.netns)) {
    throw new NetError(`network namespace ${o.netns} has a ${NS_BRIDGE} already (another host's?)`);
  }
  writeHostNet(dir, rec);
  try {
    if (rec.createdNetns) ip(['netns', 'add', o.netns]);
    ip(['link', 'set', 'lo', 'up'], o.netns);
    // No IPv6 chatter (router solicitations, MLD) from the namespace's links into the guests.
    ipQuiet(['netns', 'exec', o.netns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    ip(['link', 'add', NS_BRIDGE, 'type', 'bridge', 'forward_delay', '0'], o.netns);
    if (o.address) { rec.address = o.address; ip(['addr', 'add', o.address, 'dev', NS_BRIDGE], o.netns); }
    ip(['link', 'set', NS_BRIDGE, 'up'], o.netns);
    if (o.join) {
      rec.pool = o.join;
      rec.veth = vethName(dir);
      writeHostNet(dir, rec);
      if (!linkExists(o.join)) {
        ip(['link', 'add', o.join, 'type', 'bridge', 'forward_delay', '0']);
        ip(['link', 'set', 'dev', o.join, 'alias', POOL_ALIAS]);
      }
      ipQuiet(['link', 'del', rec.veth]);
      ip(['link', 'add', rec.veth, 'type', 'veth', 'peer', 'name', NS_PHYS, 'netns', o.netns]);
      ip(['link', 'set', rec.veth, 'master', o.join, 'up']);
      ip(['link', 'set', o.join, 'up']);
      ip(['link', 'set', NS_PHYS, 'master', NS_BRIDGE, 'up'], o.netns);
    }
    writeHostNet(dir, rec);
    return rec;
  } catch (e) {
    releaseHostNet(dir);
    throw e;
  }
}

/**
 * Undoes what net.json records (idempotent; what is gone is skipped).
 * A process of the host (the hypervisor at its exit, Domain-0 reaping a
 * killed hypervisor) is inside the namespace: it reaches the pool side
 * through the descriptor it inherited (ROOT_NETNS_FD_ENV). Without one it
 * returns false and keeps net.json: the namespace is removed all the same
 * (its veth end goes once its last process exits), and the next release
 * from outside (`xenemu down`, `status`, `up`, a test's teardown) removes
 * an empty pool bridge.
 */
export function releaseHostNet(dir: string): boolean {
  const rec = readHostNet(dir);
  if (!rec) return true;
  const here = netnsId('/proc/thread-self/ns/net');
  const inside = here !== null && here === netnsId(netnsPath(rec.netns));
  const rootNs = inside ? rootNetnsPath(rec) : rec.rootNs;
  const rootReachable = !inside || rootNs !== undefined;
  const root = (fn: () => void) => {
    try { if (rootNs) inNetns(rootNs, fn); else fn(); } catch { /* best effort */ }
  };
  if (rootReachable && rec.veth) root(() => { ipQuiet(['link', 'del', rec.veth!]); });
  if (rootReachable && rec.pool) root(() => { removeEmptyPoolBridge(rec.pool!); });
  if (rec.createdNetns) ipQuiet(['netns', 'del', rec.netns]);
  else if (netnsExists(rec.netns)) ipQuiet(['link', 'del', NS_BRIDGE], rec.netns);
  if (!rootReachable && rec.pool) return false;
  rmSync(join(dir, NET_RECORD), { force: true });
  return true;
}

/** Deletes pool bridge `br` if xenemu made it (its alias) and no port is left on it. */
export function removeEmptyPoolBridge(br: string): boolean {
  if (linkAlias(br) !== POOL_ALIAS || bridgePorts(br).length > 0) return false;
  return ipQuiet(['link', 'del', br]);
}

/** Spawns (through `fn`) in the host's namespace. */
export function inHostNetns<T>(rec: HostNet, fn: () => T): T {
  return inNetns(netnsPath(rec.netns), fn);
}
