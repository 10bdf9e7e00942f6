// Ethernet II framing (IEEE 802.3 with an EtherType): 6-byte destination,
// 6-byte source, 2-byte type, payload. No FCS: netif carries frames without it.
export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
/** Largest payload on a vif (netif's default MTU). */
export const ETH_DATA_LEN = 1500;
export const ETH_FRAME_LEN = ETH_HLEN + ETH_DATA_LEN;

export const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function macToString(m: Uint8Array): string {
  return Array.from(m.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export { parseMacAddr } from '../../../shared/front/netdev.js';

/** Writes the header into `frame` (which has room for the payload after it). */
export function writeEthHeader(frame: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  frame.set(dst.subarray(0, 6), 0);
  frame.set(src.subarray(0, 6), 6);
  frame[12] = type >>> 8;
  frame[13] = type & 0xff;
}

export function ethType(frame: Uint8Array): number { return (frame[12]! << 8) | frame[13]!; }

export function macEquals(a: Uint8Array, ao: number, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[ao + i] !== b[i]) return false;
  return true;
}
