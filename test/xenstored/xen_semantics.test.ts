// What Xen 4.17's C xenstored answers, held here without it: each test names
// one promise of docs/xenstored.md ("Xen's answers") and states Xen's answer
// literally. xen_c_lockstep.test.ts checks the same sequences against the C
// daemon itself where it can run; these hold them where it cannot, and cover
// what it cannot run (guests).
import t from 'tap';
import { startXenstored, code, home } from '../helpers/xenstored.js';
import { RawXs, type RawMsg } from '../helpers/xs_raw.js';
import {
  XS_READ, XS_WRITE, XS_DIRECTORY, XS_DIRECTORY_PART, XS_GET_PERMS, XS_RM, XS_WATCH, XS_WATCH_EVENT,
  XS_TRANSACTION_START, XS_TRANSACTION_END, XS_SET_TARGET, XS_RELEASE, XS_RESUME, XS_ERROR, XS_GET_DOMAIN_PATH,
} from '../../shared/abi/io/xs_wire.js';

/** Replies and events on a raw connection up to the answer of a ping sent now (everything caused so far). */
async function drain(c: RawXs): Promise<RawMsg[]> {
  c.send(XS_GET_DOMAIN_PATH, '0\0', 0xfeed);
  const out: RawMsg[] = [];
  for (;;) {
    const m = await c.next();
    if (!m) throw new Error('connection closed');
    if (m.reqId === 0xfeed && m.type === XS_GET_DOMAIN_PATH) return out;
    out.push(m);
  }
}

const latin1 = (m: RawMsg): string => m.payload.toString('latin1');

t.test('transactions read a stable view: a value written outside after first sight does not show', async (t) => {
  const xs = await startXenstored(t);
  const c0 = await xs.connect();
  const c1 = await xs.connect();
  await c1.write('/a', 'old');
  const tx = await c0.transactionStart();
  t.equal(await c0.readString('/a', tx), 'old');
  await c1.write('/a', 'new');
  t.equal(await c0.readString('/a', tx), 'old', 'the transaction still reads what it first read');
  t.equal(await c0.readString('/a'), 'new', 'outside it, the new value');
  t.equal(await code(c0.transactionEnd(tx, true)), 'EAGAIN');
});

t.test('transactions read a stable view: GET_PERMS after an outside RM gives the old perms', async (t) => {
  const xs = await startXenstored(t);
  const c0 = await xs.connect();
  const c1 = await xs.connect();
  await c1.write('/p', 'x');
  await c1.setPerms('/p', ['n0', 'r5']);
  const tx = await c0.transactionStart();
  t.same(await c0.getPerms('/p', tx), ['n0', 'r5']);
  await c1.rm('/p');
  t.same(await c0.getPerms('/p', tx), ['n0', 'r5'], 'perms as first seen');
  t.equal(await c0.readString('/p', tx), 'x', 'and the value');
  t.equal(await code(c0.getPerms('/p')), 'ENOENT', 'gone outside');
  await c0.transactionEnd(tx, false);
});

t.test('transactions read a stable view: a node absent at first sight stays absent', async (t) => {
  const xs = await startXenstored(t);
  const c0 = await xs.connect();
  const c1 = await xs.connect();
  const tx = await c0.transactionStart();
  t.equal(await code(c0.read('/late', tx)), 'ENOENT');
  await c1.write('/late', 'here');
  t.equal(await code(c0.read('/late', tx)), 'ENOENT', 'READ');
  t.equal(await code(c0.getPerms('/late', tx)), 'ENOENT', 'GET_PERMS');
  // Reading /late looked at its parent (for EACCES against ENOENT): / is as first seen too.
  t.same(await c0.directory('/', tx), ['tool'], 'its parent as first seen');
  t.equal(await code(c0.transactionEnd(tx, true)), 'EAGAIN');
});

t.test('transactions read a stable view: DIRECTORY adds no outside children after first sight', async (t) => {
  const xs = await startXenstored(t);
  const c0 = await xs.connect();
  const c1 = await xs.connect();
  await c1.write('/d/x', '1');
  const tx = await c0.transactionStart();
  t.same(await c0.directory('/d', tx), ['x']);
  await c1.write('/d/y', '2');
  await c1.rm('/d/x');
  t.same(await c0.directory('/d', tx), ['x'], 'no outside child added, none removed');
  t.equal(await code(c0.read('/d/x', tx)), 'ENOENT', 'a child never touched is read live');
  await c0.write('/d/z', '3', tx);
  t.same(await c0.directory('/d', tx), ['x', 'z'], 'its own child added to its copy');
  t.same(await c0.directory('/d'), ['y'], 'outside, the tree as it is');
  t.equal(await code(c0.transactionEnd(tx, true)), 'EAGAIN');
  t.same(await c1.directory('/d'), ['y'], 'nothing of the transaction committed');
  t.equal(await c1.control('check'), 'OK');
});

t.test('transactions read a stable view: a large directory held by a transaction is copied only when it changes', async (t) => {
  const xs = await startXenstored(t);
  const c0 = await xs.connect();
  const c1 = await xs.connect();
  const names = Array.from({ length: 300 }, (_, i) => `n${i}`);
  await Promise.all(names.map((n) => c1.write(`/big/${n}`, '')));
  const tx1 = await c0.transactionStart();
  const tx2 = await c0.transactionStart();
  t.same(await c0.directory('/big', tx1), names);
  t.same(await c0.directory('/big', tx2), names);
  await c1.write('/big/extra', '');
  await c0.write('/big/mine', '', tx2);
  t.same(await c0.directory('/big', tx1), names, 'the first transaction: as first seen');
  t.same(await c0.directory('/big', tx2), [...names, 'mine'], 'the second: its own child only');
  t.same(await c1.directory('/big'), [...names, 'extra'], 'the tree: the outside child only');
  await c0.transactionEnd(tx1, false);
  t.equal(await code(c0.transactionEnd(tx2, true)), 'EAGAIN');
  t.equal(await c1.control('check'), 'OK');
});

t.test('watch tokens are bytes: a token that is not UTF-8 comes back unchanged in every event', async (t) => {
  const xs = await startXenstored(t);
  const w = await RawXs.open(xs.socketPath);
  t.teardown(() => w.close());
  const writer = await xs.connect();
  const token = Buffer.from('t\xff\x80', 'latin1');
  w.send(XS_WATCH, Buffer.concat([Buffer.from('/tok\0'), token, Buffer.from([0])]), 1);
  await writer.write('/tok', 'v');
  await writer.write('/tok/below', 'v');
  w.send(XS_WATCH, Buffer.concat([Buffer.from('@releaseDomain\0'), token, Buffer.from([0])]), 2);
  const events = (await drain(w)).filter((m) => m.type === XS_WATCH_EVENT);
  const want = (p: string): Buffer => Buffer.concat([Buffer.from(`${p}\0`), token, Buffer.from([0])]);
  t.same(events.map((m) => m.payload.toString('hex')), ['/tok', '/tok', '/tok/below', '@releaseDomain'].map((p) => want(p).toString('hex')),
    'initial events and change events carry the token byte for byte');
});

t.test('paths with bytes outside [A-Za-z0-9-/_@] are EINVAL, whatever their encoding', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  for (const [type, payload] of [
    [XS_WRITE, Buffer.from('/bad\xff\0v', 'latin1')],
    [XS_READ, Buffer.from('/caf\xc3\xa9\0', 'latin1')],
    [XS_WATCH, Buffer.from('/bad\xff\0tok\0', 'latin1')],
    [XS_RM, Buffer.from('/sp ace\0', 'latin1')],
  ] as const) {
    const m = await c.call(type, payload);
    t.same([m.type, latin1(m)], [XS_ERROR, 'EINVAL\0'], payload.toString('hex'));
  }
  const m = await c.call(XS_WRITE, Buffer.from('/bin\0\xff\x00\xc3\xa9\x80', 'latin1'));
  t.equal(m.type, XS_WRITE);
  const r = await c.call(XS_READ, '/bin\0');
  t.equal(r.payload.toString('hex'), 'ff00c3a980', 'values are bytes too');
});

t.test('SET_PERMS on @introduceDomain/@releaseDomain decides who gets those events', async (t) => {
  const xs = await startXenstored(t);
  const dom0 = await xs.connect();
  for (const d of [5, 6]) await home(dom0, d);
  const g5 = await xs.guest(5);
  const g6 = await xs.guest(6);
  const heard = { dom0: [] as string[], g5: [] as string[], g6: [] as string[] };
  await dom0.watch('@introduceDomain', 'i', (p) => heard.dom0.push(p));
  await dom0.watch('@releaseDomain', 'r', (p) => heard.dom0.push(p));
  await g5.client.watch('@introduceDomain', 'i', (p) => heard.g5.push(p));
  await g5.client.watch('@releaseDomain', 'r', (p) => heard.g5.push(p));
  await g6.client.watch('@introduceDomain', 'i', (p) => heard.g6.push(p));
  // A round trip on each connection: events queued before its reply arrive before it.
  const sync = async (): Promise<void> => { await dom0.directory('/'); await g5.client.getDomainPath(5); await g6.client.getDomainPath(6); };
  await sync();
  heard.dom0.length = heard.g5.length = heard.g6.length = 0; // the initial events

  await xs.guest(7);
  await sync();
  t.same(heard, { dom0: ['@introduceDomain'], g5: [], g6: [] }, 'by default only Domain-0 hears');

  t.equal(await code(g5.client.setPerms('@introduceDomain', ['n5'])), 'EACCES', 'a guest may not take them');
  t.equal(await code(dom0.setPerms('@other', ['n0'])), 'EINVAL', 'no other special node');
  t.equal(await code(dom0.getPerms('@introduceDomain')), 'EINVAL', 'GET_PERMS: not a node name (Xen 4.17)');
  await dom0.setPerms('@introduceDomain', ['n0', 'r5']);
  await dom0.setPerms('@releaseDomain', ['r0']);
  heard.dom0.length = 0;
  await xs.guest(8);
  await dom0.release(7);
  await sync();
  t.same(heard, { dom0: ['@introduceDomain', '@releaseDomain'], g5: ['@introduceDomain', '@releaseDomain'], g6: [] },
    'r5 lets 5 hear of introductions; r0 as everyone\'s default lets every guest hear of releases');

  // Kept across a restart: the guests' rings come back with the daemon,
  // their watches (connection state) do not.
  await xs.kill();
  await xs.restart();
  await g5.client.watch('@introduceDomain', 'i2', (p) => heard.g5.push(p));
  await g6.client.watch('@introduceDomain', 'i2', (p) => heard.g6.push(p));
  await g5.client.getDomainPath(5);
  await g6.client.getDomainPath(6);
  heard.dom0.length = heard.g5.length = heard.g6.length = 0;
  await xs.guest(9);
  await g5.client.getDomainPath(5);
  await g6.client.getDomainPath(6);
  t.same([heard.g5, heard.g6], [['@introduceDomain'], []], 'after a restart, 5 still hears of introductions, 6 does not');
});

t.test('DIRECTORY_PART with an offset past the end returns the generation and an empty list', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  await c.call(XS_WRITE, '/dp/a\x001');
  await c.call(XS_WRITE, '/dp/bb\x002');
  const all = await c.call(XS_DIRECTORY_PART, '/dp\x000\x00');
  const gen = latin1(all).split('\0')[0]!;
  t.match(gen, /^\d+$/, 'a generation first');
  t.equal(latin1(all), `${gen}\0a\0bb\0\0`, 'generation, NUL, children each NUL-terminated, one more NUL at the end');
  t.equal(latin1(await c.call(XS_DIRECTORY_PART, '/dp\x002\x00')), `${gen}\0bb\0\0`, 'from a byte offset');
  for (const off of ['5', '6', '4294967295']) {
    const m = await c.call(XS_DIRECTORY_PART, `/dp\x00${off}\x00`);
    t.same([m.type, latin1(m)], [XS_DIRECTORY_PART, `${gen}\0\0`], `offset ${off}: the generation and the empty list`);
  }
  const leaf = await c.call(XS_DIRECTORY_PART, '/dp/a\x000\x00');
  t.match(latin1(leaf), /^\d+\0\0$/, 'a node without children: the empty list');
});

t.test('one watch event per node changed by a committed transaction', async (t) => {
  const xs = await startXenstored(t);
  const w = await xs.connect();
  const c = await xs.connect();
  const ev: string[] = [];
  await w.watch('/e', 'tok', (p) => ev.push(p));
  await w.directory('/');
  ev.length = 0;
  const tx = await c.transactionStart();
  await c.write('/e/a', '1', tx);
  await c.write('/e/a', '2', tx);
  await c.write('/e/b', '1', tx);
  await c.write('/e/a', '3', tx);
  await c.setPerms('/e/b', ['n0', 'r1'], tx);
  await w.directory('/');
  t.same(ev, [], 'nothing before the commit');
  await c.transactionEnd(tx, true);
  await w.directory('/');
  t.same(ev, ['/e/a', '/e/b'], 'one event for /e/a written three times, one for /e/b, in the order first touched');
});

t.test('TRANSACTION_START with an empty payload starts a transaction', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  const m = await c.call(XS_TRANSACTION_START, Buffer.alloc(0));
  t.same([m.type, latin1(m)], [XS_TRANSACTION_START, '1\0'], 'transaction 1');
  const w = await c.call(XS_WRITE, '/in-tx\x00v', 2, 1);
  t.same([w.type, w.txId], [XS_WRITE, 1], 'usable');
  const e = await c.call(XS_TRANSACTION_END, 'T\0', 3, 1);
  t.same([e.type, latin1(e)], [XS_TRANSACTION_END, 'OK\0']);
});

t.test('TRANSACTION_END with tx_id 0: EINVAL for a bad argument, ENOENT for T or F', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  for (const [arg, want] of [['x', 'EINVAL'], ['', 'EINVAL'], ['T', 'ENOENT'], ['F', 'ENOENT']]) {
    const m = await c.call(XS_TRANSACTION_END, `${arg}\0`);
    t.same([m.type, latin1(m)], [XS_ERROR, `${want}\0`], `argument "${arg}"`);
  }
});

t.test('SET_TARGET, RELEASE and RESUME of domain 0 answer OK, EINVAL, EINVAL', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  const got = [];
  for (const [type, payload] of [[XS_SET_TARGET, '0\x000\x00'], [XS_RELEASE, '0\x00'], [XS_RESUME, '0\x00']] as const) {
    got.push(latin1(await c.call(type, payload)));
  }
  t.same(got, ['OK\0', 'EINVAL\0', 'EINVAL\0']);
});

t.test('the tree starts with /tool/xenstored, owned by Domain-0', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  t.equal(latin1(await c.call(XS_DIRECTORY, '/\0')), 'tool\0');
  t.equal(latin1(await c.call(XS_DIRECTORY, '/tool\0')), 'xenstored\0');
  t.equal(latin1(await c.call(XS_GET_PERMS, '/tool\0')), 'n0\0');
  t.equal(latin1(await c.call(XS_GET_PERMS, '/tool/xenstored\0')), 'n0\0');
  t.equal(latin1(await c.call(XS_READ, '/tool/xenstored\0')), '');
});
