// A learning software bridge, as Linux's bridge (net/bridge/br_fdb.c,
// br_forward.c) does it for Dom0's `xenbr0`:
//
//   frame in on port P:  learn  fdb[src mac] = P (refreshing its age)
//                        dst is broadcast/multicast or not in the fdb -> flood to every port but P
//                        dst known on port Q != P                     -> forward to Q only
//                        dst known on P itself                         -> drop (hairpin off)
//
// Entries older than `ageingMs` (Linux's default 300 s) are forgotten on
// lookup and swept by `age()`; a port that goes away takes its entries with
// it. A source MAC that is multicast is never learned (and the frame is
// dropped, as Linux does for an invalid source).
export interface BridgePort {
  /** vif<domid>.<devid>, for `brctl showmacs`-style listings. */
  name: string;
  /** Takes the frame (the bridge hands each port its own view; it must not be kept past the call unless copied). */
  deliver(frame: Uint8Array): void;
}

interface FdbEntry { port: BridgePort; seen: number }

export interface BridgeStats {
  forwarded: number;
  flooded: number;
  dropped: number;
  /** Source MACs not learned because the table was full. */
  unlearned: number;
}

const macKey = (f: Uint8Array, o: number) =>
  // 48 bits as a number: exact in a double, cheaper than a string.
  ((f[o]! * 0x10000000000) + (f[o + 1]! * 0x100000000) + ((f[o + 2]! << 24) >>> 0) + (f[o + 3]! << 16) + (f[o + 4]! << 8) + f[o + 5]!);

/** Most MAC addresses one bridge learns. */
export const FDB_MAX = 4096;

export class Bridge {
  private readonly ports = new Set<BridgePort>();
  private readonly fdb = new Map<number, FdbEntry>();
  readonly stats: BridgeStats = { forwarded: 0, flooded: 0, dropped: 0, unlearned: 0 };

  constructor(readonly name = 'xenbr0', readonly ageingMs = 300_000, private readonly now: () => number = Date.now) {}

  addPort(p: BridgePort): void { this.ports.add(p); }

  removePort(p: BridgePort): void {
    this.ports.delete(p);
    for (const [k, e] of this.fdb) if (e.port === p) this.fdb.delete(k);
  }

  get portCount(): number { return this.ports.size; }

  /** A frame entered the bridge on `from`. */
  input(from: BridgePort, frame: Uint8Array): void {
    if (frame.length < 14 || !this.ports.has(from)) { this.stats.dropped++; return; }
    if (frame[6]! & 1) { this.stats.dropped++; return; }
    const now = this.now();
    const src = macKey(frame, 6);
    const known = this.fdb.get(src);
    if (known) { known.port = from; known.seen = now; }
    // A full table learns no more (as Linux's bridge max_learned): a guest
    // sending from random MACs cannot grow Domain-0's memory; frames still flood.
    else if (this.fdb.size < FDB_MAX) this.fdb.set(src, { port: from, seen: now });
    else this.stats.unlearned++;

    if (!(frame[0]! & 1)) {
      const dst = this.fdb.get(macKey(frame, 0));
      if (dst && now - dst.seen <= this.ageingMs) {
        if (dst.port === from) { this.stats.dropped++; return; }
        this.stats.forwarded++;
        dst.port.deliver(frame);
        return;
      }
    }
    this.stats.flooded++;
    for (const p of this.ports) if (p !== from) p.deliver(frame);
  }

  /** Forgets entries older than the ageing time (br_fdb_cleanup). */
  age(): number {
    const now = this.now();
    let n = 0;
    for (const [k, e] of this.fdb) if (now - e.seen > this.ageingMs) { this.fdb.delete(k); n++; }
    return n;
  }

  /** `brctl showmacs`: port name, mac, ageing seconds. */
  showmacs(): Array<{ port: string; mac: string; ageing: number }> {
    const now = this.now();
    return [...this.fdb].map(([k, e]) => ({ port: e.port.name, mac: macString(k), ageing: (now - e.seen) / 1000 }));
  }

  /** The port a MAC was learned on, if any (tests). */
  lookup(mac: string): string | undefined {
    const b = parseMac(mac);
    const e = b ? this.fdb.get(macKey(b, 0)) : undefined;
    return e && this.now() - e.seen <= this.ageingMs ? e.port.name : undefined;
  }
}

export function macString(key: number): string {
  const parts: string[] = [];
  let k = key;
  for (let i = 0; i < 6; i++) { parts.unshift((k % 256).toString(16).padStart(2, '0')); k = Math.floor(k / 256); }
  return parts.join(':');
}

export function parseMac(mac: string): Uint8Array | null {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) return null;
  return Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
}
