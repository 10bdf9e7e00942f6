// Constants from xen/include/public/event_channel.h (Xen 4.17).
// Argument structs travel as plain objects in xenemu's wire protocol
// (shared/wire/hypercall.ts); their field names are Xen's.

export type evtchn_port_t = number;

export const EVTCHNOP_bind_interdomain = 0;
export const EVTCHNOP_bind_virq = 1;
export const EVTCHNOP_bind_pirq = 2;
export const EVTCHNOP_close = 3;
export const EVTCHNOP_send = 4;
export const EVTCHNOP_status = 5;
export const EVTCHNOP_alloc_unbound = 6;
export const EVTCHNOP_bind_ipi = 7;
export const EVTCHNOP_bind_vcpu = 8;
export const EVTCHNOP_unmask = 9;
export const EVTCHNOP_reset = 10;
export const EVTCHNOP_init_control = 11;
export const EVTCHNOP_expand_array = 12;
export const EVTCHNOP_set_priority = 13;

/**
 * xenemu's own (above Xen's numbers): one more port for a global VIRQ the
 * caller has bound already (processes/hypervisor/event_channel.ts).
 */
export const XENEMU_EVTCHNOP_bind_virq_listener = 0x1000;

// evtchn_status.status
export const EVTCHNSTAT_closed = 0;
export const EVTCHNSTAT_unbound = 1;
export const EVTCHNSTAT_interdomain = 2;
export const EVTCHNSTAT_pirq = 3;
export const EVTCHNSTAT_virq = 4;
export const EVTCHNSTAT_ipi = 5;

// Hypervisor-internal channel states (xen/include/xen/event.h), kept for names.
export const ECS_FREE = 0;
export const ECS_RESERVED = 1;
export const ECS_UNBOUND = 2;
export const ECS_INTERDOMAIN = 3;
export const ECS_PIRQ = 4;
export const ECS_VIRQ = 5;
export const ECS_IPI = 6;

export interface evtchn_alloc_unbound { dom: number; remote_dom: number; port?: number }
export interface evtchn_bind_interdomain { remote_dom: number; remote_port: number; local_port?: number }
export interface evtchn_bind_virq { virq: number; vcpu: number; port?: number }
export interface evtchn_close { port: number }
export interface evtchn_send { port: number }
export interface evtchn_unmask { port: number }
export interface evtchn_status {
  dom: number;
  port: number;
  status?: number;
  vcpu?: number;
  unbound?: { dom: number };
  interdomain?: { dom: number; port: number };
  virq?: number;
}

// Byte layouts (x86_64) of the structs above, for Xen's C tools
// (xc_evtchn_alloc_unbound, xc_evtchn_status through privcmd);
// test/hypervisor/xen_layouts.test.ts checks them against event_channel.h.
export const evtchn_alloc_unbound = { dom: 0, remote_dom: 2, port: 4, SIZE: 8 } as const;
export const evtchn_bind_interdomain = { remote_dom: 0, remote_port: 4, local_port: 8, SIZE: 12 } as const;
export const evtchn_bind_virq = { virq: 0, vcpu: 4, port: 8, SIZE: 12 } as const;
/** struct evtchn_bind_pirq: IN pirq, flags (BIND_PIRQ__WILL_SHARE); OUT port. */
export const evtchn_bind_pirq = { pirq: 0, flags: 4, port: 8, SIZE: 12 } as const;
export const evtchn_close = { port: 0, SIZE: 4 } as const;
export const evtchn_send = { port: 0, SIZE: 4 } as const;
export const evtchn_unmask = { port: 0, SIZE: 4 } as const;
/** `u` is unbound.dom (u16), interdomain.{dom u16, port u32 at +4}, or virq (u32). */
export const evtchn_status = { dom: 0, port: 4, status: 8, vcpu: 12, u: 16, SIZE: 24 } as const;
