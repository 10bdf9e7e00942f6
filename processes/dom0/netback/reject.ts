// Why netback refuses a front end's input: one name per check, counted and
// logged under that name (../backend_stats.ts), so that a test or a user sees
// which check fired. The checks are Linux xen-netback's (netback.c:
// xenvif_tx_build_gops, xenvif_count_requests, xenvif_get_extras,
// xenvif_tx_check_gop; rx.c; xenbus.c: connect_data_rings), with what each
// does to the packet or the vif. "tx" and "rx" are io/netif.h's rings: tx
// carries the guest's packets out, rx brings packets in.
import { reasonNames } from '../backend_stats.js';

export const NETIF_REJECT_REASONS = {
  /** NETIF_RSP_ERROR. Linux: "Bad packet size". */
  runt_frame: 'a tx request smaller than an Ethernet header (14 bytes)',
  /** NETIF_RSP_ERROR. No feature-sg, no GSO: a frame is one slot of at most MTU + header. */
  oversized_frame: 'a tx request larger than a frame (1514 bytes: MTU 1500 and the Ethernet header)',
  /** NETIF_RSP_ERROR. Linux: "Grant copy of header failed". */
  bad_gref: 'a tx request whose gref the hypervisor refused to copy from (not granted to Domain-0, or outside the grant table)',
  /** NETIF_RSP_ERROR on every slot of the packet. Linux builds a multi-slot packet; xenemu offers feature-sg=0. */
  more_data_unsupported: 'a tx packet of several slots (NETTXF_more_data) although netback offers feature-sg=0; counted once per packet',
  /** NETIF_RSP_ERROR on the request, NETIF_RSP_NULL on each extra slot. */
  extra_info_unsupported: 'a tx packet with extra info slots (NETTXF_extra_info: GSO, multicast, hash) although netback offers none of them',
  /** Disconnect. Linux: "Invalid extra type" (xenvif_fatal_tx_err). */
  bad_extra_type: 'an extra info slot of type NONE or past XEN_NETIF_EXTRA_TYPE_MAX: the vif is disconnected',
  /** Disconnect. Linux: "Cross page boundary" (xenvif_fatal_tx_err). */
  page_crossing: 'a tx request whose offset + size runs past its page: the vif is disconnected',
  /** Disconnect. Linux: "Impossible number of requests" (xenvif_fatal_tx_err). */
  tx_req_prod_overflow: 'a tx req_prod more than the ring ahead of the unanswered requests: the vif is disconnected',
  /** Disconnect. */
  rx_req_prod_overflow: 'an rx req_prod more than the ring ahead of the unanswered requests: the vif is disconnected',
  /** The packet is dropped, NETIF_RSP_ERROR in the rx response. */
  bad_rx_gref: 'an rx request whose gref the hypervisor refused to copy into (not granted to Domain-0 writable, or outside the grant table)',
  /** The packet is dropped (Linux: the rx queue is full, rx_dropped). */
  no_rx_buffers: 'a packet for the guest dropped: it posted no rx buffers for the packets queued before it (512), or for any while Domain-0\'s packet frames run short (a guest too slow for a flood of traffic too)',
  /** The vif does not connect. Linux connect_data_rings: "reading %s/tx-ring-ref", mapping failing. */
  bad_ring_ref: 'a tx-ring-ref or rx-ring-ref missing, not a number, or refused by the hypervisor: the vif does not connect',
  /** The vif does not connect. */
  bad_event_channel: 'an event-channel missing, not a number, or that cannot be bound: the vif does not connect',
  /** The vif does not connect. Linux: "frontend does not support rx-copy". */
  no_rx_copy: 'a front end without request-rx-copy=1 (rx-flip is not offered): the vif does not connect',
} as const;

export type NetifReject = keyof typeof NETIF_REJECT_REASONS;
/** `NetifReject.bad_gref` names the reason `bad_gref`. */
export const NetifReject = reasonNames(NETIF_REJECT_REASONS);
export const NETIF_REJECTS = Object.keys(NETIF_REJECT_REASONS) as NetifReject[];
