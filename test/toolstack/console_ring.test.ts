// Console ring arithmetic (xen/include/public/io/console.h), including
// wrap-around of the free-running 32-bit indices and hostile indices.
import t from 'tap';
import {
  XenconsInterface, MASK_XENCONS_IDX, XENCONS_IN_SIZE, XENCONS_OUT_SIZE, XENCONS_INTERFACE_SIZE,
  XENCONS_OUT_OFFSET, XENCONS_IN_CONS_OFFSET, XENCONS_OUT_PROD_OFFSET,
} from '../../shared/abi/io/console.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';

function page(): XenconsInterface {
  return new XenconsInterface(new Uint8Array(new SharedArrayBuffer(PAGE_SIZE)));
}
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

t.test('layout matches struct xencons_interface', async (t) => {
  t.equal(XENCONS_IN_SIZE, 1024);
  t.equal(XENCONS_OUT_SIZE, 2048);
  t.equal(XENCONS_OUT_OFFSET, 1024);
  t.equal(XENCONS_IN_CONS_OFFSET, 3072);
  t.equal(XENCONS_OUT_PROD_OFFSET, 3084);
  t.equal(XENCONS_INTERFACE_SIZE, 3088);
  const c = page();
  c.out_prod = 0x01020304;
  t.same([...c.page.subarray(3084, 3088)], [4, 3, 2, 1], 'little-endian u32 at out_prod');
  t.equal(MASK_XENCONS_IDX(0xffffffff, 2048), 2047);
  t.equal(MASK_XENCONS_IDX(2048 + 5, 2048), 5);
});

t.test('frontend writes out, backend reads out', async (t) => {
  const c = page();
  t.equal(c.writeOut(bytes('hello')), 5);
  t.equal(c.out_prod, 5);
  t.equal(c.outPending(), 5);
  const r = c.readOut();
  t.ok(r.ok);
  if (r.ok) t.equal(text(r.data), 'hello');
  t.equal(c.out_cons, 5);
  const empty = c.readOut();
  t.ok(empty.ok && empty.data.length === 0);
});

t.test('backend writes in, frontend reads in, max respected', async (t) => {
  const c = page();
  t.equal(c.writeIn(bytes('ls\r')), 3);
  const r1 = c.readIn(2);
  t.ok(r1.ok && text(r1.data) === 'ls');
  const r2 = c.readIn();
  t.ok(r2.ok && text(r2.data) === '\r');
  t.equal(c.in_cons, 3);
});

t.test('a full ring takes no more and keeps order', async (t) => {
  const c = page();
  const big = new Uint8Array(3000).map((_, i) => i & 0xff);
  t.equal(c.writeOut(big), XENCONS_OUT_SIZE, 'only the free space is taken');
  t.equal(c.writeOut(bytes('x')), 0, 'full');
  const r = c.readOut(100);
  t.ok(r.ok && r.data[99] === 99);
  t.equal(c.writeOut(big.subarray(XENCONS_OUT_SIZE)), 100, 'room for 100 again');
  const rest = c.readOut();
  t.ok(rest.ok);
  if (rest.ok) {
    t.equal(rest.data.length, XENCONS_OUT_SIZE);
    t.same([...rest.data.subarray(0, 3)], [100, 101, 102]);
    t.equal(rest.data[rest.data.length - 1], (XENCONS_OUT_SIZE + 99) & 0xff);
  }
});

t.test('indices wrap at 2^32 and data wraps at the ring end', async (t) => {
  const table: Array<[string, number]> = [
    ['near 2^32', 0xfffffffe],
    ['ring end', XENCONS_OUT_SIZE - 3],
    ['both', 0xffffffff - 1],
  ];
  for (const [name, start] of table) {
    const c = page();
    c.out_cons = start;
    c.out_prod = start;
    t.equal(c.writeOut(bytes('abcdefgh')), 8, `${name}: write`);
    t.equal(c.out_prod, (start + 8) >>> 0, `${name}: prod wrapped`);
    const r = c.readOut();
    t.ok(r.ok && text(r.data) === 'abcdefgh', `${name}: bytes`);
    t.equal(c.out_cons, (start + 8) >>> 0, `${name}: cons wrapped`);
  }
});

t.test('hostile indices are refused, never looped on or read out of bounds', async (t) => {
  const table: Array<[string, number, number]> = [
    ['prod far ahead', 0, 0x7fffffff],
    ['prod behind cons', 100, 50],
    ['one past full', 0, XENCONS_OUT_SIZE + 1],
    ['cons ahead of prod', 0x800, 0],
    ['prod just wrapped past a stale cons', 0x10, 0xfffffff0],
  ];
  for (const [name, cons, prod] of table) {
    const c = page();
    c.out_cons = cons;
    c.out_prod = prod;
    const r = c.readOut();
    t.same(r, { ok: false, errno: -XEN_EINVAL }, `${name}: readOut`);
    t.equal(c.out_cons, cons >>> 0, `${name}: cons untouched`);
    t.equal(c.outPending(), -XEN_EINVAL, `${name}: outPending`);
    t.equal(c.writeOut(bytes('x')), -XEN_EINVAL, `${name}: writeOut`);
  }
  const c = page();
  c.in_cons = 7;
  c.in_prod = 7 + XENCONS_IN_SIZE + 1;
  t.equal(c.writeIn(bytes('x')), -XEN_EINVAL, 'writeIn refuses an overfull in ring');
  t.equal(c.inPending(), -XEN_EINVAL);
  const exactlyFull = page();
  exactlyFull.out_cons = 0xfffffc00;
  exactlyFull.out_prod = (0xfffffc00 + XENCONS_OUT_SIZE) >>> 0;
  const r = exactlyFull.readOut();
  t.ok(r.ok && r.data.length === XENCONS_OUT_SIZE, 'exactly full across 2^32 is valid');
});

t.test('page checks', async (t) => {
  t.throws(() => new XenconsInterface(new Uint8Array(100)), new RangeError('console page too small: 100 < 3088'));
  t.throws(() => new XenconsInterface(new Uint8Array(new ArrayBuffer(5000), 1)),
    new RangeError('console page index fields are not 4-byte aligned'));
});
