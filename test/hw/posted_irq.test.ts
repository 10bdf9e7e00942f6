// The posted-interrupt table (shared/hw/posted_irq.ts) and the 2-level
// set-pending a device runs with it (shared/xen/evtchn_2l.ts): what the
// hypervisor publishes is what the device finds, revoked entries are gone,
// and a posted event asks for a wake-up exactly when Xen's chain would send
// an upcall.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { PostedIrqTable, postable, pciPostedSegment } from '../../shared/hw/posted_irq.js';
import { shmUnlink } from '../../shared/shm.js';
import { evtchn2lSetPending } from '../../shared/xen/evtchn_2l.js';
import { PAGE_SIZE, shared_info, vcpu_info, vcpuInfoOffset } from '../../shared/abi/xen.js';

t.test('the table: bindings published by the hypervisor, found by the device, revoked', async (t) => {
  const name = pciPostedSegment(`t${randomBytes(4).toString('hex')}`, '0000:03:00.0');
  t.teardown(() => shmUnlink(name));
  const hv = PostedIrqTable.create(name);
  const dev = PostedIrqTable.open(name);
  t.equal(dev.lookup(48), -1, 'empty at first');
  hv.publish([{ pirq: 48, port: 7, vcpu: 0 }, { pirq: 49, port: 4095, vcpu: 31 }, { pirq: 50, port: 4096, vcpu: 0 }, { pirq: 256, port: 3, vcpu: 0 }]);
  t.equal(dev.lookup(48), 7 << 8, 'pirq 48 -> port 7, vCPU 0');
  t.equal(dev.lookup(49), 4095 << 8 | 31, 'the largest port and vCPU fit');
  t.equal(dev.lookup(50), -1, 'a port past the 2-level ABI is left to the hypervisor');
  t.equal(dev.lookup(0), -1, 'pirq 256 does not alias pirq 0');
  t.notOk(postable({ pirq: 1, port: 0, vcpu: 0 }), 'port 0 is never bound');
  hv.publish([{ pirq: 49, port: 9, vcpu: 1 }]);
  t.equal(dev.lookup(48), -1, 'a binding left out of the next publish is revoked');
  t.equal(dev.lookup(49), 9 << 8 | 1, 'a binding rewritten');
  hv.publish([]);
  t.equal(dev.lookup(49), -1, 'all revoked');
  t.throws(() => PostedIrqTable.open(pciPostedSegment('no-such-host', '0000:03:00.0')), 'no table: open fails');
});

t.test('setting an event pending: a wake-up only when upcall_pending goes 0 -> 1 (Xen\'s 2-level chain)', async (t) => {
  const si = new SharedArrayBuffer(PAGE_SIZE);
  const i32 = new Int32Array(si);
  const u8 = new Uint8Array(si);
  const pending = (port: number) => (Atomics.load(i32, (shared_info.evtchn_pending >> 2) + (port >> 5)) >>> (port & 31)) & 1;
  const upcall = (vcpu: number) => u8[vcpuInfoOffset(vcpu) + vcpu_info.evtchn_upcall_pending]!;
  const clearUpcall = (vcpu: number) => { u8[vcpuInfoOffset(vcpu) + vcpu_info.evtchn_upcall_pending] = 0; };
  t.equal(evtchn2lSetPending(i32, u8, 5, 0), true, 'first event: kick');
  t.equal(upcall(0), 1, 'upcall_pending set');
  t.equal(evtchn2lSetPending(i32, u8, 5, 0), false, 'the same port again: coalesced');
  t.equal(evtchn2lSetPending(i32, u8, 6, 0), false, 'another port of the same selector word: no second kick');
  clearUpcall(0);
  t.equal(evtchn2lSetPending(i32, u8, 70, 0), true, 'a port of another selector word after the guest cleared upcall_pending: kick');
  Atomics.or(i32, (shared_info.evtchn_mask >> 2) + (100 >> 5), 1 << (100 & 31));
  clearUpcall(0);
  t.equal(evtchn2lSetPending(i32, u8, 100, 0), false, 'a masked port: no kick');
  t.equal(pending(100), 1, 'but it stays pending');
  t.equal(upcall(0), 0, 'upcall_pending left alone');
  t.equal(evtchn2lSetPending(i32, u8, 200, 3), true, 'vCPU 3: its own selector and upcall_pending');
  t.equal(upcall(3), 1);
});
