// Raising an event on a 2-level event channel port in a domain's shared_info
// (xen/common/event_2l.c evtchn_2l_set_pending, event_channel.c
// vcpu_mark_events_pending), for whoever writes another domain's
// shared_info: the hypervisor (processes/hypervisor/event_channel.ts) and a
// host PCI device posting its MSI to its owner's pirq port
// (docs/passthrough.md "Posted interrupts").
//
//   test_and_set(pending[P])           already pending   -> no upcall (coalesced)
//   test(mask[P])                      masked            -> no upcall (stays pending)
//   test_and_set(v.pending_sel[P/64])  already selected  -> no upcall
//   test_and_set(v.upcall_pending)     already set       -> no upcall
//   otherwise                          the caller kicks vCPU v (the only message)
//
// Every step is an atomic read-modify-write; the domain clears them in the
// reverse order (shared/xen/evtchn.ts), so any number of writers raising
// events at once send one upcall until the domain has caught up.
import { shared_info, vcpu_info, vcpuInfoOffset } from '../abi/xen.js';

// The bit arithmetic is written out: the send path allocates nothing.
const PENDING_WORD = shared_info.evtchn_pending >> 2;
const MASK_WORD = shared_info.evtchn_mask >> 2;

/** Sets `port` pending; true when vCPU `vcpu` must be kicked (upcall_pending went from 0 to 1). */
export function evtchn2lSetPending(si32: Int32Array, si8: Uint8Array, port: number, vcpu: number): boolean {
  const w = port >>> 5;
  const b = 1 << (port & 31);
  if (Atomics.or(si32, PENDING_WORD + w, b) & b) return false;
  if (Atomics.load(si32, MASK_WORD + w) & b) return false;
  return evtchn2lMarkSelector(si32, si8, port, vcpu);
}

/** The selector bit of a pending, unmasked `port`, then upcall_pending; true when the latter was clear. */
export function evtchn2lMarkSelector(si32: Int32Array, si8: Uint8Array, port: number, vcpu: number): boolean {
  const vi = vcpuInfoOffset(vcpu);
  const sel = port >>> 6;
  const si = ((vi + vcpu_info.evtchn_pending_sel) >> 2) + (sel >>> 5);
  const sb = 1 << (sel & 31);
  if (Atomics.or(si32, si, sb) & sb) return false;
  return Atomics.exchange(si8, vi + vcpu_info.evtchn_upcall_pending, 1) === 0;
}
