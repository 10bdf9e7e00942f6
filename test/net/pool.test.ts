// Hosts in their own network namespaces, joined to one pool bridge
// (xenemu up --netns --join --address --listen; docs/net.md "Uplink",
// docs/saverestore.md "Pools"): a guest on each pings the other and the
// namespace of the other host; one moves by xl migrate --live while the
// other pings it every 100 ms, and its gratuitous ARP is seen on the pool
// bridge; xenemu pool lists both hosts and their guests; a name a peer runs
// is refused; SIGKILL of a hypervisor and xenemu down leave no namespace,
// veth, TAP or pool bridge.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHost, waitFor, readHostRecord } from '../helpers/host.js';
import { list, xl } from '../host/xl.js';
import { attachGuest, netGuest } from './guests.js';
import { ip, ipQuiet, linkExists, netnsExists } from '../../shared/net/netns.js';
import { openTap } from '../../shared/net/tap.js';
import { netnsName, netnsUnavailable } from './netns_helpers.js';

const why = netnsUnavailable();
const PORT = 23000;
const GA_MAC = '00:16:3e:5a:00:0b';

/** A gratuitous ARP (a request whose sender and target are the same address) from `mac` for `ip4`. */
function isGarp(f: Buffer, mac: string, ip4: number[]): boolean {
  if (f.length < 42 || f.readUInt16BE(12) !== 0x0806 || f.readUInt16BE(20) !== 1) return false;
  const hex = [...f.subarray(22, 28)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  return hex === mac && f.subarray(28, 32).equals(Buffer.from(ip4)) && f.subarray(38, 42).equals(Buffer.from(ip4));
}

t.test('two hosts in namespaces on one pool bridge', { skip: why ?? false }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xenemu-run-'));
  const pool = netnsName('xp');
  const [nsA, nsB] = [netnsName(), netnsName()];
  const a = await startHost(t, { root, name: 'pa', memory: 384, pcpus: 1, netns: nsA, join: pool, address: '10.0.0.251/24', listen: `10.0.0.251:${PORT}` });
  const b = await startHost(t, { root, name: 'pb', memory: 384, pcpus: 1, netns: nsB, join: pool, address: '10.0.0.252/24', listen: `10.0.0.252:${PORT}` });
  // Whatever happens above, the bridge goes with the test (the hosts' teardowns release the rest).
  t.teardown(() => { ipQuiet(['link', 'del', pool]); });
  t.ok(netnsExists(nsA) && netnsExists(nsB), 'each host has its namespace');
  t.equal(ip(['netns', 'identify', String(a.hypervisorPid)]).trim(), nsA, "pa's hypervisor runs in it");
  t.ok(linkExists('vif0.0', nsA) && linkExists('peth0', nsA) && linkExists('xenbr0', nsA), "Domain-0's TAP vif0.0, peth0 and xenbr0 are in pa's namespace");

  // Whatever crosses the pool bridge, seen from a TAP of ours on it.
  const sniff = openTap(netnsName('xs'));
  t.teardown(() => sniff.close());
  ip(['link', 'set', sniff.name, 'master', pool, 'up']);
  const seen: Array<{ at: number; f: Buffer }> = [];
  sniff.onFrame((f) => { seen.push({ at: Date.now(), f }); });

  const ga = await netGuest(t, a, 'ga', `vif = ['mac=${GA_MAC},ip=10.0.0.11']`);
  const gb = await netGuest(t, b, 'gb', "vif = ['ip=10.0.0.12']");
  t.match(await ga.run('ping -c 3 -i 0.2 10.0.0.12'), /3 packets transmitted, 3 received/, 'ga (pa) pings gb (pb) across the pool');
  t.match(await gb.run('ping -c 2 -i 0.2 10.0.0.251'), /2 packets transmitted, 2 received/, "gb pings pa's namespace (its xenbr0's address)");

  // gb pings ga every 100 ms while ga moves from pa to pb.
  const from = gb.pty.text.length;
  gb.pty.write('ping -c 100 -i 0.1 10.0.0.11\r');
  await gb.pty.until(/icmp_seq=5 /, from, 10_000);
  const tMig = Date.now();
  const r = await xl(a, ['migrate', '--live', '-l', 'ga', `10.0.0.252:${PORT}`]);
  t.equal(r.code, 0, `xl migrate --live ga 10.0.0.252:${PORT} ${r.stderr.trim()}`);
  const s = JSON.parse(r.stdout) as { downtimeMs: number; targetDomid: number };
  await gb.pty.until(/100 packets transmitted, (\d+) received/, from, 30_000);
  const m = /100 packets transmitted, (\d+) received/.exec(gb.pty.text.slice(from))!;
  const lost = 100 - Number(m[1]);
  t.comment(`migration downtime ${s.downtimeMs.toFixed(0)} ms; ping every 100 ms lost ${lost} of 100`);
  t.ok(lost <= 5, `the ping lost at most a few packets (${lost})`);
  const garp = seen.find((x) => x.at >= tMig && isGarp(x.f, GA_MAC, [10, 0, 0, 11]));
  t.ok(garp, 'the restored ga announced 10.0.0.11 with a gratuitous ARP, seen on the pool bridge');
  t.notOk((await list(a)).some((x) => x.name === 'ga'), 'ga is gone from pa');
  t.equal((await list(b)).find((x) => x.name === 'ga')?.id, s.targetDomid, 'and runs on pb');
  const ga2 = await attachGuest(t, b, 'ga', s.targetDomid);
  t.match(await ga2.run('ping -c 2 -i 0.2 10.0.0.251'), /2 packets transmitted, 2 received/, "from pb it reaches pa's namespace");

  // The pool view, from the run root both hosts share.
  const v = JSON.parse((await a.xenemu('pool', '--json')).stdout) as {
    hosts: Array<{ name: string; pool: string; netns: string; listen: string; peers: Array<{ host: string; reachable: boolean }> }>;
    guests: Array<{ name: string; domid: number; host: string; state: string }>;
  };
  t.same(v.hosts.map((h) => [h.name, h.pool, h.netns, h.listen]).sort(),
    [['pa', pool, nsA, `10.0.0.251:${PORT}`], ['pb', pool, nsB, `10.0.0.252:${PORT}`]], 'xenemu pool lists both hosts, joined');
  t.same(v.hosts.find((h) => h.name === 'pa')?.peers, [{ host: 'pb', listen: `10.0.0.252:${PORT}`, reachable: true, error: '' }],
    'pa reaches pb over the pool network');
  t.same(v.guests.map((g) => [g.name, g.domid, g.host]).sort(), [['ga', s.targetDomid, 'pb'], ['gb', gb.id, 'pb']],
    'and every guest with its host');
  t.match((await a.xenemu('pool')).stdout, /^HOST\s+NETNS\s+POOL\s+LISTEN\s+STATE\s+PEERS\n.*\n.*\n\nNAME\s+ID\s+HOST\s+STATE\n/, 'the table');

  // A name a peer runs is refused.
  const cfg = join(a.rundir, 'gb.cfg');
  writeFileSync(cfg, 'name = "gb"\nmemory = 32\n');
  const c = await xl(a, ['create', cfg]);
  t.not(c.code, 0, 'xl create gb on pa fails');
  t.match(c.stderr, /domain with name "gb" already exists \(on host pb of the pool\)/, c.stderr.trim());
  t.notOk((await list(a)).some((x) => x.name === 'gb'), 'and made no domain');

  // SIGKILL of pb's hypervisor: its namespace and veth go; pa and the pool bridge stay.
  const vethB = JSON.parse(readFileSync(join(b.rundir, 'net.json'), 'utf8')).veth as string;
  process.kill(readHostRecord(b.rundir)!.pids.hypervisor, 'SIGKILL');
  await waitFor(() => !netnsExists(nsB) && !linkExists(vethB), 5000, "pb's namespace and veth gone");
  t.pass("pb's namespace and its veth are gone after SIGKILL of its hypervisor");
  t.ok(linkExists(pool), 'the pool bridge stays while pa is on it');
  sniff.close();
  await b.down();
  await a.down();
  t.notOk(netnsExists(nsA), "xenemu down removes pa's namespace");
  t.notOk(linkExists(pool), 'and the pool bridge, empty now');
  t.same(ip(['-br', 'link']).split('\n').filter((l) => /^xv/.test(l)), [], 'no veth of ours is left');
});

t.test('xenemu up --netns into a namespace that exists: it stays at down, what xenemu made in it goes', { skip: why ?? false }, async (t) => {
  const ns = netnsName();
  ip(['netns', 'add', ns]);
  t.teardown(() => { ipQuiet(['netns', 'del', ns]); });
  const h = await startHost(t, { memory: 256, pcpus: 1, netns: ns, address: '10.9.0.1/24' });
  t.ok(linkExists('vif0.0', ns) && linkExists('xenbr0', ns), "Domain-0's TAP and xenbr0 are in it");
  t.match(ip(['-br', 'addr', 'show', 'xenbr0'], ns), /10\.9\.0\.1\/24/, 'xenbr0 has the --address');
  await t.rejects(h.xenemu('up', '--name', 'other', '--netns', ns), /network namespace .* has a xenbr0 already/, 'a second host in it is refused');
  await h.down();
  t.ok(netnsExists(ns), 'the namespace stays: xenemu did not make it');
  t.notOk(linkExists('xenbr0', ns) || linkExists('vif0.0', ns), 'its xenbr0 and the TAP are gone');
  await t.rejects(h.xenemu('up', '--name', 'x', '--join', 'br9'), /--join and --address need --netns/, '--join alone is refused');
});

t.test('SIGKILL of the hypervisor of the last host on a pool bridge leaves nothing', { skip: why ?? false }, async (t) => {
  const ns = netnsName();
  const pool = netnsName('xp');
  t.teardown(() => { ipQuiet(['link', 'del', pool]); });
  const h = await startHost(t, { memory: 256, pcpus: 1, netns: ns, join: pool, address: '10.9.0.1/24' });
  const veth = (JSON.parse(readFileSync(join(h.rundir, 'net.json'), 'utf8')) as { veth: string }).veth;
  t.ok(netnsExists(ns) && linkExists(veth) && linkExists(pool), 'namespace, veth and pool bridge are there');
  process.kill(h.hypervisorPid, 'SIGKILL');
  // Domain-0 reaps the host from inside the namespace, reaching the pool bridge through the descriptor it inherited.
  await waitFor(() => !netnsExists(ns) && !linkExists(veth) && !linkExists(pool), 5000, 'namespace, veth and pool bridge gone');
  t.pass('namespace, veth and pool bridge are gone, with no xenemu command run');
});
