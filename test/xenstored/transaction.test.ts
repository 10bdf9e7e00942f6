// Transactions (xenstore.txt TRANSACTION_START/END; transaction.ts essay).
import t from 'tap';
import { startXenstored, code } from '../helpers/xenstored.js';


t.test('isolation: own writes visible, others not until commit', async (t) => {
  const xs = await startXenstored(t);
  const a = await xs.connect();
  const b = await xs.connect();
  await a.write('/t/x', 'old');
  const tx = await a.transactionStart();
  await a.write('/t/x', 'new', tx);
  await a.write('/t/y/z', 'created', tx);
  t.equal(await a.readString('/t/x', tx), 'new', 'sees its own write');
  t.same(await a.directory('/t', tx), ['x', 'y'], 'sees its own new node');
  t.equal(await b.readString('/t/x'), 'old', 'others do not');
  t.equal(await code(b.read('/t/y/z')), 'ENOENT');
  await a.rm('/t/x', tx);
  t.equal(await code(a.read('/t/x', tx)), 'ENOENT', 'sees its own rm');
  t.equal(await b.readString('/t/x'), 'old');
  await a.transactionEnd(tx, true);
  t.equal(await code(b.read('/t/x')), 'ENOENT', 'committed rm');
  t.equal(await b.readString('/t/y/z'), 'created', 'committed create');
  t.equal(await b.control('check'), 'OK');
});

t.test('a transaction does not see another transaction\'s writes', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  await c.write('/t/v', '0');
  const t1 = await c.transactionStart();
  const t2 = await c.transactionStart();
  t.not(t1, t2);
  await c.write('/t/v', '1', t1);
  t.equal(await c.readString('/t/v', t2), '0');
  await c.transactionEnd(t1, true);
  t.equal(await code(c.transactionEnd(t2, true)), 'EAGAIN', 't2 based itself on a value t1 changed');
});

t.test('conflicting commits fail with EAGAIN', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  await c.write('/t/v', '0');
  const t1 = await c.transactionStart();
  const t2 = await c.transactionStart();
  t.equal(await c.readString('/t/v', t1), '0');
  await c.write('/t/v', 'from-t1', t1);
  t.equal(await c.readString('/t/v', t2), '0');
  await c.write('/t/v', 'from-t2', t2);
  await c.transactionEnd(t1, true);
  t.equal(await code(c.transactionEnd(t2, true)), 'EAGAIN');
  t.equal(await c.readString('/t/v'), 'from-t1', 'the failed commit changed nothing');

  // A plain write between read and commit conflicts too.
  const t3 = await c.transactionStart();
  await c.readString('/t/v', t3);
  await c.write('/t/w', 'x', t3);
  await c.write('/t/v', 'outside');
  t.equal(await code(c.transactionEnd(t3, true)), 'EAGAIN');
  t.equal(await code(c.read('/t/w')), 'ENOENT');

  // Disjoint transactions both commit.
  await c.write('/d/a', ''); await c.write('/d/b', '');
  const t4 = await c.transactionStart();
  const t5 = await c.transactionStart();
  await c.write('/d/a', '4', t4);
  await c.write('/d/b', '5', t5);
  await c.transactionEnd(t4, true);
  await c.transactionEnd(t5, true);
  t.same([await c.readString('/d/a'), await c.readString('/d/b')], ['4', '5']);
});

t.test('retry loop makes concurrent increments exact', async (t) => {
  const xs = await startXenstored(t);
  const clients = await Promise.all([1, 2, 3, 4].map(() => xs.connect()));
  await clients[0]!.write('/counter', '0');
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < 25; i++) {
      await c.transaction(async (tx) => {
        const v = Number(await c.readString('/counter', tx));
        await c.write('/counter', String(v + 1), tx);
      });
    }
  }));
  t.equal(await clients[0]!.readString('/counter'), '100');
});

t.test('abort discards everything; ids and errors', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const tx = await c.transactionStart();
  await c.write('/gone/a', '1', tx);
  await c.setPerms('/gone', ['r0'], tx);
  await c.transactionEnd(tx, false);
  t.equal(await code(c.read('/gone')), 'ENOENT');
  t.equal(await code(c.transactionEnd(tx, true)), 'ENOENT', 'ended transaction is gone');
  t.equal(await code(c.read('/x', 12345)), 'ENOENT', 'unknown tx id');
  const t2 = await c.transactionStart();
  t.equal(await code(c.request(6 /* TRANSACTION_START */, Buffer.from('\0'), t2)), 'EBUSY', 'no nesting');
  await c.transactionEnd(t2, false);
});

t.test('watches fire for a transaction only when it commits', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const w = await xs.connect();
  const events: string[] = [];
  await w.watch('/wt', 'tok', (p) => events.push(p));
  await w.directory('/'); // the initial event has been delivered before this reply
  events.length = 0;
  const tx = await c.transactionStart();
  await c.write('/wt/a', '1', tx);
  await c.write('/wt/b', '2', tx);
  await w.directory('/');
  t.same(events, [], 'nothing before commit');
  await c.transactionEnd(tx, true);
  await w.directory('/');
  t.same(events.sort(), ['/wt/a', '/wt/b']);
  events.length = 0;
  const t2 = await c.transactionStart();
  await c.write('/wt/c', '3', t2);
  await c.transactionEnd(t2, false);
  await w.directory('/');
  t.same(events, [], 'nothing for an abort');
});
