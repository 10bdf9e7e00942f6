// io/ring.h semantics of shared/abi/io/ring.ts, table-driven where the macros are.
import t from 'tap';
import { BackRing, FrontRing, __RING_SIZE, __RD32, RING_HEADER_SIZE, sring } from '../../shared/abi/io/ring.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';

const page = () => new Uint8Array(new SharedArrayBuffer(PAGE_SIZE));

t.test('__RING_SIZE as __CONST_RING_SIZE computes it', async (t) => {
  const cases: Array<[string, number, number]> = [
    ['blkif (112-byte request)', 112, 32],
    ['netif tx (12-byte union)', 12, 256],
    ['netif rx (8-byte union)', 8, 256],
    ['xen_pvcalls (64)', 64, 32],
    ['4032 bytes', 4032, 1],
  ];
  for (const [what, size, want] of cases) t.equal(__RING_SIZE(size), want, what);
  t.equal(__RD32(0), 0);
  t.equal(__RD32(37), 32);
  t.equal(RING_HEADER_SIZE, 64);
  t.same(sring, { req_prod: 0, req_event: 4, rsp_prod: 8, rsp_event: 12, pvt: 16, __pad: 20, ring: 64 });
});

t.test('push, notify only when the peer asked, final check re-arms', async (t) => {
  const p = page();
  const f = FrontRing.init(p, 112);
  const dv = new DataView(p.buffer);
  t.equal(dv.getUint32(4, true), 1, 'req_event armed at 1');
  t.equal(dv.getUint32(12, true), 1, 'rsp_event armed at 1');
  const b = BackRing.attach(p, 112);
  for (let i = 0; i < 3; i++) { const s = f.nextRequest()!; s[0] = i; f.produce(); }
  t.equal(f.pushRequestsAndCheckNotify(), true, 'first push crosses req_event=1');
  const s = f.nextRequest()!; s[0] = 9; f.produce();
  t.equal(f.pushRequestsAndCheckNotify(), false, 'back end busy: no notification');
  t.equal(b.hasUnconsumedRequests(), 4);
  const got = b.takeRequests();
  t.same(got.requests.map((r) => r[0]), [0, 1, 2, 9]);
  t.equal(b.finalCheckForRequests(), false, 'idle');
  t.equal(dv.getUint32(4, true), 5, 'req_event = req_cons + 1');
  for (const _ of got.requests) { const r = b.nextResponse(); r[0] = 0xaa; b.produce(); }
  t.equal(b.pushResponsesAndCheckNotify(), true, 'rsp_event=1 crossed');
  t.equal(f.takeResponses().responses.length, 4);
  t.equal(f.finalCheckForResponses(), false);
  t.equal(f.freeRequests(), 32);
  f.nextRequest(); f.produce();
  t.equal(f.pushRequestsAndCheckNotify(), true, 'req_event re-armed: notify again');
});

t.test('a copied request does not change when the page does (XSA-155)', async (t) => {
  const p = page();
  const f = FrontRing.init(p, 112);
  const b = BackRing.attach(p, 112);
  f.nextRequest()![1] = 3; f.produce(); f.pushRequests();
  const [req] = b.takeRequests().requests;
  p[RING_HEADER_SIZE + 1] = 200;
  t.equal(req![1], 3);
});

t.test('req_prod running ahead of the ring is refused', async (t) => {
  const p = page();
  FrontRing.init(p, 112);
  const b = BackRing.attach(p, 112);
  new DataView(p.buffer).setUint32(0, 33, true);
  const r = b.takeRequests();
  t.equal(r.overflow, true);
  t.equal(b.req_cons, 0, 'nothing consumed');
  new DataView(p.buffer).setUint32(0, 32, true);
  t.equal(b.takeRequests().requests.length, 32, 'a full ring is fine');
  new DataView(p.buffer).setUint32(0, 40, true);
  t.equal(b.takeRequests().overflow, true, 'more than the ring beyond unanswered requests');
});

t.test('indices wrap over 2^32', async (t) => {
  const p = page();
  SHARED(p);
  const start = 0xfffffff0;
  const f = FrontRing.attach(p, 112, start);
  const b = BackRing.attach(p, 112, start);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, start, true); dv.setUint32(8, start, true);
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 20; i++) { f.nextRequest()![0] = i; f.produce(); }
    f.pushRequests();
    const { requests, overflow } = b.takeRequests();
    t.equal(overflow, false);
    t.same(requests.map((r) => r[0]), Array.from({ length: 20 }, (_, i) => i));
    for (let i = 0; i < 20; i++) { b.nextResponse(); b.produce(); }
    b.pushResponses();
    t.equal(f.takeResponses().responses.length, 20);
  }
  t.ok(f.req_prod_pvt < start, 'wrapped');
});

function SHARED(p: Uint8Array): void { FrontRing.init(p, 112); }
