// xs_wire framing (io/xs_wire.h): header by length, replies echo req_id and
// tx_id, Xen's error strings, ENOSYS for unknown types, and a malformed frame
// closing only the connection that sent it.
import t from 'tap';
import { startXenstored } from '../helpers/xenstored.js';
import { RawXs, text } from '../helpers/xs_raw.js';
import {
  XS_READ, XS_WRITE, XS_ERROR, XS_DIRECTORY, XS_CONTROL, XS_TYPE_COUNT,
  XS_WATCH_EVENT, XS_INVALID, XENSTORE_PAYLOAD_MAX, encodeMsg,
} from '../../shared/abi/io/xs_wire.js';

t.test('framing and replies', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());

  let m = await c.call(XS_WRITE, '/a\0hello', 77);
  t.equal(m.type, XS_WRITE);
  t.equal(m.reqId, 77, 'req_id echoed');
  t.equal(text(m), 'OK\0');

  // Header and payload in separate writes, then a payload split in two.
  const whole = encodeMsg(XS_READ, 0xfffffffe, 0, Buffer.from('/a\0'));
  c.sendBytes(whole.subarray(0, 16));
  await new Promise((r) => setTimeout(r, 20));
  c.sendBytes(whole.subarray(16, 17));
  c.sendBytes(whole.subarray(17));
  m = (await c.next())!;
  t.equal(m!.reqId, 0xfffffffe);
  t.equal(text(m), 'hello');

  // Two requests in one write: both answered, in order.
  c.sendBytes(Buffer.concat([encodeMsg(XS_READ, 1, 0, Buffer.from('/a\0')), encodeMsg(XS_READ, 2, 0, Buffer.from('/none\0'))]));
  const r1 = await c.next(); const r2 = await c.next();
  t.same([r1!.reqId, text(r1)], [1, 'hello']);
  t.same([r2!.type, r2!.reqId, text(r2)], [XS_ERROR, 2, 'ENOENT\0']);

  // tx_id is echoed, including on errors for an unknown transaction.
  m = await c.call(XS_READ, '/a\0', 5, 4242);
  t.same([m.type, m.txId, text(m)], [XS_ERROR, 4242, 'ENOENT\0']);
});

t.test('unknown and reserved types get ENOSYS', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  for (const type of [20 /* XS_RESTRICT, removed */, XS_TYPE_COUNT, 999, XS_INVALID, XS_WATCH_EVENT, XS_ERROR]) {
    const m = await c.call(type, '/x\0', type);
    t.same([m.type, text(m)], [XS_ERROR, 'ENOSYS\0'], `type ${type}`);
  }
  t.equal(text(await c.call(XS_DIRECTORY, '/\0')), 'tool\0', 'connection still served');
});

t.test('malformed frames close that connection only', async (t) => {
  const xs = await startXenstored(t);
  const good = await xs.connect();
  await good.write('/keep', 'yes');

  const bad = await RawXs.open(xs.socketPath);
  const hdr = Buffer.alloc(16);
  hdr.writeUInt32LE(XS_READ, 0);
  hdr.writeUInt32LE(1, 4);
  hdr.writeUInt32LE(XENSTORE_PAYLOAD_MAX + 1, 12);
  bad.sendBytes(hdr);
  t.equal(await bad.next(), null, 'oversized length: connection closed');

  const bad2 = await RawXs.open(xs.socketPath);
  const hdr2 = Buffer.alloc(16, 0xff);
  bad2.sendBytes(hdr2);
  t.equal(await bad2.next(), null, 'garbage header: connection closed');

  t.equal(await good.readString('/keep'), 'yes', 'others keep being served');
  t.equal(await good.control('check'), 'OK');
});

t.test('payload of exactly XENSTORE_PAYLOAD_MAX is accepted', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  const path = '/big\0';
  const value = Buffer.alloc(XENSTORE_PAYLOAD_MAX - path.length, 0x61);
  const m = await c.call(XS_WRITE, Buffer.concat([Buffer.from(path), value]));
  t.equal(text(m), 'OK\0');
  const r = await c.call(XS_READ, '/big\0');
  t.equal(r.payload.length, value.length);
});

t.test('arguments must be nul-terminated', async (t) => {
  const xs = await startXenstored(t);
  const c = await RawXs.open(xs.socketPath);
  t.teardown(() => c.close());
  const cases: Array<[string, number, string]> = [
    ['read without nul', XS_READ, '/a'],
    ['read with two args', XS_READ, '/a\0/b\0'],
    ['write without nul', XS_WRITE, '/a'],
    ['directory empty', XS_DIRECTORY, ''],
    ['control unterminated', XS_CONTROL, 'check'],
  ];
  for (const [name, type, payload] of cases) {
    const m = await c.call(type, payload);
    t.same([m.type, text(m)], [XS_ERROR, 'EINVAL\0'], name);
  }
});
