// The hypervisor's half of log-dirty (XEN_DOMCTL_shadow_op,
// processes/hypervisor/log_dirty.ts): the frames of a guest that others
// write through the hypervisor (a writable grant map, a GNTTABOP_copy into
// it, its memory given back), which write-protection of the guest's own
// mapping cannot see; a live migration's stop compares only those and the
// guest's own (docs/saverestore.md).
import t from 'tap';
import { probeDomU, probeHost } from '../helpers/probe.js';
import type { Probe } from '../../shared/wire/probe.js';
import { GNTCOPY_dest_gref, GNTST_okay } from '../../shared/abi/grant_table.js';
import { __HYPERVISOR_domctl, __HYPERVISOR_memory_op } from '../../shared/abi/xen.js';
import {
  XEN_DOMCTL_shadow_op, XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL, XEN_DOMCTL_SHADOW_OP_CLEAN, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY,
  XEN_DOMCTL_SHADOW_OP_OFF, XEN_DOMCTL_SHADOW_OP_PEEK,
} from '../../shared/abi/domctl.js';
import { XENMEM_decrease_reservation } from '../../shared/abi/memory.js';
import { XEN_EINVAL, XEN_EPERM } from '../../shared/abi/errno.js';


async function shadow(p: Probe, domid: number, op: number, mode = 0): Promise<{ ret: number; pfns: number[] }> {
  const r = await p.call('hypercall', { hop: __HYPERVISOR_domctl, cmd: XEN_DOMCTL_shadow_op, arg: { domain: domid, op, mode } });
  const pfns: number[] = [];
  const bm: Uint8Array | undefined = r.data?.dirty_bitmap;
  if (bm) for (let i = 0; i < bm.length * 8; i++) if (bm[i >> 3]! & (1 << (i & 7))) pfns.push(i);
  return { ret: r.ret, pfns };
}

t.test('log-dirty records the frames written through grants and given back, and a final look adds those mapped writable', async (t) => {
  const { h, d0 } = await probeHost(t, 512);
  const { domid: a, p: da } = await probeDomU(t, h, d0);
  const { domid: b, p: db } = await probeDomU(t, h, d0);

  t.equal((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN)).ret, -XEN_EINVAL, 'CLEAN without log-dirty: EINVAL');
  t.equal((await shadow(db, a, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY)).ret, -XEN_EPERM, 'a guest cannot turn it on for another');
  t.equal((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY)).ret, 0, 'Domain-0 turns it on');

  await da.call('writePage', { pfn: 5, text: 'the guest writes its own page' });
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN)).pfns, [], "the guest's own writes are not the hypervisor's to see");

  const rw = await da.call('grant', { domid: b, frame: 5 });
  const m = await db.call('map', { domid: a, ref: rw });
  await db.call('writeMapped', { handle: m.handle, text: 'a back end writes' });
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_PEEK)).pfns, [5], 'a writable map marks its frame (PEEK)');
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN)).pfns, [5], 'CLEAN reports it');
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN)).pfns, [], 'and clears it');
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN, XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL)).pfns, [5],
    'the final look reports the frame still mapped writable');
  t.equal(await db.call('unmap', { handle: m.handle }), GNTST_okay, 'the back end unmaps it');
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN)).pfns, [5], 'the unmap marks it again (gnttab_mark_dirty)');

  const ro = await da.call('grant', { domid: b, frame: 6, readonly: true });
  const mro = await db.call('map', { domid: a, ref: ro, readonly: true });
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN, XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL)).pfns, [], 'a read-only map marks nothing');
  await db.call('unmap', { handle: mro.handle });

  const dst = await da.call('grant', { domid: b, frame: 9 });
  await db.call('writePage', { pfn: 3, text: 'copied in' });
  const st = await db.call('copy', { copy: { source: { gmfn: 3, domid: 0x7ff0, offset: 0 }, dest: { ref: dst, domid: a, offset: 0 },
                                             len: 10, flags: GNTCOPY_dest_gref } });
  t.equal(st, GNTST_okay, 'a copy into a granted frame');
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN)).pfns, [9], 'marks its destination');

  const dec = await da.call('hypercall', { hop: __HYPERVISOR_memory_op, cmd: XENMEM_decrease_reservation, arg: { nr_extents: 1, extent_order: 0, extent_start: [40] } });
  t.equal(dec.ret, 1, 'the guest gives a frame back');
  t.same((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN)).pfns, [40], 'which is marked: the target must get its zeros');

  t.equal((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_OFF)).ret, 0, 'OFF');
  t.equal((await shadow(d0, a, XEN_DOMCTL_SHADOW_OP_CLEAN)).ret, -XEN_EINVAL, 'and nothing is logged any more');
});
