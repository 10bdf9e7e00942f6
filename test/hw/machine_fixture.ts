// A Machine for device-model tests: port and MMIO address spaces, guest RAM
// in a Uint8Array, interrupt lines that record every level change, and the
// port helpers firmware uses (inb/outb/..., configuration mechanism #1).
import { AddressSpace } from '../../shared/hw/iospace.js';
import type { AccessSize, Clock, GuestMemory, IrqLines, Machine } from '../../shared/hw/machine.js';

export class TestMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  constructor(readonly size: number) { this.bytes = new Uint8Array(size); }
  read(gpa: number, dst: Uint8Array): void {
    if (gpa < 0 || gpa + dst.length > this.size) throw new RangeError(`gpa ${gpa}+${dst.length} outside RAM`);
    dst.set(this.bytes.subarray(gpa, gpa + dst.length));
  }
  write(gpa: number, src: Uint8Array): void {
    if (gpa < 0 || gpa + src.length > this.size) throw new RangeError(`gpa ${gpa}+${src.length} outside RAM`);
    this.bytes.set(src, gpa);
  }
}

export class TestIrqs implements IrqLines {
  /** Every call, in order: "isa14=1", "intx3.0=1". */
  readonly events: string[] = [];
  readonly isa = new Array<number>(16).fill(0);
  setIsaIrq(irq: number, level: 0 | 1): void { this.events.push(`isa${irq}=${level}`); this.isa[irq] = level; }
  setPciIntx(device: number, intx: number, level: 0 | 1): void { this.events.push(`intx${device}.${intx}=${level}`); }
}

const clock: Clock = { now: () => Number(process.hrtime.bigint()), setTimer: () => 0, cancel: () => {} };

export interface TestMachine extends Machine {
  ports: AddressSpace;
  mmio: AddressSpace;
  mem: TestMemory;
  irq: TestIrqs;
  inb(port: number): number;
  inw(port: number): number;
  inl(port: number): number;
  outb(port: number, v: number): void;
  outw(port: number, v: number): void;
  outl(port: number, v: number): void;
  /** A configuration read of bus 0 through 0xCF8/0xCFC, as SeaBIOS's pci_config_read*. */
  cfgRead(dev: number, fn: number, reg: number, size: AccessSize): number;
  cfgWrite(dev: number, fn: number, reg: number, size: AccessSize, v: number): void;
}

export function makeMachine(ramBytes = 1 << 20): TestMachine {
  const ports = new AddressSpace('ports', 0x10000);
  const mmio = new AddressSpace('mmio', 2 ** 32);
  const m: TestMachine = {
    ports, mmio, mem: new TestMemory(ramBytes), irq: new TestIrqs(), clock,
    inb: (p) => ports.read(p, 1), inw: (p) => ports.read(p, 2), inl: (p) => ports.read(p, 4),
    outb: (p, v) => ports.write(p, 1, v), outw: (p, v) => ports.write(p, 2, v), outl: (p, v) => ports.write(p, 4, v),
    cfgRead: (dev, fn, reg, size) => {
      ports.write(0xcf8, 4, (0x80000000 | (dev << 11) | (fn << 8) | (reg & 0xfc)) >>> 0);
      return ports.read(0xcfc + (reg & 3), size);
    },
    cfgWrite: (dev, fn, reg, size, v) => {
      ports.write(0xcf8, 4, (0x80000000 | (dev << 11) | (fn << 8) | (reg & 0xfc)) >>> 0);
      ports.write(0xcfc + (reg & 3), size, v);
    },
  };
  return m;
}

/** A deterministic byte pattern for sector `lba` of a test disk (so data read back can be checked). */
export function patternByte(offset: number): number {
  return (Math.floor(offset / 512) * 7 + (offset % 512) * 13 + 1) & 0xff;
}

export function patterned(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = patternByte(i);
  return b;
}
