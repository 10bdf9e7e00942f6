// Quotas with Xen's defaults, per domain, Domain-0 exempt (xenstored
// defaults: 1000 nodes, 128 watches, 10 transactions, 2048-byte values,
// 20 outstanding requests, 5 permissions per node).
import t from 'tap';
import { startXenstored, code, home } from '../helpers/xenstored.js';



t.test('node count quota: ENOSPC at 1000 owned nodes, nothing half-created', async (t) => {
  const xs = await startXenstored(t);
  const dom0 = await xs.connect();
  await home(dom0, 5);
  const g = (await xs.guest(5)).client;
  // The home node counts: 999 more fit.
  const batch: Array<Promise<string>> = [];
  for (let i = 0; i < 999; i++) batch.push(code(g.write(`n/${i}`, '')));
  const results = await Promise.all(batch);
  // n itself is one node: so 998 of the 999 fit.
  t.equal(results.filter((r) => r === 'OK').length, 998);
  t.equal(results.filter((r) => r === 'ENOSPC').length, 1);
  t.match(await dom0.control('quota', '5'), /nodes 1000\/1000/);
  t.equal(await code(g.write('deep/a/b/c', '')), 'ENOSPC', 'a path needing several nodes');
  t.equal(await code(g.read('deep')), 'ENOENT', 'no ancestor was left behind');
  await g.rm('n/0');
  t.equal(await code(g.write('again', '')), 'OK', 'freed nodes can be used again');
  await dom0.write('/local/domain/5/by-dom0', 'Domain-0 is exempt');
  t.equal(await dom0.control('check'), 'OK');
});

t.test('value size, permissions, watches, transactions', async (t) => {
  const xs = await startXenstored(t);
  const dom0 = await xs.connect();
  await home(dom0, 5);
  const g = (await xs.guest(5)).client;
  t.equal(await code(g.write('v', 'x'.repeat(2048))), 'OK');
  t.equal(await code(g.write('v', 'x'.repeat(2049))), 'ENOSPC');
  t.equal(await code(dom0.write('/local/domain/5/v', 'x'.repeat(3000))), 'OK', 'Domain-0 exempt');

  t.equal(await code(g.setPerms('v', ['n5', 'r1', 'r2', 'r3', 'r4'])), 'OK');
  t.equal(await code(g.setPerms('v', ['n5', 'r1', 'r2', 'r3', 'r4', 'r6'])), 'ENOSPC');

  const watchResults = await Promise.all(Array.from({ length: 129 }, (_, i) => code(g.watch(`w${i}`, 't', () => undefined))));
  t.equal(watchResults.filter((r) => r === 'OK').length, 128);
  t.equal(watchResults[128], 'E2BIG');

  const txs: number[] = [];
  for (let i = 0; i < 10; i++) txs.push(await g.transactionStart());
  t.equal(await code(g.transactionStart()), 'ENOSPC');
  await g.transactionEnd(txs[0]!, false);
  t.equal(await code(g.transactionStart()), 'OK', 'ending one frees a slot');

  // Domain-0 has none of these limits.
  const dtx: number[] = [];
  for (let i = 0; i < 20; i++) dtx.push(await dom0.transactionStart());
  for (const x of dtx) await dom0.transactionEnd(x, false);
  for (let i = 0; i < 200; i++) await dom0.watch(`/dw${i}`, 't', () => undefined);
});

t.test('a guest\'s transaction touches at most 1024 nodes (transaction-nodes): ENOSPC, then its commit fails', async (t) => {
  const xs = await startXenstored(t);
  const dom0 = await xs.connect();
  await home(dom0, 5);
  const g = (await xs.guest(5)).client;
  await Promise.all(Array.from({ length: 1100 }, (_, i) => dom0.write(`/local/domain/5/q/n${i}`, 'v')));
  const tx = await g.transactionStart();
  // A READ of a node that exists touches that node alone.
  let ok = 0;
  let err = 'OK';
  for (let i = 0; i < 1100 && err === 'OK'; i++) {
    err = await code(g.read(`q/n${i}`, tx));
    if (err === 'OK') ok++;
  }
  t.equal(err, 'ENOSPC', 'past the quota');
  t.equal(ok, 1024, '1024 nodes touched');
  t.equal(await code(g.transactionEnd(tx, true)), 'ENOMEM', 'the commit fails (Xen\'s trans->fail)');
  const tx0 = await dom0.transactionStart();
  for (let i = 0; i < 1100; i++) await dom0.read(`/local/domain/5/q/n${i}`, tx0);
  t.equal(await code(dom0.transactionEnd(tx0, true)), 'OK', 'Domain-0 is exempt');
});

t.test('quota counts transactions\' creations', async (t) => {
  const xs = await startXenstored(t, []);
  const dom0 = await xs.connect();
  await home(dom0, 5);
  const g = (await xs.guest(5)).client;
  for (let i = 0; i < 900; i++) await g.write(`a${i}`, '');
  const tx = await g.transactionStart();
  let err = 'OK';
  for (let i = 0; i < 200 && err === 'OK'; i++) err = await code(g.write(`t${i}`, '', tx));
  t.equal(err, 'ENOSPC', 'writes inside a transaction count against the quota');
  await g.transactionEnd(tx, false);
  t.match(await dom0.control('quota', '5'), /nodes 901\/1000/);
});
