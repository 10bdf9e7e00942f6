// A pool of xenemu hosts (docs/saverestore.md "Pools"): the hosts under one
// run root that joined the same pool bridge (xenemu up --netns NS --join BR
// --listen ADDR:PORT; their <rundir>/net.json says so). Each host's xend
// answers `pool` on its listen socket (migration.ts's ROUTER) with its name
// and guests; a host asks its peers there, so what it learns is what is
// reachable over the pool's network, from its own namespace.
//
// Guest names are unique in a pool: xl create, xl restore and a migration's
// target refuse a name a peer runs (the migration's source excepted), as a
// single host refuses a name in use. A peer that does not answer within
// POOL_TIMEOUT_MS is left out (and logged): a dead host holds no names.
import * as zmq from 'zeromq';
import { pack, unpack } from 'msgpackr';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readHostNet } from '../../../shared/net/uplink.js';
import type { PoolGuest, PoolPeer } from '../../../shared/toolstack/xend_api.js';

export const POOL_TIMEOUT_MS = 1000;

export interface PoolMember { host: string; listen: string }

/** This host's pool (its bridge), or null when it joined none or does not listen. */
export function ownPool(rundir: string): { pool: string; listen: string } | null {
  const rec = readHostNet(rundir);
  return rec?.pool && rec.listen ? { pool: rec.pool, listen: rec.listen } : null;
}

/** The other hosts of this run root on the same pool bridge, with their listen addresses. */
export function poolPeers(rundir: string): PoolMember[] {
  const own = ownPool(rundir);
  if (!own) return [];
  const root = dirname(rundir);
  const me = basename(rundir);
  let names: string[] = [];
  try { names = readdirSync(root); } catch { return []; }
  const peers: PoolMember[] = [];
  for (const n of names) {
    if (n === me) continue;
    const rec = readHostNet(join(root, n));
    if (rec?.pool === own.pool && rec.listen) peers.push({ host: n, listen: rec.listen });
  }
  return peers;
}

/** Asks one peer's xend for its guests over its listen socket. */
export async function askPeer(p: PoolMember): Promise<PoolPeer> {
  const sock = new zmq.Dealer({ linger: 0, sendTimeout: POOL_TIMEOUT_MS, receiveTimeout: POOL_TIMEOUT_MS });
  try {
    sock.connect(`tcp://${p.listen}`);
    await sock.send(pack({ type: 'pool' }));
    const [reply] = await sock.receive();
    const r = unpack(reply!) as { ok: boolean; host?: string; guests?: PoolGuest[]; error?: string };
    if (!r.ok) return { host: p.host, listen: p.listen, reachable: false, error: r.error ?? 'refused', guests: [] };
    return { host: r.host ?? p.host, listen: p.listen, reachable: true, error: '', guests: r.guests ?? [] };
  } catch (e) {
    return { host: p.host, listen: p.listen, reachable: false, error: (e as Error).message, guests: [] };
  } finally {
    sock.close();
  }
}

/** Every peer's answer (in parallel). */
export async function askPeers(rundir: string): Promise<PoolPeer[]> {
  return Promise.all(poolPeers(rundir).map(askPeer));
}

/**
 * The peer that runs a guest called `name`, or null; `except` (a migration's
 * source host) is not asked.
 */
export async function nameInPool(rundir: string, name: string, log: (m: string) => void, except?: string): Promise<string | null> {
  const peers = poolPeers(rundir).filter((p) => p.host !== except);
  if (peers.length === 0) return null;
  for (const r of await Promise.all(peers.map(askPeer))) {
    if (!r.reachable) { log(`xend: pool: ${r.host} (${r.listen}) did not answer: ${r.error}`); continue; }
    if (r.guests.some((g) => g.name === name)) return r.host;
  }
  return null;
}
