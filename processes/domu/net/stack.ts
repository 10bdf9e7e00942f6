// The guest's IPv4 stack over one network device: Ethernet in and out,
// ARP (arp.ts), IPv4 without options or fragments (ipv4.ts), ICMP echo
// (RFC 792: requests to us are answered; replies go to whoever waits for
// their identifier) and UDP (RFC 768) sockets by local port. UDP checksums
// are sent as 0 ("none", allowed over IPv4) and not checked on input.
//
//   netfront rx ──frame──> input ─┬─ ARP  -> arp.input (cache, replies, queued sends)
//                                 └─ IPv4 to us -> ICMP echo / UDP socket
//   socket.send -> ipOutput -> arp.resolveAndSend -> device.transmit (tx ring)
import { Arp } from './arp.js';
import { BROADCAST_MAC, ETH_DATA_LEN, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ethType, macEquals, writeEthHeader } from './ethernet.js';
import { IPPROTO_ICMP, IPPROTO_UDP, IP_HLEN, inetChecksum, readIpv4, writeIpv4 } from './ipv4.js';

export const UDP_HLEN = 8;
const ICMP_ECHOREPLY = 0;
const ICMP_ECHO = 8;

import type { NetDevice } from '../../../shared/front/netdev.js';
export type { NetDevice, NetDeviceStats } from '../../../shared/front/netdev.js';

export interface UdpDatagram { src: number; srcPort: number; data: Uint8Array }

export class UdpSocket {
  private handler: ((d: UdpDatagram) => void) | null = null;
  constructor(private readonly stack: NetStack, readonly port: number) {}
  onMessage(fn: (d: UdpDatagram) => void): void { this.handler = fn; }
  /** @internal */ deliver(d: UdpDatagram): void { this.handler?.(d); }
  /** Sends one datagram; 'full' when the device had no room (wait for stack.txSpace()). */
  send(dst: number, dstPort: number, data: Uint8Array): 'ok' | 'full' | 'dropped' {
    return this.stack.udpOutput(this.port, dst, dstPort, data);
  }
  close(): void { this.stack.unbind(this); }
}

export type EchoReply = { from: number; seq: number; ttl: number; bytes: number };

export class NetStack {
  ip = 0;
  prefixLen = 24;
  /** IFF_UP: while false nothing goes in or out. */
  enabled = true;
  readonly arp: Arp;
  private ipId = 1;
  private readonly udp = new Map<number, UdpSocket>();
  private readonly echo = new Map<number, (r: EchoReply) => void>();
  private nextEphemeral = 32768;

  constructor(readonly dev: NetDevice) {
    this.arp = new Arp(dev.mac, () => this.ip, (f) => this.xmit(f));
    dev.onReceive((f) => this.input(f));
  }

  configure(ip: number, prefixLen: number): void { this.ip = ip; this.prefixLen = prefixLen; }

  get netmask(): number { return this.prefixLen === 0 ? 0 : (0xffffffff << (32 - this.prefixLen)) >>> 0; }

  txSpace(): Promise<void> { return this.dev.txSpace(); }

  private xmit(frame: Uint8Array): boolean {
    if (this.enabled && this.dev.transmit(frame)) return true;
    this.dev.stats.txDropped++;
    return false;
  }

  input(frame: Uint8Array): void {
    if (!this.enabled || frame.length < ETH_HLEN) return;
    if (!(frame[0]! & 1) && !macEquals(frame, 0, this.dev.mac)) return;
    const type = ethType(frame);
    if (type === ETH_P_ARP) { this.arp.input(frame); return; }
    if (type !== ETH_P_IP) return;
    const h = readIpv4(frame, ETH_HLEN, frame.length - ETH_HLEN);
    if (!h || (h.dst !== this.ip && h.dst !== 0xffffffff)) return;
    const o = ETH_HLEN + h.hlen;
    const len = h.totalLen - h.hlen;
    if (h.proto === IPPROTO_ICMP) this.icmpInput(frame, o, len, h.src, h.ttl);
    else if (h.proto === IPPROTO_UDP && len >= UDP_HLEN) {
      const sport = (frame[o]! << 8) | frame[o + 1]!;
      const dport = (frame[o + 2]! << 8) | frame[o + 3]!;
      const ulen = (frame[o + 4]! << 8) | frame[o + 5]!;
      if (ulen < UDP_HLEN || ulen > len) return;
      this.udp.get(dport)?.deliver({ src: h.src, srcPort: sport, data: frame.subarray(o + UDP_HLEN, o + ulen) });
    }
  }

  private icmpInput(f: Uint8Array, o: number, len: number, src: number, ttl: number): void {
    if (len < 8 || inetChecksum(f, o, len) !== 0) return;
    const type = f[o]!;
    const id = (f[o + 4]! << 8) | f[o + 5]!;
    const seq = (f[o + 6]! << 8) | f[o + 7]!;
    if (type === ICMP_ECHO) {
      const reply = this.ipFrame(src, IPPROTO_ICMP, len);
      const p = ETH_HLEN + IP_HLEN;
      reply.set(f.subarray(o, o + len), p);
      reply[p] = ICMP_ECHOREPLY; reply[p + 2] = 0; reply[p + 3] = 0;
      const c = inetChecksum(reply, p, len);
      reply[p + 2] = c >>> 8; reply[p + 3] = c & 255;
      this.ipOutput(src, reply);
    } else if (type === ICMP_ECHOREPLY) {
      this.echo.get(id)?.({ from: src, seq, ttl, bytes: len });
    }
  }

  /** A frame with Ethernet (blank) and IPv4 headers written, room for `payloadLen`. */
  private ipFrame(dst: number, proto: number, payloadLen: number): Uint8Array {
    const f = new Uint8Array(ETH_HLEN + IP_HLEN + payloadLen);
    writeIpv4(f, ETH_HLEN, { src: this.ip, dst, proto, payloadLen, id: this.ipId = (this.ipId + 1) & 0xffff });
    return f;
  }

  /** Routes one IPv4 frame: on-link only (no gateway), broadcast to the Ethernet broadcast. */
  private ipOutput(dst: number, frame: Uint8Array): 'ok' | 'full' | 'dropped' {
    if (!this.enabled) return 'dropped'; // ENETDOWN
    const mask = this.netmask;
    const bcast = (this.ip | ~mask) >>> 0;
    if (dst === 0xffffffff || dst === bcast) {
      writeEthHeader(frame, BROADCAST_MAC, this.dev.mac, ETH_P_IP);
      return this.dev.transmit(frame) ? 'ok' : 'full';
    }
    if (((dst & mask) >>> 0) !== ((this.ip & mask) >>> 0)) return 'dropped'; // no route to host
    const mac = this.arp.lookup(dst);
    if (mac) {
      writeEthHeader(frame, mac, this.dev.mac, ETH_P_IP);
      return this.dev.transmit(frame) ? 'ok' : 'full';
    }
    const queued = this.arp.resolveAndSend(dst, frame, (m, fr) => {
      writeEthHeader(fr, m, this.dev.mac, ETH_P_IP);
      this.xmit(fr);
    });
    return queued ? 'ok' : 'dropped';
  }

  sendEcho(dst: number, id: number, seq: number, payload: Uint8Array): 'ok' | 'full' | 'dropped' {
    const len = 8 + payload.length;
    const f = this.ipFrame(dst, IPPROTO_ICMP, len);
    const p = ETH_HLEN + IP_HLEN;
    f[p] = ICMP_ECHO; f[p + 1] = 0;
    f[p + 4] = id >>> 8; f[p + 5] = id & 255; f[p + 6] = seq >>> 8; f[p + 7] = seq & 255;
    f.set(payload, p + 8);
    const c = inetChecksum(f, p, len);
    f[p + 2] = c >>> 8; f[p + 3] = c & 255;
    return this.ipOutput(dst, f);
  }

  onEchoReply(id: number, fn: ((r: EchoReply) => void) | null): void {
    if (fn) this.echo.set(id, fn); else this.echo.delete(id);
  }

  udpOutput(srcPort: number, dst: number, dstPort: number, data: Uint8Array): 'ok' | 'full' | 'dropped' {
    const ulen = UDP_HLEN + data.length;
    if (IP_HLEN + ulen > ETH_DATA_LEN) return 'dropped'; // EMSGSIZE: DF, no fragmentation
    const f = this.ipFrame(dst, IPPROTO_UDP, ulen);
    const p = ETH_HLEN + IP_HLEN;
    f[p] = srcPort >>> 8; f[p + 1] = srcPort & 255; f[p + 2] = dstPort >>> 8; f[p + 3] = dstPort & 255;
    f[p + 4] = ulen >>> 8; f[p + 5] = ulen & 255; // checksum 0: none
    f.set(data, p + UDP_HLEN);
    return this.ipOutput(dst, f);
  }

  /** Binds a UDP port (0 = an ephemeral one); null when taken. */
  bind(port = 0): UdpSocket | null {
    if (port === 0) {
      for (let i = 0; i < 28232 && this.udp.has(this.nextEphemeral); i++) this.nextEphemeral = this.nextEphemeral >= 60999 ? 32768 : this.nextEphemeral + 1;
      port = this.nextEphemeral;
    }
    if (this.udp.has(port)) return null;
    const s = new UdpSocket(this, port);
    this.udp.set(port, s);
    return s;
  }

  unbind(s: UdpSocket): void { if (this.udp.get(s.port) === s) this.udp.delete(s.port); }

  close(): void { this.arp.close(); }
}
