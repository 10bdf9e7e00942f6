// The learning bridge and the guest's ARP cache, in-process: what is
// flooded, what is forwarded once learned, ageing, a port going away; ARP
// requests, replies, queued sends and the cache.
import t from 'tap';
import { Bridge, type BridgePort } from '../../processes/dom0/netback/bridge.js';
import { Arp } from '../../processes/domu/net/arp.js';

const mac = (n: number) => Uint8Array.from([0x00, 0x16, 0x3e, 0, 0, n]);
const BCAST = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
function frame(dst: Uint8Array, src: Uint8Array): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0); f.set(src, 6); f[12] = 0x08;
  return f;
}
function port(name: string): BridgePort & { got: number } {
  const p = { name, got: 0, deliver() { p.got++; } };
  return p;
}

t.test('bridge: flood, learn, forward, age, remove', async (t) => {
  let now = 0;
  const br = new Bridge('xenbr0', 300_000, () => now);
  const [p1, p2, p3] = [port('vif1.0'), port('vif2.0'), port('vif3.0')];
  for (const p of [p1, p2, p3]) br.addPort(p);

  br.input(p1, frame(BCAST, mac(1)));
  t.same([p1.got, p2.got, p3.got], [0, 1, 1], 'broadcast flooded to every other port');
  t.equal(br.lookup('00:16:3e:00:00:01'), 'vif1.0', 'source learned');

  br.input(p2, frame(mac(1), mac(2)));
  t.same([p1.got, p2.got, p3.got], [1, 1, 1], 'known destination: forwarded to its port only');
  br.input(p1, frame(mac(9), mac(1)));
  t.same([p1.got, p2.got, p3.got], [1, 2, 2], 'unknown unicast flooded');
  br.input(p1, frame(mac(1), mac(1)));
  t.equal(br.stats.dropped, 1, 'a frame for its own port is dropped');
  br.input(p3, frame(mac(2), Uint8Array.from([0x01, 0, 0x5e, 0, 0, 1])));
  t.equal(br.stats.dropped, 2, 'a multicast source is dropped');

  now += 300_001;
  t.equal(br.lookup('00:16:3e:00:00:01'), undefined, 'aged out');
  t.equal(br.age(), 2, 'swept');
  br.input(p1, frame(mac(2), mac(1)));
  t.same([p2.got, p3.got], [3, 3], 'after ageing, flooded again');

  br.removePort(p2);
  br.input(p3, frame(mac(1), mac(3)));
  t.same([p1.got, p2.got], [2, 3], 'forwarded to p1; the removed port gets nothing');
  t.equal(br.showmacs().length, 2, 'showmacs lists what is left');
});

t.test('arp: request, reply, queued send, cache, answer', async (t) => {
  const sent: Uint8Array[] = [];
  const me = mac(1);
  const ip = (d: number) => ((10 << 24) | d) >>> 0;
  const arp = new Arp(me, () => ip(1), (f) => sent.push(f));
  t.teardown(() => arp.close());
  const delivered: Uint8Array[] = [];
  t.ok(arp.resolveAndSend(ip(2), new Uint8Array(42), (dst) => delivered.push(dst)), 'queued');
  t.equal(sent.length, 1, 'one request');
  t.same(sent[0]!.subarray(0, 6), BCAST, 'request is broadcast');
  t.equal((sent[0]![20]! << 8) | sent[0]![21]!, 1, 'ARPOP_REQUEST');

  // A reply from .2 names us: cached, the queued packet goes out to its MAC.
  const reply = new Uint8Array(42);
  reply.set(me, 0); reply.set(mac(2), 6); reply[12] = 0x08; reply[13] = 0x06;
  const dv = new DataView(reply.buffer, 14);
  dv.setUint16(0, 1); dv.setUint16(2, 0x0800); dv.setUint8(4, 6); dv.setUint8(5, 4); dv.setUint16(6, 2);
  reply.set(mac(2), 22); dv.setUint32(14, ip(2)); reply.set(me, 32); dv.setUint32(24, ip(1));
  arp.input(reply);
  t.same(delivered, [mac(2)], 'queued packet sent to the learned MAC');
  t.same(arp.lookup(ip(2)), mac(2), 'cached');

  // A request for our address is answered, and its sender cached.
  dv.setUint16(6, 1); reply.set(mac(3), 22); dv.setUint32(14, ip(3));
  arp.input(reply);
  t.equal(sent.length, 2, 'answered');
  t.equal((sent[1]![20]! << 8) | sent[1]![21]!, 2, 'ARPOP_REPLY');
  t.same(sent[1]!.subarray(0, 6), mac(3), 'reply is unicast to the asker');
  t.same(arp.lookup(ip(3)), mac(3), 'asker cached');
});
