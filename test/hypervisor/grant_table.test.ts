// Grant checks: grantee domid, GTF_readonly, GTF_reading/GTF_writing while mapped, bad refs.
import t from 'tap';
import { probeDomU, probeHost } from '../helpers/probe.js';
import { GNTCOPY_source_gref, GNTST_bad_domain, GNTST_bad_gntref, GNTST_bad_handle, GNTST_general_error, GNTST_okay, GNTST_bad_page } from '../../shared/abi/grant_table.js';

t.test('grant map, unmap and copy are checked by the hypervisor', async (t) => {
  const { h, d0 } = await probeHost(t, 512);
  const { domid: a, p: da } = await probeDomU(t, h, d0);
  const { domid: b, p: db } = await probeDomU(t, h, d0);

  await da.call('writePage', { pfn: 5, text: 'hello from the granter' });
  const ro = await da.call('grant', { domid: b, frame: 5, readonly: true });
  const rw = await da.call('grant', { domid: b, frame: 5 });

  t.same(await d0.call('map', { domid: a, ref: ro, readonly: true }), { error: GNTST_general_error }, 'wrong grantee refused');
  t.same(await db.call('map', { domid: a, ref: ro }), { error: GNTST_general_error }, 'writable map of a r/o grant refused');
  t.same(await db.call('map', { domid: a, ref: 4000000 }), { error: GNTST_bad_gntref }, 'ref out of range');
  t.same(await db.call('map', { domid: a, ref: 100 }), { error: GNTST_general_error }, 'unused ref');
  t.same(await db.call('map', { domid: 777, ref: ro }), { error: GNTST_bad_domain }, 'no such granter');
  const badFrame = await da.call('grant', { domid: b, frame: 999999 });
  t.same(await db.call('map', { domid: a, ref: badFrame }), { error: GNTST_bad_page }, 'frame the granter does not own');

  const m1 = await db.call('map', { domid: a, ref: ro, readonly: true });
  t.equal(m1.text, 'hello from the granter', 'read-only map sees the page');
  const m2 = await db.call('map', { domid: a, ref: rw });
  await db.call('writeMapped', { handle: m2.handle, text: 'written by the grantee' });
  t.equal((await db.call('map', { domid: a, ref: ro, readonly: true })).text, 'written by the grantee', 'writes are shared');

  t.equal(await da.call('endAccess', { ref: rw }), false, 'cannot end access while mapped (GTF_writing)');
  t.equal(await db.call('unmap', { handle: m2.handle }), GNTST_okay);
  t.equal(await da.call('endAccess', { ref: rw }), true, 'can once unmapped');
  t.equal(await db.call('unmap', { handle: m2.handle }), GNTST_bad_handle, 'double unmap: bad handle');
  t.same(await db.call('map', { domid: a, ref: rw }), { error: GNTST_general_error }, 'ended grant cannot be mapped');

  // GNTTABOP_copy from a grant into the caller's own frame.
  const st = await db.call('copy', { copy: { source: { ref: ro, domid: a, offset: 0 }, dest: { gmfn: 7, domid: 0x7ff0, offset: 0 },
                                             len: 22, flags: GNTCOPY_source_gref } });
  t.equal(st, GNTST_okay, 'copy from a grant');
  const bad = await d0.call('copy', { copy: { source: { ref: ro, domid: a, offset: 0 }, dest: { gmfn: 7, domid: 0x7ff0, offset: 0 },
                                              len: 22, flags: GNTCOPY_source_gref } });
  t.equal(bad, GNTST_general_error, 'copy by a domain the grant is not for');
});
