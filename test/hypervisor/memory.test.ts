// Host memory accounting: refusal with -ENOMEM, ballooning gives pages back.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeDomU, probeHost } from '../helpers/probe.js';
import { __HYPERVISOR_domctl, __HYPERVISOR_sysctl, __HYPERVISOR_memory_op } from '../../shared/abi/xen.js';
import { XEN_DOMCTL_createdomain } from '../../shared/abi/domctl.js';
import { XEN_SYSCTL_physinfo } from '../../shared/abi/sysctl.js';
import { XENMEM_current_reservation, XENMEM_decrease_reservation, XENMEM_increase_reservation } from '../../shared/abi/memory.js';
import { XEN_ENOMEM } from '../../shared/abi/errno.js';

t.test('createdomain beyond free memory is refused, ballooning adjusts accounting', async (t) => {
  const { h, d0 } = await probeHost(t, 256); // Dom0 gets 64 MB
  const phys = async () => (await d0.call('hypercall', { hop: __HYPERVISOR_sysctl, cmd: XEN_SYSCTL_physinfo })).data;
  const before = await phys();
  t.equal(before.free_pages, (256 - 64) * 256, 'Dom0 took its share');

  const big = await d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd: XEN_DOMCTL_createdomain,
                                           arg: { max_vcpus: 1, memory_kb: 300 * 1024 } });
  t.equal(big.ret, -XEN_ENOMEM, '300 MB on a 256 MB host -> -ENOMEM');
  const log = readFileSync(join(h.rundir, 'logs', 'hypervisor.log'), 'utf8');
  t.match(log, /memory: refusing domain creation .* pages .* asked, \d+ pages .* free/, 'with a clear log line');
  t.equal((await phys()).free_pages, before.free_pages, 'nothing leaked by the refusal');

  const { p: du } = await probeDomU(t, h, d0, { memory_kb: 32 * 1024, max_memkb: 64 * 1024 });
  t.equal((await phys()).free_pages, before.free_pages - 32 * 256, 'the DomU is charged');
  const cur = async () => (await du.call('hypercall', { hop: __HYPERVISOR_memory_op, cmd: XENMEM_current_reservation, arg: { domid: 0x7ff0 } })).ret;
  t.equal(await cur(), 32 * 256);

  await du.call('writePage', { pfn: 10, text: 'balloon me' });
  const dec = await du.call('hypercall', { hop: __HYPERVISOR_memory_op, cmd: XENMEM_decrease_reservation,
                                            arg: { domid: 0x7ff0, nr_extents: 3, extent_order: 0, extent_start: [10, 11, 12] } });
  t.equal(dec.ret, 3, 'three frames ballooned out');
  t.equal(await cur(), 32 * 256 - 3);
  t.equal((await phys()).free_pages, before.free_pages - 32 * 256 + 3, 'the host got them back');

  const inc = await du.call('hypercall', { hop: __HYPERVISOR_memory_op, cmd: XENMEM_increase_reservation,
                                            arg: { domid: 0x7ff0, nr_extents: 40 * 256, extent_order: 0 } });
  t.equal(inc.ret, 32 * 256 + 3, 'increase stops at max_pages (64 MB)');
  t.equal(await cur(), 64 * 256);
});
