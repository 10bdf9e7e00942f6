// Regressions for guest-controlled hypercall arguments:
//  - increase_reservation naming pfns the guest already has charged the host
//    a page per extent while the guest's own count stayed put, so one guest
//    could drain the host's free memory;
//  - a target domid that is not a number (a crafted msgpack map) threw out of
//    the dispatcher and ended that domain's hypercall channel for good.
import t from 'tap';
import { probeDomU, probeHost } from '../helpers/probe.js';
import { __HYPERVISOR_sysctl, __HYPERVISOR_memory_op, __HYPERVISOR_event_channel_op, __HYPERVISOR_console_io, CONSOLEIO_write } from '../../shared/abi/xen.js';
import { XEN_SYSCTL_physinfo } from '../../shared/abi/sysctl.js';
import { XENMEM_decrease_reservation, XENMEM_increase_reservation } from '../../shared/abi/memory.js';
import { EVTCHNOP_alloc_unbound } from '../../shared/abi/event_channel.js';
import { XEN_EINVAL } from '../../shared/abi/errno.js';

t.test('increase_reservation of pfns already owned charges nothing', async (t) => {
  const { h, d0 } = await probeHost(t, 256);
  const free = async () => (await d0.call('hypercall', { hop: __HYPERVISOR_sysctl, cmd: XEN_SYSCTL_physinfo })).data.free_pages;
  const { p: du } = await probeDomU(t, h, d0, { memory_kb: 32 * 1024, max_memkb: 64 * 1024 });
  const mem = (cmd: number, arg: object) => du.call('hypercall', { hop: __HYPERVISOR_memory_op, cmd, arg: { domid: 0x7ff0, ...arg } });
  t.equal((await mem(XENMEM_decrease_reservation, { nr_extents: 1, extent_order: 0, extent_start: [100] })).ret, 1);
  const before = await free();
  const r = await mem(XENMEM_increase_reservation, { nr_extents: 5000, extent_order: 0, extent_start: new Array(5000).fill(5) });
  t.ok(r.ret <= 0, `no extent populated (ret ${r.ret})`);
  t.equal(await free(), before, 'the host\'s free memory did not move');
  t.equal((await mem(XENMEM_increase_reservation, { nr_extents: 1, extent_order: 0, extent_start: [100] })).ret, 1, 'the freed pfn comes back');
  t.equal(await free(), before - 1);
});

t.test('a target domid that is not a number is EINVAL, and the channel lives on', async (t) => {
  const { h, d0 } = await probeHost(t, 256);
  const { p: du } = await probeDomU(t, h, d0, { memory_kb: 16 * 1024 });
  for (const dom of [{ toString: 1, valueOf: 1 }, 'abc', 1.5, [1]]) {
    const r = await du.call('hypercall', { hop: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_alloc_unbound, arg: { dom, remote_dom: 0 } });
    t.equal(r.ret, -XEN_EINVAL, `dom ${JSON.stringify(dom)}`);
  }
  const w = await du.call('hypercall', { hop: __HYPERVISOR_console_io, cmd: CONSOLEIO_write, arg: { text: 'still here\n' } });
  t.ok(w.ret >= 0, 'the next hypercall is answered');
});
