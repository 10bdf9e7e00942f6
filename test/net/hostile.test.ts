// A hostile network front end (test/fixtures/hostile_netfront.ts) next to
// two honest guests pinging each other throughout. On xenbr0: bad grant
// refs, a ref granted to another domain, frames too small or too large,
// packets of several slots (NETTXF_more_data, without feature-sg) and with
// extra info slots (NETTXF_extra_info), a request crossing its page, a tx
// req_prod running ahead of the ring, a ring-ref never granted. On xenbr1,
// where the hostile domain is alone: rx buffers with bad grefs, a vif that
// posts no rx buffers while packets arrive, a second one while the first
// holds 512 of Domain-0's packet frames, an rx req_prod ahead of the ring,
// extra info slots of no known type. Each time netback answers with an error
// (or drops the packet, or cuts the vif off: Closed, `error` written) and
// counts the refusal under the name of the check that fired
// (processes/dom0/netback/reject.ts), exactly as often as expected, in the
// vif's statistics file and in the total; the honest guests keep pinging.
import t from 'tap';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { probe } from '../helpers/probe.js';
import { list, writeCfg, xenstore, xlOk } from '../host/xl.js';
import {
  NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETTXF_extra_info, NETTXF_more_data, XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_TYPE_MCAST_ADD, XEN_NETIF_EXTRA_TYPE_NONE,
} from '../../shared/abi/io/netif.js';
import { RX_QUEUE_MAX } from '../../processes/dom0/netback/vif.js';
import { rejections } from '../blk/rejections.js';
import { netGuest } from './guests.js';

const HOSTILE = join(DIST, 'test', 'fixtures', 'hostile_netfront.js');
const MAC = (last: string) => `00:16:3e:66:66:${last}`;
type Rsp = { id: number; status: number };

t.test('a hostile netfront gets named errors or is disconnected; other guests are served', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const a = await netGuest(t, h, 'ha', `vif = ['bridge=xenbr0']`);
  const b = await netGuest(t, h, 'hb', `vif = ['bridge=xenbr0']`);
  // vifs 0-2 on xenbr0 with the honest guests (2: a ring-ref never granted); 3-5 alone on xenbr1.
  const cfg = writeCfg(h, 'evil.cfg', `name = "evil"\nmemory = 32\nkernel = "${HOSTILE}"\n` +
    `vif = ['mac=${MAC('66')}', 'mac=${MAC('67')}', 'mac=${MAC('68')}', ` +
    `'mac=${MAC('69')},bridge=xenbr1', 'mac=${MAC('6a')},bridge=xenbr1', 'mac=${MAC('6b')},bridge=xenbr1']\n`);
  await xlOk(h, 'create', cfg);
  const evil = (await list(h)).find((r) => r.name === 'evil')!.id;
  const p = probe(h.rundir, evil, 30_000);
  t.teardown(() => p.close());
  const vifs = (await waitFor(async () => { const v = await p.call('vifs').catch(() => null); return Array.isArray(v) && v.length === 5 ? v : null; }, 30_000, 'hostile vifs'))!;
  t.equal(vifs.length, 5, 'five hostile vifs connected');
  const rej = rejections(h.rundir, 'vif', evil);
  const xs = await xenstore(t, h);

  const served = async (what: string) => {
    t.match(await a.run(`ping -c 1 10.0.0.${b.id}`), /1 received, 0% packet loss/, `ha still reaches hb after ${what}`);
  };
  const closed = async (devid: number, error: RegExp) => {
    await waitFor(async () => (await p.call('state', { devid })).state === '6', 10_000, `vif ${devid} Closed`);
    t.match((await p.call('state', { devid })).error, error, `vif ${devid}: the error node says why`);
  };

  await t.test('tx on vif 0: each bad request refused by name, the vif goes on', async (t) => {
    const one = (args: Record<string, unknown>) => p.call<Rsp[] | null>('tx', { devid: 0, ...args });
    const raw = (slots: unknown[]) => p.call<Rsp[]>('txRaw', { devid: 0, slots });
    t.same(await rej.expect(t, 'a well-formed request', 0, null, () => one({ id: 1 })), [{ id: 1, status: NETIF_RSP_OKAY }], 'OKAY');
    const toA = await p.call<number>('grantTo', { devid: 0, domid: a.id });
    const cases: [string, string, Record<string, unknown>][] = [
      ['a gref never granted', 'bad_gref', { id: 2, gref: 9999 }],
      ['a gref past the table', 'bad_gref', { id: 3, gref: 100000 }],
      ['a ref granted to another domain', 'bad_gref', { id: 4, gref: toA }],
      ['larger than a frame (3000 bytes)', 'oversized_frame', { id: 5, size: 3000 }],
      ['1515 bytes', 'oversized_frame', { id: 6, size: 1515 }],
      ['shorter than an Ethernet header (4 bytes)', 'runt_frame', { id: 7, size: 4 }],
      ['no byte at all', 'runt_frame', { id: 8, size: 0 }],
    ];
    for (const [what, reason, q] of cases) {
      t.same(await rej.expect(t, what, 0, reason, () => one(q)), [{ id: q.id, status: NETIF_RSP_ERROR }], `${what}: NETIF_RSP_ERROR`);
    }
    // Without feature-sg a packet is one slot: a chain is refused whole, counted once.
    t.equal(await xs.readString(`/local/domain/0/backend/vif/${evil}/0/feature-sg`), '0', 'netback offers feature-sg=0');
    t.same(await rej.expect(t, 'a packet of three slots (NETTXF_more_data)', 0, 'more_data_unsupported', () => raw([
      { id: 20, flags: NETTXF_more_data, size: 180 }, { id: 21, flags: NETTXF_more_data, size: 60 }, { id: 22, size: 60 },
    ])), [20, 21, 22].map((id) => ({ id, status: NETIF_RSP_ERROR })), 'NETIF_RSP_ERROR for each of its slots');
    // Extra info slots (GSO, multicast): the request is refused, each extra slot answered NETIF_RSP_NULL.
    const withNull = (rs: Rsp[]) => rs.map((r) => (r.status === NETIF_RSP_NULL ? { status: NETIF_RSP_NULL } : r));
    t.same(withNull(await rej.expect(t, 'a GSO extra info (NETTXF_extra_info)', 0, 'extra_info_unsupported', () => raw([
      { id: 30, flags: NETTXF_extra_info }, { extra: { type: XEN_NETIF_EXTRA_TYPE_GSO } },
    ]))), [{ id: 30, status: NETIF_RSP_ERROR }, { status: NETIF_RSP_NULL }], 'NETIF_RSP_ERROR, then NETIF_RSP_NULL for the extra slot');
    t.same(withNull(await rej.expect(t, 'two extra infos (XEN_NETIF_EXTRA_FLAG_MORE)', 0, 'extra_info_unsupported', () => raw([
      { id: 31, flags: NETTXF_extra_info }, { extra: { type: XEN_NETIF_EXTRA_TYPE_GSO, flags: XEN_NETIF_EXTRA_FLAG_MORE } },
      { extra: { type: XEN_NETIF_EXTRA_TYPE_MCAST_ADD } },
    ]))), [{ id: 31, status: NETIF_RSP_ERROR }, { status: NETIF_RSP_NULL }, { status: NETIF_RSP_NULL }], 'one NETIF_RSP_NULL per extra slot');
    t.same(withNull(await rej.expect(t, 'a packet of two slots with an extra info', 0, 'more_data_unsupported', () => raw([
      { id: 32, flags: NETTXF_more_data | NETTXF_extra_info, size: 120 }, { extra: { type: XEN_NETIF_EXTRA_TYPE_GSO } }, { id: 33, size: 60 },
    ]))), [{ id: 32, status: NETIF_RSP_ERROR }, { status: NETIF_RSP_NULL }, { id: 33, status: NETIF_RSP_ERROR }],
    'the extra slot NETIF_RSP_NULL, both request slots NETIF_RSP_ERROR');
    t.same(await rej.expect(t, 'a well-formed request after them', 0, null, () => one({ id: 40 })), [{ id: 40, status: NETIF_RSP_OKAY }],
      'the packet after them is read as a packet: OKAY');
    await served('error responses');

    // Fatal: a request crossing its page.
    t.equal(await rej.expect(t, 'a request crossing its page', 0, 'page_crossing', async () => {
      const r = await one({ id: 50, offset: 3000, size: 1500 });
      await closed(0, /crosses its page/);
      return r;
    }), null, 'no response to a request crossing its page');
    await served('a page-crossing request');
  });

  await t.test('tx req_prod ahead of the ring (vif 1), a ring-ref never granted (vif 2)', async (t) => {
    await rej.expect(t, 'tx req_prod 5000 ahead', 1, 'tx_req_prod_overflow', async () => {
      await p.call('reqProdAhead', { devid: 1 });
      await closed(1, /tx req_prod .* ahead of the ring/);
    });
    await served('tx req_prod ahead of the ring');
    // Vif 2 was refused at boot (the fixture gave it ring-ref 7, never granted).
    const d2 = rej.device(2);
    t.same([d2.rejected, d2['rejected.bad_ring_ref']], [1, 1], 'vif 2: refused once, as bad_ring_ref');
    t.match((await p.call('state', { devid: 2 })).error, /tx-ring-ref 7/, 'vif 2: the error node says why');
  });

  await t.test('rx on xenbr1: bad rx grefs, no rx buffers, Domain-0\'s frames kept for others', async (t) => {
    // The bridge learns vif 3's and vif 5's MACs (their frames wait at the other, bufferless, vifs).
    await p.call('tx', { devid: 3, id: 1 });
    await p.call('tx', { devid: 5, id: 1 });
    const burst = (to: string, n: number) => p.call<{ done: number; ok: number }>('txBurst', { devid: 4, n, dst: MAC(to) });

    // Rx buffers whose gref cannot be copied into: each loses its packet, counted once.
    await rej.expect(t, '4 rx buffers with gref 9999', 3, 'bad_rx_gref', async () => {
      await p.call('rxPost', { devid: 3, n: 4, gref: 9999 });
      t.same(await burst('69', 4), { done: 4, ok: 4 }, 'vif 4 sends 4 frames to vif 3');
      const rs = await p.call<Rsp[]>('rxTake', { devid: 3, n: 4 });
      t.same(rs.map((r) => r.status), [NETIF_RSP_ERROR, NETIF_RSP_ERROR, NETIF_RSP_ERROR, NETIF_RSP_ERROR], 'four rx responses, NETIF_RSP_ERROR');
    }, 4);
    // A good buffer gets the frame that waited (vif 5's, or the fourth of the burst).
    await rej.expect(t, 'a good rx buffer', 3, null, async () => {
      await p.call('rxPost', { devid: 3, n: 1 });
      const rs = await p.call<{ status: number }[]>('rxTake', { devid: 3, n: 1 });
      t.same(rs.map((r) => r.status), [60], 'a good rx buffer gets a 60-byte frame');
    });

    // No rx buffers: RX_QUEUE_MAX frames wait, the rest are dropped and counted (the queue is empty now).
    const extra = 88;
    await rej.expect(t, `${RX_QUEUE_MAX + extra} frames to a vif without rx buffers`, 3, 'no_rx_buffers', async () => {
      t.same(await burst('69', RX_QUEUE_MAX + extra), { done: RX_QUEUE_MAX + extra, ok: RX_QUEUE_MAX + extra }, 'vif 4 sends them all');
    }, extra, true);
    t.equal(rej.device(3).rx_queue, RX_QUEUE_MAX, `vif 3 holds ${RX_QUEUE_MAX} frames`);
    await served('a vif without rx buffers');

    // A second vif without rx buffers, while vif 3 holds RX_QUEUE_MAX of the pool's 1024 frames: it gets
    // none of the last quarter, so the others' transmit path keeps frames; what it does not queue is dropped.
    const n5 = 600;
    // Its queue so far: the frame vif 3 sent (the gauge is written within a second).
    const q5 = (await waitFor(() => rej.device(5).rx_queue, 5_000, 'vif 5 holding the frame vif 3 sent'))!;
    t.equal(q5, 1, 'vif 5 holds the one frame vif 3 sent');
    const d5 = rej.device(5)['rejected.no_rx_buffers'] ?? 0;
    t.same(await burst('6b', n5), { done: n5, ok: n5 }, `vif 4 sends ${n5} frames to vif 5`);
    const s5 = (await waitFor(() => {
      const s = rej.device(5);
      return (s.rx_queue ?? 0) - q5 + (s['rejected.no_rx_buffers'] ?? 0) - d5 === n5 ? s : null;
    }, 10_000, `vif 5: each of the ${n5} frames queued or counted`))!;
    t.ok(s5.rx_queue! < RX_QUEUE_MAX - 200, `vif 5 holds ${s5.rx_queue} frames: stopped by the pool's reserve, not by its queue`);
    t.ok(s5['rejected.no_rx_buffers']! - d5 > n5 - RX_QUEUE_MAX, `and dropped ${s5['rejected.no_rx_buffers']! - d5}, each counted as no_rx_buffers`);
    await served('two vifs without rx buffers holding frames');
    await served('two vifs without rx buffers holding frames (again)');

    // Fatal: an rx req_prod ahead of the ring (vif 3, its frames go back to the pool).
    await rej.expect(t, 'rx req_prod 5000 ahead', 3, 'rx_req_prod_overflow', async () => {
      await p.call('reqProdAhead', { devid: 3, rx: true });
      await closed(3, /rx req_prod .* ahead of the ring/);
    });
    // Fatal: extra info of no known type.
    for (const [devid, type] of [[4, XEN_NETIF_EXTRA_TYPE_NONE], [5, 9]] as const) {
      await rej.expect(t, `an extra info of type ${type} (vif ${devid})`, devid, 'bad_extra_type', async () => {
        t.same(await p.call('txRaw', { devid, slots: [{ id: 60, flags: NETTXF_extra_info }, { extra: { type } }], timeoutMs: 500 }), [],
          'no response');
        await closed(devid, new RegExp(`extra info type ${type}`));
      });
    }
    await served('the xenbr1 vifs were cut off');
  });

  // The hostile domain goes; its back ends go with it, their rejections stay in the total.
  const total = rej.driver().rejected;
  await xlOk(h, 'destroy', 'evil');
  await waitFor(async () => !(await xs.directory('/local/domain/0/backend/vif').catch(() => [] as string[])).includes(String(evil)), 10_000, 'backend dirs gone');
  await waitFor(() => Object.keys(rej.device(0)).length === 0, 10_000, 'statistics files of the vifs gone');
  t.equal(rej.driver().rejected, total, 'the total keeps the rejections of the vifs that went');
  await served('the hostile domain was destroyed');

  // Its third vif failed to connect (a ring ref it never granted): netback
  // must still serve a guest created afterwards.
  const c = await netGuest(t, h, 'hc', `vif = ['bridge=xenbr0']`);
  t.match(await c.run(`ping -c 1 10.0.0.${b.id}`), /1 received, 0% packet loss/, 'a new guest is served after a failed connect');
});
