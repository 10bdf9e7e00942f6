// What a device model's unit test plugs it into: guest RAM in a Uint8Array,
// a clock the test moves by hand, interrupt lines that remember their level
// and every change, and back ends that keep what the device sent. These are
// the machine around the device, not the device, so the device under test
// runs unmodified (shared/hw/machine.ts says what each interface promises).
import type { CharBackend, NetBackend } from '../../shared/hw/backend.js';
import type { Clock, GuestMemory, IrqLines, Machine } from '../../shared/hw/machine.js';
import { AddressSpace } from '../../shared/hw/iospace.js';

export class RamMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  constructor(readonly size: number) { this.bytes = new Uint8Array(size); }
  read(gpa: number, dst: Uint8Array): void {
    if (!Number.isInteger(gpa) || gpa < 0 || gpa + dst.length > this.size) throw new RangeError(`DMA read at 0x${gpa.toString(16)}+${dst.length}`);
    dst.set(this.bytes.subarray(gpa, gpa + dst.length));
  }
  write(gpa: number, src: Uint8Array): void {
    if (!Number.isInteger(gpa) || gpa < 0 || gpa + src.length > this.size) throw new RangeError(`DMA write at 0x${gpa.toString(16)}+${src.length}`);
    this.bytes.set(src, gpa);
  }
}

/** Time stands still until the test calls advance(); due timers run in deadline order. */
export class FakeClock implements Clock {
  private t = 0;
  private next = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number { return this.t; }
  setTimer(deadlineNs: number, fn: () => void): number {
    const h = this.next++;
    this.timers.set(h, { at: deadlineNs, fn });
    return h;
  }
  cancel(handle: number): void { this.timers.delete(handle); }
  get pending(): number { return this.timers.size; }
  /** Moves time forward by `ns`, running every timer that falls due on the way. */
  advance(ns: number): void {
    const end = this.t + ns;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!best || e[1].at < best[1].at)) best = e;
      if (!best) break;
      this.timers.delete(best[0]);
      this.t = Math.max(this.t, best[1].at);
      best[1].fn();
    }
    this.t = end;
  }
  /** Runs the timers already due, without moving time. */
  runDue(): void { this.advance(0); }
}

export class FakeIrqLines implements IrqLines {
  readonly isa = new Array<0 | 1>(16).fill(0);
  readonly intx = new Map<string, 0 | 1>();
  readonly log: string[] = [];
  setIsaIrq(irq: number, level: 0 | 1): void { this.isa[irq] = level; this.log.push(`isa${irq}=${level}`); }
  setPciIntx(device: number, intx: number, level: 0 | 1): void {
    this.intx.set(`${device}.${intx}`, level);
    this.log.push(`pci${device}.${intx}=${level}`);
  }
  pci(device: number, intx = 0): 0 | 1 { return this.intx.get(`${device}.${intx}`) ?? 0; }
}

export class MemCharBackend implements CharBackend {
  readonly writes: Uint8Array[] = [];
  private fn: ((b: Uint8Array) => void) | null = null;
  write(bytes: Uint8Array): void { this.writes.push(Uint8Array.from(bytes)); }
  onInput(fn: (bytes: Uint8Array) => void): void { this.fn = fn; }
  /** The host side types `s`. */
  type(s: string | Uint8Array): void { this.fn!(typeof s === 'string' ? Buffer.from(s, 'latin1') : s); }
  get output(): string { return Buffer.concat(this.writes).toString('latin1'); }
}

export class MemNetBackend implements NetBackend {
  readonly sent: Uint8Array[] = [];
  private fn: ((f: Uint8Array) => void) | null = null;
  send(frame: Uint8Array): void { this.sent.push(Uint8Array.from(frame)); }
  onReceive(fn: (frame: Uint8Array) => void): void { this.fn = fn; }
  /** A frame arrives from the wire. */
  deliver(frame: Uint8Array): void { this.fn!(frame); }
}

export interface TestMachine extends Machine {
  ports: AddressSpace;
  mmio: AddressSpace;
  mem: RamMemory;
  irq: FakeIrqLines;
  clock: FakeClock;
}

export function testMachine(ramBytes = 1 << 20): TestMachine {
  return {
    ports: new AddressSpace('ports', 0x10000),
    mmio: new AddressSpace('mmio', 2 ** 32),
    mem: new RamMemory(ramBytes),
    irq: new FakeIrqLines(),
    clock: new FakeClock(),
  };
}
