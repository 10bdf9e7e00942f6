// Watches (xenstore.txt WATCH/UNWATCH/RESET_WATCHES, @introduceDomain and
// @releaseDomain).
import t from 'tap';
import { startXenstored, code } from '../helpers/xenstored.js';
import type { XsClient } from '../../shared/xenstore/client.js';
import { waitFor } from '../helpers/host.js';


/** Events reach a client before the reply to a later request (one stream). */
async function settle(c: XsClient): Promise<void> {
  await c.directory('/');
}

t.test('initial event, node and subtree changes, rm', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const ev: Array<[string, string]> = [];
  await c.watch('/w', 'T1', (p, tok) => ev.push([p, tok]));
  await settle(c);
  t.same(ev, [['/w', 'T1']], 'initial event right away, even for an absent node');
  ev.length = 0;
  await c.write('/w', '');
  await c.write('/w/a/b', 'x');
  await c.write('/wx', 'not below /w');
  await c.mkdir('/w/m');
  await c.setPerms('/w/a', ['n0']);
  await settle(c);
  t.same(ev.map((e) => e[0]), ['/w', '/w/a/b', '/w/m', '/w/a']);
  ev.length = 0;

  // A watch below a removed subtree hears of it under its own name.
  const deep: string[] = [];
  await c.watch('/w/a/b', 'DEEP', (p) => deep.push(p));
  await settle(c);
  deep.length = 0;
  await c.rm('/w/a');
  await settle(c);
  t.same(ev.map((e) => e[0]), ['/w/a'], 'ancestor watch gets the removed node');
  t.same(deep, ['/w/a/b'], 'descendant watch gets its own path');
});

t.test('relative watches report relative paths; unwatch; errors', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const ev: string[] = [];
  await c.watch('device', 'rel', (p) => ev.push(p));
  await c.write('/local/domain/0/device/vbd', '1');
  await settle(c);
  t.same(ev, ['device', 'device/vbd']);
  t.equal(await code(c.watch('device', 'rel', () => undefined)), 'EEXIST', 'same path and token twice');
  await c.unwatch('device', 'rel');
  ev.length = 0;
  await c.write('/local/domain/0/device/vif', '1');
  await settle(c);
  t.same(ev, [], 'no events after unwatch');
  t.equal(await code(c.unwatch('device', 'rel')), 'ENOENT');
  t.equal(await code(c.watch('/bad//path', 'x', () => undefined)), 'EINVAL');
});

t.test('reset_watches removes every watch of the connection', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const ev: string[] = [];
  await c.watch('/r1', 'a', (p) => ev.push(p));
  await c.watch('/r2', 'b', (p) => ev.push(p));
  await c.resetWatches();
  ev.length = 0;
  await c.write('/r1', 'x');
  await c.write('/r2', 'x');
  await settle(c);
  t.same(ev, []);
  t.match(await c.control('stats'), /^watches 0$/m);
});

t.test('@introduceDomain and @releaseDomain', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const ev: string[] = [];
  await c.watch('@introduceDomain', 'i', (p) => ev.push(p));
  await c.watch('@releaseDomain', 'r', (p) => ev.push(p));
  await settle(c);
  ev.length = 0;
  await xs.guest(5);
  await c.release(5);
  await settle(c);
  t.same(ev, ['@introduceDomain', '@releaseDomain']);
});

t.test('watch events from other connections, and closing connections', async (t) => {
  const xs = await startXenstored(t);
  const writer = await xs.connect();
  const watchers = await Promise.all([1, 2, 3].map(() => xs.connect()));
  const seen = watchers.map(() => [] as string[]);
  await Promise.all(watchers.map((w, i) => w.watch('/shared', `w${i}`, (p) => seen[i]!.push(p))));
  await Promise.all(watchers.map(settle));
  watchers[1]!.close();
  await writer.write('/shared/k', 'v');
  await settle(watchers[0]!); await settle(watchers[2]!);
  t.same(seen[0], ['/shared', '/shared/k']);
  t.same(seen[2], ['/shared', '/shared/k']);
  // The close reaches the daemon on its own socket: wait for it to be handled.
  const stats = await waitFor(async () => {
    const s = await writer.control('stats');
    return /^watches 2$/m.test(s) && s;
  }, 5000, 'the closed connection\'s watches dropped');
  t.match(stats, /^watches 2$/m, 'a closed connection\'s watches are gone, the others\' stay');
});
