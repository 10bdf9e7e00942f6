// Hostile input: the daemon stays up, its memory stays bounded, other clients
// keep being served and the tree stays consistent (CONTROL check).
import { waitFor } from '../helpers/host.js';
import t from 'tap';
import type { XsClient } from '../../shared/xenstore/client.js';
import { startXenstored, code } from '../helpers/xenstored.js';
import { RawXs } from '../helpers/xs_raw.js';
import {
  XS_READ, XS_WATCH, XS_WRITE, encodeMsg, XENSTORE_ERROR_RINGIDX, XENSTORE_ERROR_OFF, XENSTORE_REQ_PROD_OFF,
  XENSTORE_REQ_CONS_OFF, XENSTORE_RSP_PROD_OFF, XENSTORE_RING_SIZE, XSD_SOCKMSG_SIZE,
} from '../../shared/abi/io/xs_wire.js';
import { XsRing } from '../../shared/xenstore/ring.js';

/** CONTROL output of "key value" lines as numbers (stats, quota). */
async function controlNumbers(c: XsClient, ...args: string[]): Promise<Record<string, number>> {
  return Object.fromEntries((await c.control(...args)).split('\n').map((l) => l.split(' ')).map(([k, v]) => [k!, parseInt(v!, 10)]));
}


t.test('deep and long paths', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const deep = '/d' + '/x'.repeat(1020); // 2042 bytes, 1021 levels
  t.equal(await code(c.write(deep, 'bottom')), 'OK');
  t.equal(await c.readString(deep), 'bottom');
  t.equal(await code(c.write(deep + '/toolong'.repeat(200), 'v')), 'EINVAL', 'past the length limit');
  t.equal(await code(c.rm('/d')), 'OK', 'a deep subtree goes in one rm');
  t.equal(await c.control('check'), 'OK');
  // From a guest, depth is bounded by its node quota and nothing is half-made.
  await c.mkdir('/local/domain/5');
  await c.setPerms('/local/domain/5', ['n5']);
  const g = (await xs.guest(5)).client;
  t.equal(await code(g.write('x' + '/y'.repeat(1000), 'v')), 'ENOSPC');
  t.same(await c.directory('/local/domain/5'), []);
});

t.test('responses piling up unread: reading stops, memory bounded, others served', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  await c.write('/v', 'x'.repeat(3000));
  const before = xs.rssKb();
  const hog = await RawXs.open(xs.socketPath);
  hog.sock.pause(); // never read a reply
  const req = encodeMsg(XS_READ, 1, 0, Buffer.from('/v\0'));
  const burst = Buffer.concat(Array.from({ length: 2000 }, () => req));
  for (let i = 0; i < 50; i++) hog.sendBytes(burst); // 100,000 requests of 3 KB replies = 300 MB unread
  // The daemon stops reading the hog once a megabyte of replies waits.
  await waitFor(async () => (await controlNumbers(c, 'stats'))['held-sockets'] === 1, 10_000, 'the hog held');
  const t0 = Date.now();
  t.equal(await c.readString('/v'), 'x'.repeat(3000), 'another client is served');
  t.ok(Date.now() - t0 < 2000, 'promptly');
  const grew = xs.rssKb() - before;
  t.ok(grew < 64 * 1024, `daemon RSS grew ${grew} kB (bounded)`);
  hog.close();
  t.equal(await c.control('check'), 'OK');
});

t.test('watch flood to a client that does not read', async (t) => {
  const xs = await startXenstored(t);
  const writer = await xs.connect();
  const before = xs.rssKb();
  const deaf = await RawXs.open(xs.socketPath);
  deaf.sock.pause();
  for (let i = 0; i < 50; i++) deaf.send(XS_WATCH, `/flood\0tok${i}\0`, i + 1);
  const big = 'v'.repeat(1000);
  for (let round = 0; round < 20; round++) {
    await Promise.all(Array.from({ length: 500 }, (_, i) => writer.write(`/flood/n${i}`, big)));
  }
  const grew = xs.rssKb() - before;
  t.ok(grew < 96 * 1024, `daemon RSS grew ${grew} kB for 500,000 events to a deaf client`);
  // The log line comes over the daemon's stderr, not the socket: wait for it.
  await waitFor(() => /watch events dropped/.test(xs.output()), 5000, 'the drop logged');
  t.match(xs.output(), /watch events dropped/, 'the drop is logged');
  const other = await xs.connect();
  t.equal((await other.directory('/flood')).length, 500);
  deaf.close();
});

t.test('transaction floods', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const results: string[] = [];
  for (let i = 0; i < 300; i++) results.push(await code(c.transactionStart()));
  t.equal(results.filter((r) => r === 'OK').length, 256, 'even Domain-0 is capped per connection');
  t.equal(results[299], 'ENOSPC');
  await c.mkdir('/local/domain/5');
  await c.setPerms('/local/domain/5', ['n5']);
  const g = (await xs.guest(5)).client;
  const gr: string[] = [];
  for (let i = 0; i < 30; i++) gr.push(await code(g.transactionStart()));
  t.equal(gr.filter((r) => r === 'OK').length, 10, 'a guest has ten');
  c.close();
  const c2 = await xs.connect();
  await waitFor(async () => (await controlNumbers(c2, 'stats')).transactions === 10, 5000, 'transactions of a closed connection dropped');
  t.equal((await controlNumbers(c2, 'stats')).transactions, 10, 'a closed connection\'s transactions are gone, the guest\'s stay');
});

t.test('a guest breaking its ring indices is cut off alone', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const good = await xs.guest(6);
  const bad = await xs.guest(7);
  await good.client.getDomainPath(6);
  bad.close(); // stop its polite client
  // req_prod far ahead of req_cons: more than a ring's worth "available".
  const idx = new Int32Array(bad.page.buffer, bad.page.byteOffset + XENSTORE_REQ_PROD_OFF, 1);
  Atomics.store(idx, 0, 1 << 20);
  const err = new Int32Array(bad.page.buffer, bad.page.byteOffset + XENSTORE_ERROR_OFF, 1);
  await waitFor(() => Atomics.load(err, 0) === XENSTORE_ERROR_RINGIDX, 5000, 'error field set');
  t.equal(Atomics.load(err, 0), XENSTORE_ERROR_RINGIDX, 'XENSTORE_ERROR_RINGIDX reported in the page');
  t.equal(await good.client.getDomainPath(6), '/local/domain/6', 'the other guest is served');
  t.equal(await c.control('check'), 'OK');
});

t.test('an oversized frame on a ring stops that ring only', async (t) => {
  const xs = await startXenstored(t);
  const good = await xs.guest(6);
  const bad = await xs.guest(7);
  bad.close();
  const ring = new XsRing(bad.page, 'guest');
  const hdr = Buffer.alloc(16);
  hdr.writeUInt32LE(XS_WRITE, 0);
  hdr.writeUInt32LE(100000, 12);
  ring.write(hdr);
  const err = new Int32Array(bad.page.buffer, bad.page.byteOffset + XENSTORE_ERROR_OFF, 1);
  await waitFor(() => Atomics.load(err, 0) !== 0, 5000, 'error field set');
  t.equal(Atomics.load(err, 0), 3, 'XENSTORE_ERROR_PROTO');
  t.equal(await good.client.getDomainPath(6), '/local/domain/6');
});

t.test('a guest that never consumes responses holds at most its outstanding quota', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const g = await xs.guest(8);
  g.close(); // nobody reads the response ring now
  const ring = new XsRing(g.page, 'guest');
  const idx = (off: number): number => new DataView(g.page.buffer, g.page.byteOffset).getUint32(off, true);
  const req = encodeMsg(XS_READ, 1, 0, Buffer.from('/nonexistent-path-for-errors\0'));
  const reply = XSD_SOCKMSG_SIZE + 'ENOENT\0'.length;
  const outstanding = async (): Promise<number> => (await controlNumbers(c, 'quota', '8')).outstanding!;
  // Requests go in as fast as the daemon takes them, until it holds its
  // quota of replies: then it reads no more (req_cons stops), for good.
  const total = 400;
  let sent = 0;
  while (sent < total) {
    if (ring.space() >= req.length) { ring.write(req); sent++; continue; }
    await waitFor(async () => ring.space() >= req.length || (await outstanding()) >= 20, 10_000, 'room in the ring or the quota reached');
    if (ring.space() < req.length) break;
  }
  const held = await outstanding();
  t.equal(held, 20, 'replies the daemon holds for the guest: its outstanding quota');
  // What the daemon took: the replies in the response ring, the ones it
  // holds, and at most one ring's worth of requests read but not handled.
  const answered = Math.floor(idx(XENSTORE_RSP_PROD_OFF) / reply);
  const consumed = idx(XENSTORE_REQ_CONS_OFF) / req.length;
  t.equal(answered, Math.floor(XENSTORE_RING_SIZE / reply), 'the response ring is full');
  t.ok(consumed <= answered + held + Math.ceil(XENSTORE_RING_SIZE / req.length),
    `requests consumed from the ring: ${consumed} (${answered} answered, ${held} held)`);
  t.ok(sent < total, `the guest could put ${sent} of ${total} requests in`);
  t.equal(await c.control('check'), 'OK', 'Domain-0 still served');
});
