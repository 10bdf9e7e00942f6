// Checksums a NIC computes on frames: the Internet checksum of RFC 1071
// (IPv4 headers, TCP, UDP: the 16-bit one's complement of the one's
// complement sum of big-endian words) and Ethernet's frame check sequence
// (IEEE 802.3 clause 3.2.9: CRC-32, reflected, sent least significant byte
// first).

/** The one's complement sum of buf[start, end) as big-endian 16-bit words (an odd last byte is padded with zero), folded to 16 bits, added to `initial`. */
export function onesSum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The Internet checksum of buf[start, end): what goes into a header's checksum field. */
export function inetChecksum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  return ~onesSum(buf, start, end, initial) & 0xffff;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (the polynomial of Ethernet, zlib and PNG) of buf[start, end). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
