// An address space of claimed ranges (ports or MMIO), and the dispatch of an
// access to the range that holds it. What no range claims reads all-ones and
// drops writes, as an unclaimed access does under Xen (hvm_io_intercept
// finds no handler and no ioreq server: X86EMUL_UNHANDLEABLE -> ~0).
import type { AccessSize, IoHandler, IoRegion, IoSpace } from './machine.js';

interface Range { base: number; length: number; handler: IoHandler; name: string }

/**
 * Told of every range that comes or goes, as QEMU's memory listeners are:
 * how a device model under Xen claims its ranges from its ioreq server
 * (XEN_DMOP_map_io_range_to_ioreq_server) when a guest moves a BAR.
 */
export interface AddressSpaceListener {
  added(base: number, length: number, name: string): void;
  removed(base: number, length: number, name: string): void;
}

export class AddressSpace implements IoSpace {
  /** Sorted by base, never overlapping. */
  private ranges: Range[] = [];

  constructor(readonly name: string, private readonly limit: number, private readonly listener?: AddressSpaceListener) {}

  register(base: number, length: number, handler: IoHandler, name: string): IoRegion {
    const r: Range = { base, length, handler, name };
    this.insert(r);
    return {
      get base() { return r.base; },
      get length() { return r.length; },
      move: (to: number) => {
        this.remove(r);
        if (to < 0) return;
        const old = r.base;
        r.base = to;
        try { this.insert(r); } catch (e) { r.base = old; this.insert(r); throw e; }
      },
      unregister: () => { this.remove(r); },
    };
  }

  /** The range holding `addr`, or undefined. */
  find(addr: number): Range | undefined {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.length) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /** `count` reads of `addr` into `dst` (IoHandler.readBlock's contract), one lookup for all of them. */
  readBlock(addr: number, size: AccessSize, count: number, dst: DataView, at: number, step: number): void {
    const r = this.find(addr);
    const put = (i: number, v: number) => {
      const o = at + i * step;
      if (size === 1) dst.setUint8(o, v); else if (size === 2) dst.setUint16(o, v, true); else dst.setUint32(o, v >>> 0, true);
    };
    if (!r || addr + size > r.base + r.length) {
      for (let i = 0; i < count; i++) put(i, size === 4 ? 0xffffffff : (1 << (8 * size)) - 1);
      return;
    }
    if (r.handler.readBlock) { r.handler.readBlock(addr - r.base, size, count, dst, at, step); return; }
    for (let i = 0; i < count; i++) put(i, r.handler.read(addr - r.base, size));
  }

  read(addr: number, size: AccessSize): number {
    const r = this.find(addr);
    if (!r || addr + size > r.base + r.length) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return r.handler.read(addr - r.base, size) >>> 0;
  }

  write(addr: number, size: AccessSize, value: number): void {
    const r = this.find(addr);
    if (!r || addr + size > r.base + r.length) return;
    r.handler.write(addr - r.base, size, value >>> 0);
  }

  /** Claimed ranges, for logs and tests. */
  list(): Array<{ base: number; length: number; name: string }> {
    return this.ranges.map(({ base, length, name }) => ({ base, length, name }));
  }

  private insert(r: Range): void {
    if (r.length <= 0 || r.base < 0 || r.base + r.length > this.limit) {
      throw new RangeError(`${this.name}: ${r.name} at 0x${r.base.toString(16)}+0x${r.length.toString(16)} is out of range`);
    }
    const clash = this.ranges.find((o) => r.base < o.base + o.length && o.base < r.base + r.length);
    if (clash) throw new RangeError(`${this.name}: ${r.name} at 0x${r.base.toString(16)} overlaps ${clash.name}`);
    this.ranges.push(r);
    this.ranges.sort((a, b) => a.base - b.base);
    this.listener?.added(r.base, r.length, r.name);
  }

  private remove(r: Range): void {
    const i = this.ranges.indexOf(r);
    if (i < 0) return;
    this.ranges.splice(i, 1);
    this.listener?.removed(r.base, r.length, r.name);
  }
}
