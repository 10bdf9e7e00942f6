// Only Dom0 may use domctl/sysctl or act on another domain (hypercall.ts).
import t from 'tap';
import { probeDomU, probeHost } from '../helpers/probe.js';
import { __HYPERVISOR_domctl, __HYPERVISOR_sysctl, __HYPERVISOR_event_channel_op, __HYPERVISOR_memory_op, __HYPERVISOR_console_io, CONSOLEIO_read } from '../../shared/abi/xen.js';
import { XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_createdomain, XENEMU_DOMCTL_getsegments, XEN_DOMCTL_destroydomain } from '../../shared/abi/domctl.js';
import { XEN_SYSCTL_physinfo } from '../../shared/abi/sysctl.js';
import { EVTCHNOP_alloc_unbound } from '../../shared/abi/event_channel.js';
import { XENMEM_current_reservation } from '../../shared/abi/memory.js';
import { XEN_EPERM, XEN_ENOSYS, XEN_ESRCH } from '../../shared/abi/errno.js';

t.test('DomU gets -EPERM for privileged hypercalls, Dom0 does not', async (t) => {
  const { h, d0 } = await probeHost(t, 512);
  const { domid, ret, p: du } = await probeDomU(t, h, d0);
  t.equal(ret, 0, 'Dom0 creates and unpauses a DomU');

  const denied: [string, number, number, object][] = [
    ['domctl getdomaininfo', __HYPERVISOR_domctl, XEN_DOMCTL_getdomaininfo, { domain: 0 }],
    ['domctl createdomain', __HYPERVISOR_domctl, XEN_DOMCTL_createdomain, { max_vcpus: 1, memory_kb: 1024 }],
    ['domctl destroydomain', __HYPERVISOR_domctl, XEN_DOMCTL_destroydomain, { domain: 0 }],
    ['xenemu getsegments', __HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: 0 }],
    ['sysctl physinfo', __HYPERVISOR_sysctl, XEN_SYSCTL_physinfo, {}],
    ['alloc_unbound in Dom0', __HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound, { dom: 0, remote_dom: domid }],
    ['memory_op on Dom0', __HYPERVISOR_memory_op, XENMEM_current_reservation, { domid: 0 }],
    ['console_io read', __HYPERVISOR_console_io, CONSOLEIO_read, {}],
  ];
  for (const [what, hop, cmd, arg] of denied) {
    const r = await du.call('hypercall', { hop, cmd, arg });
    t.equal(r.ret, -XEN_EPERM, `DomU: ${what} -> -EPERM`);
  }
  const own = await du.call('hypercall', { hop: __HYPERVISOR_memory_op, cmd: XENMEM_current_reservation, arg: { domid: 0x7ff0 } });
  t.equal(own.ret, 4096, 'DomU may ask about itself (16 MB = 4096 pages)');
  const unknown = await du.call('hypercall', { hop: 99, cmd: 0, arg: {} });
  t.equal(unknown.ret, -XEN_ENOSYS, 'unknown hypercall -> -ENOSYS');

  const phys = await d0.call('hypercall', { hop: __HYPERVISOR_sysctl, cmd: XEN_SYSCTL_physinfo, arg: {} });
  t.equal(phys.ret, 0);
  t.equal(phys.data.nr_cpus, 2);
  t.equal(phys.data.total_pages, 512 * 256);
  const info = await d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd: XEN_DOMCTL_getdomaininfo, arg: { domain: domid } });
  t.equal(info.ret, 0);
  t.equal(info.data.tot_pages, 4096);
  const none = await d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd: XEN_DOMCTL_getdomaininfo, arg: { domain: 4242 } });
  t.equal(none.ret, -XEN_ESRCH, 'missing domain -> -ESRCH');
});
