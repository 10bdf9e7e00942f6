// Event channels: consent, upcall only on the 0 -> 1 transition, masking, close.
import t from 'tap';
import { waitFor } from '../helpers/host.js';
import { probeDomU, probeHost } from '../helpers/probe.js';
import { EVTCHNSTAT_interdomain, EVTCHNSTAT_unbound } from '../../shared/abi/event_channel.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';

t.test('2-level event channel semantics between Dom0 and a DomU', async (t) => {
  const { h, d0 } = await probeHost(t, 512);
  const { domid: a, p: da } = await probeDomU(t, h, d0);
  const { p: db } = await probeDomU(t, h, d0);

  // Consent: a port Dom0 allocated for `a` cannot be bound by `b`.
  const p0 = await d0.call('allocUnbound', { remoteDom: a });
  t.match(await db.call('bindInterdomain', { remoteDom: 0, remotePort: p0 }), { error: /EINVAL/ }, 'other domain: -EINVAL');
  t.match(await da.call('bindInterdomain', { remoteDom: 0, remotePort: 9999 }), { error: /EINVAL/ }, 'bad port: -EINVAL');
  const pa = await da.call('bindInterdomain', { remoteDom: 0, remotePort: p0 });
  t.ok(pa > 0, 'the named domain binds');
  await d0.call('listen', { port: p0 });
  const st = await d0.call('status', { port: p0 });
  t.same([st.status, st.interdomain], [EVTCHNSTAT_interdomain, { dom: a, port: pa }]);

  // Binding raises one event on the binder's port, as Xen does.
  await waitFor(async () => (await da.call('events')).events[pa] === 1, 5000, 'bind event');

  // Upcall only on transition: while `a` does not scan, many sends = one upcall.
  const base = (await da.call('events')).upcalls;
  await da.call('hold', { on: true });
  await d0.call('notify', { port: p0, count: 50 });
  await d0.call('send', { port: p0 }); // an awaited send orders after the notifies
  await waitFor(async () => (await da.call('events')).upcalls === base + 1, 5000, 'one upcall');
  t.equal((await da.call('events')).upcalls, base + 1, '51 sends, one upcall');
  await da.call('hold', { on: false });
  await waitFor(async () => (await da.call('events')).events[pa] === 2, 5000, 'coalesced event');
  t.equal((await da.call('events')).events[pa], 2, 'and the handler ran once for them');

  // Masked: the event stays pending, no upcall; unmask delivers it.
  await da.call('mask', { port: pa });
  const before = (await da.call('events')).upcalls;
  t.equal(await d0.call('send', { port: p0 }), 0);
  t.equal(await da.call('pending', { port: pa }), true, 'pending while masked');
  t.equal((await da.call('events')).upcalls, before, 'no upcall for a masked port');
  await da.call('unmask', { port: pa });
  await waitFor(async () => (await da.call('events')).events[pa] === 3, 5000, 'delivery on unmask');

  // The other direction, fire-and-forget from the DomU.
  await da.call('notify', { port: pa, count: 1 });
  await waitFor(async () => (await d0.call('events')).events[p0] >= 1, 5000, 'Dom0 sees the DomU');

  // Close: the peer's end goes back to unbound.
  t.equal(await da.call('close', { port: pa }), 0);
  const after = await d0.call('status', { port: p0 });
  t.equal(after.status, EVTCHNSTAT_unbound, 'peer sees ECS_UNBOUND');
  t.equal(await da.call('send', { port: pa }), -XEN_EINVAL, 'closed port: -EINVAL');
});
