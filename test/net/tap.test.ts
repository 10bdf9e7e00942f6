// openTap (shared/net/tap.ts, shared/native/tap.cc) in a throwaway network
// namespace: the kernel answers an ARP request written into the TAP, and the
// answer is read from it; the TAP goes with its descriptor; the errors say
// why.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openTap } from '../../shared/net/tap.js';
import { inNetns, ip, linkExists, netnsPath } from '../../shared/net/netns.js';
import { netnsUnavailable, throwawayNetns } from './netns_helpers.js';
import { DIST } from '../helpers/host.js';

const why = netnsUnavailable();

const arpRequest = (sha: number[], spa: number[], tpa: number[]) => Buffer.from([
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...sha, 0x08, 0x06,
  0, 1, 8, 0, 6, 4, 0, 1, ...sha, ...spa, 0, 0, 0, 0, 0, 0, ...tpa,
]);

t.test('a TAP in a namespace: a frame written reaches the kernel, its answer is read', { skip: why ?? false }, async (t) => {
  const ns = throwawayNetns(t);
  const tap = inNetns(netnsPath(ns), () => openTap('xt0'));
  t.teardown(() => tap.close());
  t.equal(tap.name, 'xt0');
  t.ok(linkExists('xt0', ns), 'the interface is in the namespace');
  t.notOk(linkExists('xt0'), 'and not in ours');
  ip(['addr', 'add', '10.77.0.1/24', 'dev', 'xt0'], ns);
  ip(['link', 'set', 'xt0', 'up'], ns);
  const mine = [0x02, 0, 0, 0, 0, 0x02];
  const reply = new Promise<Buffer>((resolve) => tap.onFrame((f) => {
    // ARP (0x0806), op 2, to us: the kernel's answer (IPv6 chatter and the like are skipped).
    if (f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2) resolve(f);
  }));
  t.ok(tap.write(arpRequest(mine, [10, 77, 0, 2], [10, 77, 0, 1])), 'an ARP request for 10.77.0.1 written');
  const f = await reply;
  t.same([...f.subarray(0, 6)], mine, 'the reply is addressed to the asker');
  t.same([...f.subarray(28, 32)], [10, 77, 0, 1], 'from 10.77.0.1');
  t.same([...f.subarray(32, 38)], mine, 'to its MAC');
  t.ok(tap.stats.rx >= 1 && tap.stats.tx === 1, `counted (${tap.stats.rx} read, ${tap.stats.tx} written)`);
  tap.close();
  t.notOk(linkExists('xt0', ns), 'the TAP is gone with its descriptor');
  t.notOk(tap.write(Buffer.alloc(60)), 'a write after close is refused');
});

t.test('openTap errors say why', { skip: why ?? false }, async (t) => {
  t.throws(() => openTap('a-name-longer-than-15'), /tap a-name-longer-than-15: .*longer than 15/);
  // An unprivileged process: /dev/net/tun refuses it, or TUNSETIFF does.
  const code = `import('${join(DIST, 'shared', 'net', 'tap.js')}').then((m) => { try { m.openTap('xt1'); } catch (e) { console.log(e.message); } })`;
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', code], { encoding: 'utf8' });
  t.notOk(r.error, `setpriv runs (${r.error?.message ?? "ok"})`);
  t.match(r.stdout, /tap xt1: not permitted: creating a TAP needs CAP_NET_ADMIN/, r.stdout.trim() || r.stderr.trim());
});
