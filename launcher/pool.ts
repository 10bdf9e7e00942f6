// xenemu pool [--json]: the hosts this user runs (the run root's host
// directories) and their guests, each asked through its xend (xend.pool,
// over xend.sock). A host joined to a pool bridge asks its peers over the
// pool's network (their --listen sockets, processes/dom0/xend/pool.ts), so
// the view says which peers each host reaches; a peer outside this run root
// that answers is listed with its guests too.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { status } from './host.js';
import { readHostNet } from '../shared/net/uplink.js';
import { XEND_SOCKET, xendCall, type PoolGuest, type PoolView } from '../shared/toolstack/xend_api.js';

export interface PoolHostRow {
  name: string; netns: string; pool: string; listen: string; state: string;
  /** Peers this host reached over the pool's network, and those it did not. */
  peers: Array<{ host: string; listen: string; reachable: boolean; error: string }>;
}
export interface PoolGuestRow extends PoolGuest { host: string }

export async function poolView(root: string): Promise<{ hosts: PoolHostRow[]; guests: PoolGuestRow[] }> {
  const hosts: PoolHostRow[] = [];
  const guests = new Map<string, PoolGuestRow[]>();
  const { hosts: running } = status(root);
  const views = await Promise.all(running.map(async (h) => {
    try { return await xendCall({ socketPath: join(h.rundir, XEND_SOCKET) }, 'xend.pool'); } catch (e) { return e as Error; }
  }));
  running.forEach((h, i) => {
    const v = views[i]!;
    const net = readHostNet(h.rundir);
    const ok = !(v instanceof Error);
    hosts.push({
      name: h.name, netns: net?.netns ?? '', pool: net?.pool ?? '', listen: net?.listen ?? '',
      state: !h.ready ? 'booting' : ok ? 'ready' : `xend: ${v.message}`,
      peers: ok ? v.peers.map(({ host, listen, reachable, error }) => ({ host, listen, reachable, error })) : [],
    });
    if (ok) guests.set(h.name, v.guests.map((g) => ({ ...g, host: h.name })));
  });
  // Peers known only over the network (another run root, another machine).
  for (const v of views) {
    if (v instanceof Error) continue;
    for (const p of (v as PoolView).peers) {
      if (p.reachable && !guests.has(p.host)) guests.set(p.host, p.guests.map((g) => ({ ...g, host: p.host })));
    }
  }
  return { hosts, guests: [...guests.values()].flat() };
}

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd() + '\n').join('');
}

export async function poolCommand(argv: string[], root: string, out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true });
  const v = await poolView(root);
  if (values.json) { out(`${JSON.stringify(v, null, 2)}\n`); return 0; }
  const peers = (h: PoolHostRow) => h.peers.map((p) => `${p.host}${p.reachable ? '' : '(unreachable)'}`).join(',') || '-';
  out(table([['HOST', 'NETNS', 'POOL', 'LISTEN', 'STATE', 'PEERS'],
             ...v.hosts.map((h) => [h.name, h.netns || '-', h.pool || '-', h.listen || '-', h.state, peers(h)])]));
  out('\n');
  out(table([['NAME', 'ID', 'HOST', 'STATE'], ...v.guests.map((g) => [g.name, String(g.domid), g.host, g.state])]));
  return 0;
}
