// IPv4 (RFC 791) as a small stack needs it: 20-byte headers without
// options, no fragmentation (DF set; a datagram larger than the MTU is
// refused), the Internet checksum (RFC 1071), addresses as 32-bit numbers.
export const IPPROTO_ICMP = 1;
export const IPPROTO_UDP = 17;
export const IP_HLEN = 20;

export function ipToString(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export function parseIp(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return null;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

/** Internet checksum of bytes [off, off+len) with an initial partial sum. */
export function inetChecksum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  let i = off;
  const end = off + len;
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return (~sum) & 0xffff;
}

export interface Ipv4Header { src: number; dst: number; proto: number; ttl: number; totalLen: number; hlen: number }

/** Parses and checks a header at `o`; null when malformed (bad version, length or checksum). */
export function readIpv4(b: Uint8Array, o: number, avail: number): Ipv4Header | null {
  if (avail < IP_HLEN || (b[o]! >>> 4) !== 4) return null;
  const hlen = (b[o]! & 15) * 4;
  const totalLen = (b[o + 2]! << 8) | b[o + 3]!;
  if (hlen < IP_HLEN || totalLen < hlen || totalLen > avail) return null;
  if (inetChecksum(b, o, hlen) !== 0) return null;
  // Fragments (MF or an offset) are not reassembled: dropped.
  if (((b[o + 6]! & 0x20) !== 0) || (((b[o + 6]! & 0x1f) << 8) | b[o + 7]!) !== 0) return null;
  const rd = (i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  return { src: rd(o + 12), dst: rd(o + 16), proto: b[o + 9]!, ttl: b[o + 8]!, totalLen, hlen };
}

export function writeIpv4(b: Uint8Array, o: number, h: { src: number; dst: number; proto: number; payloadLen: number; id: number; ttl?: number }): void {
  const total = IP_HLEN + h.payloadLen;
  b[o] = 0x45; b[o + 1] = 0;
  b[o + 2] = total >>> 8; b[o + 3] = total & 255;
  b[o + 4] = (h.id >>> 8) & 255; b[o + 5] = h.id & 255;
  b[o + 6] = 0x40; b[o + 7] = 0; // DF
  b[o + 8] = h.ttl ?? 64; b[o + 9] = h.proto;
  b[o + 10] = 0; b[o + 11] = 0;
  const wr = (i: number, v: number) => { b[i] = v >>> 24; b[i + 1] = (v >>> 16) & 255; b[i + 2] = (v >>> 8) & 255; b[i + 3] = v & 255; };
  wr(o + 12, h.src); wr(o + 16, h.dst);
  const c = inetChecksum(b, o, IP_HLEN);
  b[o + 10] = c >>> 8; b[o + 11] = c & 255;
}
