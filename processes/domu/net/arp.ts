// ARP (RFC 826) for Ethernet and IPv4: a cache of IP -> MAC with an age,
// requests for unknown addresses with a few retries, and packets held
// (boundedly) until the answer comes. Any ARP packet naming us as its target
// refreshes or adds its sender (the RFC's "merge" step); a request for our
// address is answered.
import { BROADCAST_MAC, ETH_HLEN, ETH_P_ARP, writeEthHeader } from './ethernet.js';

export const ARPOP_REQUEST = 1;
export const ARPOP_REPLY = 2;
const ARP_LEN = 28;
/** Linux's base_reachable_time is 30 s; stale entries are asked for again. */
export const ARP_CACHE_MS = 60_000;
const ARP_RETRIES = 3;
const ARP_RETRY_MS = 1000;
const ARP_QUEUE = 64;

interface Pending { frames: Uint8Array[]; tries: number; timer: NodeJS.Timeout }

export interface ArpEntry { ip: number; mac: Uint8Array; seen: number }

export class Arp {
  readonly cache = new Map<number, ArpEntry>();
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly mac: Uint8Array, private readonly ip: () => number,
              private readonly xmit: (frame: Uint8Array) => void, private readonly now: () => number = Date.now) {}

  lookup(ip: number): Uint8Array | null {
    const e = this.cache.get(ip);
    if (!e) return null;
    if (this.now() - e.seen > ARP_CACHE_MS) { this.cache.delete(ip); return null; }
    return e.mac;
  }

  /**
   * Sends an Ethernet frame (header left blank) to `ip` once its MAC is
   * known: at once, or after an ARP exchange. Returns false when dropped.
   */
  resolveAndSend(ip: number, frame: Uint8Array, send: (dst: Uint8Array, frame: Uint8Array) => void): boolean {
    const mac = this.lookup(ip);
    if (mac) { send(mac, frame); return true; }
    let p = this.pending.get(ip);
    if (!p) {
      const timer = setInterval(() => this.retry(ip), ARP_RETRY_MS);
      timer.unref();
      p = { frames: [], tries: 1, timer };
      this.pending.set(ip, p);
      this.request(ip);
    }
    if (p.frames.length >= ARP_QUEUE) return false;
    p.frames.push(frame);
    this.flushSend = send;
    return true;
  }

  private flushSend: ((dst: Uint8Array, frame: Uint8Array) => void) | null = null;

  private retry(ip: number): void {
    const p = this.pending.get(ip);
    if (!p) return;
    if (p.tries >= ARP_RETRIES) { clearInterval(p.timer); this.pending.delete(ip); return; }
    p.tries++;
    this.request(ip);
  }

  /**
   * A gratuitous ARP: a broadcast request whose sender and target are our
   * address (Linux's arp_send for NETDEV_NOTIFY_PEERS, which xen-netfront
   * raises when it reconnects after a resume). Peers that cache the address
   * take the sender's MAC, and the bridges on the way learn where it is now.
   */
  announce(): void {
    const me = this.ip();
    if (me !== 0) this.xmit(this.packet(ARPOP_REQUEST, BROADCAST_MAC, new Uint8Array(6), me));
  }

  private request(ip: number): void {
    this.xmit(this.packet(ARPOP_REQUEST, BROADCAST_MAC, new Uint8Array(6), ip));
  }

  private packet(op: number, ethDst: Uint8Array, tha: Uint8Array, tpa: number): Uint8Array {
    const f = new Uint8Array(ETH_HLEN + ARP_LEN);
    writeEthHeader(f, ethDst, this.mac, ETH_P_ARP);
    const dv = new DataView(f.buffer, ETH_HLEN);
    dv.setUint16(0, 1); dv.setUint16(2, 0x0800); dv.setUint8(4, 6); dv.setUint8(5, 4); dv.setUint16(6, op);
    f.set(this.mac, ETH_HLEN + 8); dv.setUint32(14, this.ip());
    f.set(tha.subarray(0, 6), ETH_HLEN + 18); dv.setUint32(24, tpa);
    return f;
  }

  /** An ARP packet arrived (payload after the Ethernet header). */
  input(frame: Uint8Array): void {
    if (frame.length < ETH_HLEN + ARP_LEN) return;
    const dv = new DataView(frame.buffer, frame.byteOffset + ETH_HLEN, ARP_LEN);
    if (dv.getUint16(0) !== 1 || dv.getUint16(2) !== 0x0800 || dv.getUint8(4) !== 6 || dv.getUint8(5) !== 4) return;
    const op = dv.getUint16(6);
    const sha = frame.slice(ETH_HLEN + 8, ETH_HLEN + 14);
    const spa = dv.getUint32(14);
    const tpa = dv.getUint32(24);
    const me = this.ip();
    if (spa === 0 || sha[0]! & 1) return;
    const known = this.cache.get(spa);
    if (known) { known.mac = sha; known.seen = this.now(); }
    if (tpa !== me) return;
    if (!known) this.cache.set(spa, { ip: spa, mac: sha, seen: this.now() });
    const p = this.pending.get(spa);
    if (p) {
      clearInterval(p.timer);
      this.pending.delete(spa);
      for (const f of p.frames) this.flushSend?.(sha, f);
    }
    if (op === ARPOP_REQUEST) this.xmit(this.packet(ARPOP_REPLY, sha, sha, spa));
  }

  close(): void {
    for (const p of this.pending.values()) clearInterval(p.timer);
    this.pending.clear();
  }
}
