// Layouts and constants from xen/include/public/io/netif.h (Xen 4.17).
//
// Two shared rings per vif, each one page with io/ring.h's 64-byte header
// (req_prod, req_event, rsp_prod, rsp_event, pad) followed by the slots:
//
//   tx ring: slot = union { netif_tx_request (12 bytes), netif_tx_response (4) }  -> 12 bytes
//   rx ring: slot = union { netif_rx_request (8 bytes),  netif_rx_response (8) }  -> 8 bytes
//
// __RING_SIZE rounds (PAGE_SIZE - 64) / slot down to a power of two: 256 for both.
// Little-endian as on x86. Codecs only; no I/O.
import { __RING_SIZE } from './ring.js';

/** Bytes of io/ring.h's sring header before ring[0]. */
export const NETIF_SRING_HEADER = 64;

export const _NETTXF_csum_blank = 0;
export const NETTXF_csum_blank = 1 << _NETTXF_csum_blank;
export const _NETTXF_data_validated = 1;
export const NETTXF_data_validated = 1 << _NETTXF_data_validated;
export const _NETTXF_more_data = 2;
export const NETTXF_more_data = 1 << _NETTXF_more_data;
export const _NETTXF_extra_info = 3;
export const NETTXF_extra_info = 1 << _NETTXF_extra_info;

export const XEN_NETIF_MAX_TX_SIZE = 0xffff;
export const XEN_NETIF_NR_SLOTS_MIN = 18;

export const _NETRXF_data_validated = 0;
export const NETRXF_data_validated = 1 << _NETRXF_data_validated;
export const _NETRXF_csum_blank = 1;
export const NETRXF_csum_blank = 1 << _NETRXF_csum_blank;
export const _NETRXF_more_data = 2;
export const NETRXF_more_data = 1 << _NETRXF_more_data;
export const _NETRXF_extra_info = 3;
export const NETRXF_extra_info = 1 << _NETRXF_extra_info;
export const _NETRXF_gso_prefix = 4;
export const NETRXF_gso_prefix = 1 << _NETRXF_gso_prefix;

export const XEN_NETIF_EXTRA_TYPE_NONE = 0;
export const XEN_NETIF_EXTRA_TYPE_GSO = 1;
export const XEN_NETIF_EXTRA_TYPE_MCAST_ADD = 2;
export const XEN_NETIF_EXTRA_TYPE_MCAST_DEL = 3;
export const XEN_NETIF_EXTRA_TYPE_HASH = 4;
export const XEN_NETIF_EXTRA_TYPE_MAX = 5;
export const XEN_NETIF_EXTRA_FLAG_MORE = 1 << 0;

export const NETIF_RSP_DROPPED = -2;
export const NETIF_RSP_ERROR = -1;
export const NETIF_RSP_OKAY = 0;
/** No response: used only for padding slots of extra info. */
export const NETIF_RSP_NULL = 1;

// struct netif_tx_request { grant_ref_t gref; uint16_t offset, flags, id, size; }
export const netif_tx_request = { gref: 0, offset: 4, flags: 6, id: 8, size: 10, SIZE: 12 } as const;
// struct netif_tx_response { uint16_t id; int16_t status; }
export const netif_tx_response = { id: 0, status: 2, SIZE: 4 } as const;
// struct netif_rx_request { uint16_t id; uint16_t pad; grant_ref_t gref; }
export const netif_rx_request = { id: 0, gref: 4, SIZE: 8 } as const;
// struct netif_rx_response { uint16_t id, offset, flags; int16_t status; }
export const netif_rx_response = { id: 0, offset: 2, flags: 4, status: 6, SIZE: 8 } as const;

// struct netif_extra_info { uint8_t type; uint8_t flags; union { gso { uint16_t size; uint8_t type;
//   uint8_t pad; uint16_t features; }; mcast { uint8_t addr[6]; }; hash { uint8_t type; uint8_t pad;
//   uint8_t value[4]; }; uint16_t pad[3]; } u; }  (8 bytes: a tx request slot that follows one with
// NETTXF_extra_info, or an rx response slot after NETRXF_extra_info)
export const netif_extra_info = { type: 0, flags: 1, u: 2, gso_size: 2, gso_type: 4, gso_features: 6, SIZE: 8 } as const;
export const XEN_NETIF_GSO_TYPE_NONE = 0;
export const XEN_NETIF_GSO_TYPE_TCPV4 = 1;
export const XEN_NETIF_GSO_TYPE_TCPV6 = 2;

/** Slot size of each ring: the larger of its request and response. */
export const NETIF_TX_SLOT = netif_tx_request.SIZE;
export const NETIF_RX_SLOT = netif_rx_request.SIZE;

/** __CONST_RING_SIZE(netif_tx, PAGE_SIZE) and (netif_rx, PAGE_SIZE): 256 each. */
export const NET_TX_RING_SIZE = __RING_SIZE(NETIF_TX_SLOT);
export const NET_RX_RING_SIZE = __RING_SIZE(NETIF_RX_SLOT);

export interface NetifTxRequest { gref: number; offset: number; flags: number; id: number; size: number }
export interface NetifTxResponse { id: number; status: number }
export interface NetifRxRequest { id: number; gref: number }
export interface NetifRxResponse { id: number; offset: number; flags: number; status: number }
/** netif_extra_info's header, and the union's six bytes as they are (read as gso: size, type, features). */
export interface NetifExtraInfo { type: number; flags: number; u: Uint8Array }

// Each codec takes a DataView over one slot (or the whole page and a byte
// offset), so the same functions serve both ends and either ring library.

export function readTxRequest(dv: DataView, o = 0): NetifTxRequest {
  return {
    gref: dv.getUint32(o + netif_tx_request.gref, true),
    offset: dv.getUint16(o + netif_tx_request.offset, true),
    flags: dv.getUint16(o + netif_tx_request.flags, true),
    id: dv.getUint16(o + netif_tx_request.id, true),
    size: dv.getUint16(o + netif_tx_request.size, true),
  };
}

export function writeTxRequest(dv: DataView, r: NetifTxRequest, o = 0): void {
  dv.setUint32(o + netif_tx_request.gref, r.gref >>> 0, true);
  dv.setUint16(o + netif_tx_request.offset, r.offset, true);
  dv.setUint16(o + netif_tx_request.flags, r.flags, true);
  dv.setUint16(o + netif_tx_request.id, r.id, true);
  dv.setUint16(o + netif_tx_request.size, r.size, true);
}

export function readTxResponse(dv: DataView, o = 0): NetifTxResponse {
  return { id: dv.getUint16(o + netif_tx_response.id, true), status: dv.getInt16(o + netif_tx_response.status, true) };
}

export function writeTxResponse(dv: DataView, r: NetifTxResponse, o = 0): void {
  dv.setUint16(o + netif_tx_response.id, r.id, true);
  dv.setInt16(o + netif_tx_response.status, r.status, true);
}

export function readRxRequest(dv: DataView, o = 0): NetifRxRequest {
  return { id: dv.getUint16(o + netif_rx_request.id, true), gref: dv.getUint32(o + netif_rx_request.gref, true) };
}

export function writeRxRequest(dv: DataView, r: NetifRxRequest, o = 0): void {
  dv.setUint16(o + netif_rx_request.id, r.id, true);
  dv.setUint16(o + 2, 0, true);
  dv.setUint32(o + netif_rx_request.gref, r.gref >>> 0, true);
}

export function readRxResponse(dv: DataView, o = 0): NetifRxResponse {
  return {
    id: dv.getUint16(o + netif_rx_response.id, true),
    offset: dv.getUint16(o + netif_rx_response.offset, true),
    flags: dv.getUint16(o + netif_rx_response.flags, true),
    status: dv.getInt16(o + netif_rx_response.status, true),
  };
}

export function writeRxResponse(dv: DataView, r: NetifRxResponse, o = 0): void {
  dv.setUint16(o + netif_rx_response.id, r.id, true);
  dv.setUint16(o + netif_rx_response.offset, r.offset, true);
  dv.setUint16(o + netif_rx_response.flags, r.flags, true);
  dv.setInt16(o + netif_rx_response.status, r.status, true);
}

/** Reads a netif_extra_info (the union's bytes copied). */
export function readExtraInfo(dv: DataView, o = 0): NetifExtraInfo {
  return {
    type: dv.getUint8(o + netif_extra_info.type), flags: dv.getUint8(o + netif_extra_info.flags),
    u: new Uint8Array(dv.buffer.slice(dv.byteOffset + o + netif_extra_info.u, dv.byteOffset + o + netif_extra_info.SIZE)),
  };
}

export function writeExtraInfo(dv: DataView, e: NetifExtraInfo, o = 0): void {
  dv.setUint8(o + netif_extra_info.type, e.type);
  dv.setUint8(o + netif_extra_info.flags, e.flags);
  for (let i = 0; i < netif_extra_info.SIZE - netif_extra_info.u; i++) dv.setUint8(o + netif_extra_info.u + i, e.u[i] ?? 0);
}

/** The union as u.gso: size, type, features. */
export function extraGso(e: NetifExtraInfo): { size: number; type: number; features: number } {
  const d = new DataView(e.u.buffer, e.u.byteOffset, e.u.byteLength);
  return { size: d.getUint16(0, true), type: d.getUint8(2), features: d.getUint16(4, true) };
}
