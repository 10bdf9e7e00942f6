// A hostile network front end (test/fixtures/hostile_netfront.ts) next to
// two honest guests: bad grant refs, a ref granted to another domain,
// requests larger than a frame, a request crossing its page and a req_prod
// running ahead of the ring. Each gets NETIF_RSP_ERROR or the vif is cut
// off (state Closed, `error` written); the honest guests keep pinging each
// other throughout.
import t from 'tap';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { probe } from '../helpers/probe.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { NETIF_RSP_ERROR, NETIF_RSP_OKAY } from '../../shared/abi/io/netif.js';
import { netGuest } from './guests.js';

const HOSTILE = join(DIST, 'test', 'fixtures', 'hostile_netfront.js');

t.test('a hostile netfront gets errors or is disconnected; other guests are served', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const a = await netGuest(t, h, 'ha', `vif = ['bridge=xenbr0']`);
  const b = await netGuest(t, h, 'hb', `vif = ['bridge=xenbr0']`);
  const cfg = writeCfg(h, 'evil.cfg', `name = "evil"\nmemory = 32\nkernel = "${HOSTILE}"\nvif = ['mac=00:16:3e:66:66:66', 'mac=00:16:3e:66:66:67', 'mac=00:16:3e:66:66:68']\n`);
  await xlOk(h, 'create', cfg);
  const evil = (await list(h)).find((r) => r.name === 'evil')!.id;
  const p = probe(h.rundir, evil, 20_000);
  t.teardown(() => p.close());
  const vifs = (await waitFor(async () => { const v = await p.call('vifs'); return Array.isArray(v) && v.length === 2 ? v : null; }, 20_000, 'hostile vifs'))!;
  t.equal(vifs.length, 2, 'both hostile vifs connected');

  const served = async (what: string) => {
    t.match(await a.run(`ping -c 1 10.0.0.${b.id}`), /1 received, 0% packet loss/, `ha still reaches hb after ${what}`);
  };

  const one = async (args: Record<string, unknown>) => ((await p.call('tx', { devid: 0, ...args })) as Array<{ id: number; status: number }>);
  t.same(await one({ id: 1 }), [{ id: 1, status: NETIF_RSP_OKAY }], 'a well-formed request is OKAY');
  t.same(await one({ id: 2, gref: 9999 }), [{ id: 2, status: NETIF_RSP_ERROR }], 'a gref never granted: error');
  t.same(await one({ id: 3, gref: 100000 }), [{ id: 3, status: NETIF_RSP_ERROR }], 'a gref past the table: error');
  const toA = await p.call<number>('grantTo', { devid: 0, domid: a.id });
  t.same(await one({ id: 4, gref: toA }), [{ id: 4, status: NETIF_RSP_ERROR }], 'a ref granted to another domain: error');
  t.same(await one({ id: 5, size: 3000 }), [{ id: 5, status: NETIF_RSP_ERROR }], 'larger than a frame: error');
  t.same(await one({ id: 6, size: 4 }), [{ id: 6, status: NETIF_RSP_ERROR }], 'shorter than an Ethernet header: error');
  await served('error responses');

  // Fatal: a request crossing its page (vif 0) and req_prod ahead of the ring (vif 1).
  t.equal(await one({ id: 8, offset: 3000, size: 1500 }), null, 'no response to a request crossing its page');
  await waitFor(async () => (await p.call('state', { devid: 0 })).state === '6', 10_000, 'vif 0 Closed');
  t.match((await p.call('state', { devid: 0 })).error, /crosses its page/, 'error node says why');
  await served('a page-crossing request');
  await p.call('reqProdAhead', { devid: 1 });
  await waitFor(async () => (await p.call('state', { devid: 1 })).state === '6', 10_000, 'vif 1 Closed');
  t.match((await p.call('state', { devid: 1 })).error, /ahead of the ring/, 'error node says why');
  await served('req_prod ahead of the ring');

  // The hostile domain goes; its back ends go with it.
  await xlOk(h, 'destroy', 'evil');
  const xs = await (await import('../host/xl.js')).xenstore(t, h);
  await waitFor(async () => !(await xs.directory('/local/domain/0/backend/vif').catch(() => [] as string[])).includes(String(evil)), 10_000, 'backend dirs gone');
  await served('the hostile domain was destroyed');

  // Its third vif failed to connect (a ring ref it never granted): netback
  // must still serve a guest created afterwards.
  const c = await netGuest(t, h, 'hc', `vif = ['bridge=xenbr0']`);
  t.match(await c.run(`ping -c 1 10.0.0.${b.id}`), /1 received, 0% packet loss/, 'a new guest is served after a failed connect');
});
