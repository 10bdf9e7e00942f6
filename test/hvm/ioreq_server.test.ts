// The hypervisor's side of HVM guests (processes/hypervisor/hvm.ts): HVM
// parameters, ioreq servers through dm_op, their pages through
// XENMEM_acquire_resource, interrupt lines, and who may do what: Domain-0
// (here through its privcmd endpoint, as qemu-dm does) and a domain made the
// target's device model by XEN_DOMCTL_set_target, never the guest itself or
// another guest.
import t from 'tap';
import { probeDomU, probeHost } from '../helpers/probe.js';
import { HypervisorClient } from '../../shared/xen/hypervisor.js';
import { privcmdEndpoint } from '../../shared/wire/hypercall.js';
import { shmOpen } from '../../shared/shm.js';
import { __HYPERVISOR_dm_op, __HYPERVISOR_hvm_op, __HYPERVISOR_memory_op, __HYPERVISOR_domctl, PAGE_SIZE } from '../../shared/abi/xen.js';
import { XEN_DOMCTL_CDF_hvm, XEN_DOMCTL_set_target, XENEMU_DOMCTL_getsegments } from '../../shared/abi/domctl.js';
import { XENMEM_acquire_resource, XENMEM_resource_ioreq_server } from '../../shared/abi/memory.js';
import * as DM from '../../shared/abi/hvm/dm_op.js';
import * as P from '../../shared/abi/hvm/params.js';
import { ioreq, sharedIopageSlot } from '../../shared/abi/hvm/ioreq.js';
import { XENEMU_HVM_SEGMENT_PAGES, bufioreqPageOffset, hvm_ctl, ioreqPageOffset, readRanges } from '../../shared/abi/hvm/xenemu_hvm.js';
import { XEN_EEXIST, XEN_EINVAL, XEN_ENOENT, XEN_EPERM } from '../../shared/abi/errno.js';

t.test('ioreq servers, HVM params and interrupt lines, with XSM_DM_PRIV and XSM_TARGET rights', async (t) => {
  const { h, d0 } = await probeHost(t, 512);
  const { domid: hvm, ret, p: guest } = await probeDomU(t, h, d0, { flags: XEN_DOMCTL_CDF_hvm });
  t.equal(ret, 0, 'an HVM domain is created and runs');
  const { domid: other, p: pv } = await probeDomU(t, h, d0);

  const pc = HypervisorClient.privcmd(privcmdEndpoint(h.rundir));
  t.teardown(() => pc.close());
  t.equal((await pc.hello()).domid, 0, 'a privcmd handle is Domain-0');
  const dm = (op: number, arg: object, dom = hvm) => pc.hypercall(__HYPERVISOR_dm_op, 0, { domid: dom, op, ...arg });

  const seg = await pc.hypercall<{ hvm?: string }>(__HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: hvm });
  t.ok(seg.data?.hvm, 'an HVM domain has an HVM segment');
  const pvSeg = await pc.hypercall<{ hvm?: string }>(__HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: other });
  t.equal(pvSeg.data?.hvm, undefined, 'a PV domain has none');
  const sab = shmOpen(seg.data!.hvm!, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  const i32 = new Int32Array(sab);
  const dv = new DataView(sab);

  const c = await dm(DM.XEN_DMOP_create_ioreq_server, { handle_bufioreq: P.HVM_IOREQSRV_BUFIOREQ_ATOMIC });
  t.same(c, { ret: 0, data: { id: 0 } }, 'create_ioreq_server gives server 0');
  const info = await dm(DM.XEN_DMOP_get_ioreq_server_info, { id: 0, flags: DM.XEN_DMOP_no_gfns }) as { ret: number; data: { vp_eport: number[]; bufioreq_port: number } };
  t.equal(info.ret, 0);
  t.equal(dv.getUint32(ioreqPageOffset(0) + sharedIopageSlot(0) + ioreq.vp_eport, true), info.data.vp_eport[0],
    "vCPU 0's ioreq_t carries its vp_eport");
  t.ok(info.data.bufioreq_port > 0, 'a buffered-ioreq port');
  t.equal((await dm(DM.XEN_DMOP_get_ioreq_server_info, { id: 0, flags: 0 })).ret, -95, 'no guest frames: only acquire_resource');

  t.equal((await dm(DM.XEN_DMOP_map_io_range_to_ioreq_server, { id: 0, type: DM.XEN_DMOP_IO_RANGE_PORT, start: 0x3f8, end: 0x3ff })).ret, 0);
  t.equal((await dm(DM.XEN_DMOP_map_io_range_to_ioreq_server, { id: 0, type: DM.XEN_DMOP_IO_RANGE_PORT, start: 0x3fa, end: 0x3fa })).ret,
    -XEN_EEXIST, 'an overlapping range of the same server');
  t.equal((await dm(DM.XEN_DMOP_map_io_range_to_ioreq_server, { id: 0, type: DM.XEN_DMOP_IO_RANGE_PORT, start: 0x10, end: 0x10000 })).ret,
    -XEN_EINVAL, 'ports end at 0xffff');
  t.equal((await dm(DM.XEN_DMOP_map_io_range_to_ioreq_server, { id: 0, type: DM.XEN_DMOP_IO_RANGE_MEMORY, start: 0xa0000, end: 0xbffff })).ret, 0);
  t.same(readRanges(i32, dv).ranges, [], 'a disabled server routes nothing');
  t.equal((await dm(DM.XEN_DMOP_set_ioreq_server_state, { id: 0, enabled: 1 })).ret, 0);
  t.same(readRanges(i32, dv).ranges.map((r) => [r.server, r.type, Number(r.start), Number(r.end)]),
    [[0, 0, 0x3f8, 0x3ff], [0, 1, 0xa0000, 0xbffff]], 'enabled: its ranges are published to the vCPU');
  t.equal((await dm(DM.XEN_DMOP_unmap_io_range_from_ioreq_server, { id: 0, type: DM.XEN_DMOP_IO_RANGE_PORT, start: 0x3f8, end: 0x3ff })).ret, 0);
  t.equal(readRanges(i32, dv).ranges.length, 1, 'unmapped');
  t.equal((await dm(DM.XEN_DMOP_unmap_io_range_from_ioreq_server, { id: 0, type: DM.XEN_DMOP_IO_RANGE_PORT, start: 0x3f8, end: 0x3ff })).ret,
    -XEN_ENOENT, 'unmapping again');

  const res = await pc.hypercall<{ segment: string; frames: number[] }>(__HYPERVISOR_memory_op, XENMEM_acquire_resource,
    { domid: hvm, type: XENMEM_resource_ioreq_server, id: 0, frame: 0, nr_frames: 2 });
  t.same(res.data && { segment: res.data.segment, frames: res.data.frames }, { segment: seg.data!.hvm, frames: [bufioreqPageOffset(0), ioreqPageOffset(0)] },
    'acquire_resource: the buffered page, then the synchronous one');

  const gen = Atomics.load(i32, hvm_ctl.irq_gen >> 2);
  t.equal((await dm(DM.XEN_DMOP_set_isa_irq_level, { isa_irq: 4, level: 1 })).ret, 0);
  t.equal(Atomics.load(i32, hvm_ctl.isa_irq_level >> 2), 1 << 4, 'ISA IRQ 4 asserted');
  t.ok(Atomics.load(i32, hvm_ctl.irq_gen >> 2) > gen, 'and the vCPU told');
  t.equal((await dm(DM.XEN_DMOP_set_pci_intx_level, { domain: 0, bus: 0, device: 3, intx: 0, level: 1 })).ret, 0);
  t.equal(Atomics.load(i32, hvm_ctl.pci_intx_level >> 2), 1 << 12, 'INTA# of device 3');
  t.equal((await dm(DM.XEN_DMOP_set_pci_link_route, { link: 2, isa_irq: 11 })).ret, 0);
  t.equal(Atomics.load(i32, (hvm_ctl.pci_link_route >> 2) + 2), 11, 'PCI link C routed to IRQ 11');
  t.equal((await dm(DM.XEN_DMOP_set_isa_irq_level, { isa_irq: 16, level: 1 })).ret, -XEN_EINVAL, 'no ISA IRQ 16');

  t.equal((await pc.hypercall(__HYPERVISOR_hvm_op, P.HVMOP_set_param, { domid: hvm, index: P.HVM_PARAM_TIMER_MODE, value: 1 })).ret, 0);
  t.same((await pc.hypercall(__HYPERVISOR_hvm_op, P.HVMOP_get_param, { domid: hvm, index: P.HVM_PARAM_TIMER_MODE })).data,
    { index: P.HVM_PARAM_TIMER_MODE, value: 1n }, 'a parameter reads back');
  t.equal((await pc.hypercall(__HYPERVISOR_hvm_op, P.HVMOP_get_param, { domid: other, index: 1 })).ret, -XEN_EINVAL,
    'a PV domain has no HVM parameters');
  t.equal((await dm(DM.XEN_DMOP_create_ioreq_server, { handle_bufioreq: 0 }, other)).ret, -XEN_EINVAL, 'nor ioreq servers');

  // The guest itself and another guest.
  const call = (p: typeof guest, hop: number, cmd: number, arg: object) => p.call('hypercall', { hop, cmd, arg }) as Promise<{ ret: number }>;
  t.equal((await call(guest, __HYPERVISOR_dm_op, 0, { domid: hvm, op: DM.XEN_DMOP_set_isa_irq_level, isa_irq: 1, level: 1 })).ret,
    -XEN_EPERM, 'a guest may not drive its own device model operations');
  t.equal((await call(guest, __HYPERVISOR_memory_op, XENMEM_acquire_resource, { domid: hvm, type: 0, id: 0, frame: 1, nr_frames: 1 })).ret,
    -XEN_EPERM, 'nor map its ioreq pages');
  t.equal((await call(guest, __HYPERVISOR_hvm_op, P.HVMOP_get_param, { domid: hvm, index: P.HVM_PARAM_TIMER_MODE })).ret, 0,
    'it may read its own parameters');
  t.equal((await call(guest, __HYPERVISOR_hvm_op, P.HVMOP_set_param, { domid: hvm, index: P.HVM_PARAM_IOREQ_PFN, value: 5 })).ret,
    -XEN_EPERM, 'but not move its special pages');
  t.equal((await call(pv, __HYPERVISOR_dm_op, 0, { domid: hvm, op: DM.XEN_DMOP_nr_vcpus })).ret, -XEN_EPERM, 'another guest may not');

  // A device model domain (what a stub domain is): rights over its target only.
  t.equal((await pc.hypercall(__HYPERVISOR_domctl, XEN_DOMCTL_set_target, { domain: other, target: hvm })).ret, 0);
  t.equal((await call(pv, __HYPERVISOR_dm_op, 0, { domid: hvm, op: DM.XEN_DMOP_nr_vcpus })).ret, 0, 'its device model may');
  t.equal((await call(pv, __HYPERVISOR_dm_op, 0, { domid: 0, op: DM.XEN_DMOP_nr_vcpus })).ret, -XEN_EPERM, 'on Domain-0 it may not');
  t.equal((await pc.hypercall(__HYPERVISOR_domctl, XEN_DOMCTL_set_target, { domain: hvm, target: other })).ret, -XEN_EINVAL,
    'a target that has a target of its own is refused');

  t.equal((await dm(DM.XEN_DMOP_destroy_ioreq_server, { id: 0 })).ret, 0);
  t.same(readRanges(i32, dv).ranges, [], 'a destroyed server routes nothing');
  t.equal(Atomics.load(i32, (hvm_ctl.server_state >> 2) + 0), 0, 'and is gone from the table');
});
