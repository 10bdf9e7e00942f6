// A restart, including after SIGKILL, loses no acknowledged write: the tree,
// permissions and introduced domains come back (persist.ts).
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startXenstored, code } from '../helpers/xenstored.js';
import { waitFor } from '../helpers/host.js';


t.test('tree, perms, transactions and domains survive SIGKILL', async (t) => {
  const xs = await startXenstored(t);
  let c = await xs.connect();
  await c.write('/d/a', 'alpha');
  await c.write('/d/bin', Buffer.from([0, 255, 10]));
  await c.setPerms('/d/a', ['n3', 'r4']);
  await c.write('/d/gone', 'x');
  await c.rm('/d/gone');
  const tx = await c.transactionStart();
  await c.write('/tx/1', 'one', tx);
  await c.write('/tx/2', 'two', tx);
  await c.transactionEnd(tx, true);
  const open = await c.transactionStart();
  await c.write('/tx/uncommitted', 'no', open);
  await c.mkdir('/local/domain/5');
  await c.setPerms('/local/domain/5', ['n5']);
  const g = await xs.guest(5);
  await g.client.write('data/before', 'kill');

  await xs.kill();
  await t.rejects(c.read('/d/a'), 'the old connection fails promptly, it does not hang');
  await xs.restart();
  c = await xs.connect();
  t.equal(await c.readString('/d/a'), 'alpha');
  t.same([...(await c.read('/d/bin'))], [0, 255, 10]);
  t.same(await c.getPerms('/d/a'), ['n3', 'r4']);
  t.equal(await code(c.read('/d/gone')), 'ENOENT');
  t.same([await c.readString('/tx/1'), await c.readString('/tx/2')], ['one', 'two']);
  t.equal(await code(c.read('/tx/uncommitted')), 'ENOENT', 'an open transaction is not persisted');
  t.equal(await c.isDomainIntroduced(5), true, 'introduced domains come back');
  t.equal(await g.client.readString('data/before'), 'kill', 'the guest ring is served again');
  await g.client.write('data/after', 'restart');
  t.equal(await c.readString('/local/domain/5/data/after'), 'restart');
  t.equal(await code(g.client.read('/d/a')), 'EACCES', 'permissions enforced after restart');
  t.equal(await c.control('check'), 'OK');
});

t.test('every acknowledged write of a busy writer survives a kill', async (t) => {
  const xs = await startXenstored(t);
  const writers = await Promise.all([1, 2, 3].map(() => xs.connect()));
  const acked: string[] = [];
  let stop = false;
  const loops = writers.map(async (w, k) => {
    for (let i = 0; !stop; i++) {
      const p = `/busy/w${k}/n${i}`;
      try { await w.write(p, String(i)); acked.push(p); } catch { return; }
    }
  });
  // Kill in the middle of the stream: once a few hundred writes were acknowledged.
  await waitFor(() => acked.length >= 300, 20_000, '300 acknowledged writes');
  await xs.kill();
  stop = true;
  await Promise.all(loops);
  t.ok(acked.length >= 300, `${acked.length} writes acknowledged before the kill`);
  await xs.restart();
  const c = await xs.connect();
  const missing: string[] = [];
  for (const p of acked) if ((await c.tryRead(p)) === null) missing.push(p);
  t.same(missing, [], 'no acknowledged write lost');
});

t.test('snapshot compaction and restart', async (t) => {
  const xs = await startXenstored(t, ['--compact-bytes', '65536']);
  const c = await xs.connect();
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 400 }, (_, i) => c.write(`/snap/k${i}`, `r${round}-${'x'.repeat(50)}`)));
  }
  await c.rm('/snap/k0');
  t.ok(existsSync(join(xs.stateDir, 'xenstored.snap')), 'a snapshot was written');
  await xs.kill();
  await xs.restart();
  const c2 = await xs.connect();
  t.equal(await c2.tryRead('/snap/k0'), null);
  t.equal(await c2.readString('/snap/k399'), `r4-${'x'.repeat(50)}`);
  t.equal((await c2.directory('/snap')).length, 399);
});

t.test('SIGTERM stops cleanly and removes the socket', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  await c.write('/x', '1');
  t.equal(await xs.stop(), 0);
  t.notOk(existsSync(xs.socketPath), 'socket removed');
  await xs.restart();
  t.equal(await (await xs.connect()).readString('/x'), '1');

});
