// PCI: configuration space of type-0 functions, BARs, and the bus they sit on
// (PCI Local Bus Specification 3.0, chapter 6). The host bridge
// (shared/hw/i440fx.ts) reaches the bus through configuration mechanism #1
// (ports 0xCF8/0xCFC); Xen's ioreq servers may also receive
// IOREQ_TYPE_PCI_CONFIG accesses, which go to PciBus.configRead/Write too.
//
// A BAR's region lives in the machine's IoSpace only while its decode is on:
// the command register's I/O or memory space bit is set and the guest has
// placed it (an address other than the sizing probe's). Moving a BAR moves
// the region, as a real bridge's decoders follow the programmed address.
import type { AccessSize, IoHandler, IoRegion, IoSpace } from './machine.js';

export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_CLASS_DEVICE = 0x0a;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;

export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS_INTERRUPT = 0x08;
export const PCI_STATUS_CAP_LIST = 0x10;

/** Capability IDs and MSI-X's registers (PCI 3.0 6.7, 6.8.2). */
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
export const PCI_MSIX_ENTRY_SIZE = 16;
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 1;
/** The local APIC's window (Intel SDM 10.11.1): where an x86 MSI's address points. */
export const MSI_ADDR_BASE = 0xfee00000;

/**
 * A function's capability list (PCI 3.0 6.7), read through `read`: each
 * capability's offset and ID, in list order. 48 at most fit in 256 bytes,
 * so a list that loops ends there.
 */
export function pciCapabilities(read: (offset: number, size: 1 | 2) => number): Array<{ off: number; id: number }> {
  const found: Array<{ off: number; id: number }> = [];
  let at = read(PCI_CAPABILITY_LIST, 1) & 0xfc;
  for (let guard = 0; at >= 0x40 && guard < 48; guard++) {
    const hdr = read(at, 2);
    found.push({ off: at, id: hdr & 0xff });
    at = (hdr >>> 8) & 0xfc;
  }
  return found;
}

export const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x8;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x4;
export const PCI_ROM_ADDRESS_ENABLE = 0x1;
export const PCI_ROM_ADDRESS_MASK = 0xfffff800;

export interface BarSpec {
  kind: 'io' | 'mem';
  /** A power of two: 16 or more for I/O... 4 is allowed by the spec, 16 keeps things simple; 4096+ for memory. */
  size: number;
  prefetchable?: boolean;
  /**
   * A 64-bit memory BAR: the next BAR register holds the address's upper
   * half. The machine's MMIO space is 32-bit, so the BAR decodes only while
   * that upper half is 0 (firmware and Linux place small BARs below 4 GiB).
   */
  is64?: boolean;
  handler: IoHandler;
  name: string;
}

interface Bar extends BarSpec { addr: number; region: IoRegion | null }

interface Rom { image: Uint8Array; size: number; region: IoRegion | null }

/** The two spaces a function's BARs decode in. */
export interface PciSpaces { ports: IoSpace; mmio: IoSpace }

/**
 * One PCI function with a type-0 header. Subclasses set identity in the
 * constructor, add BARs with addBar(), and override configWriteHook for
 * device-specific registers (the base class keeps the standard ones).
 */
export class PciFunction {
  readonly config = new Uint8Array(256);
  private readonly view = new DataView(this.config.buffer);
  /** Bits the guest may write, per byte of config space. */
  protected readonly writable = new Uint8Array(256);
  private readonly bars: (Bar | undefined)[] = [];
  /** BAR registers that are the upper half of a 64-bit BAR -> that BAR's index. */
  private readonly hiOf = new Map<number, number>();
  private rom: Rom | null = null;
  protected spaces: PciSpaces | null = null;
  /** Set by PciBus.plug: device number 0-31 and function 0-7. */
  device = -1;
  fn = 0;

  constructor(readonly name: string, ids: { vendor: number; device: number; classCode: number; revision?: number;
    subVendor?: number; subDevice?: number; headerType?: number; interruptPin?: number }) {
    this.view.setUint16(PCI_VENDOR_ID, ids.vendor, true);
    this.view.setUint16(PCI_DEVICE_ID, ids.device, true);
    this.config[PCI_REVISION_ID] = ids.revision ?? 0;
    this.config[PCI_CLASS_PROG] = ids.classCode & 0xff;
    this.view.setUint16(PCI_CLASS_DEVICE, ids.classCode >>> 8, true);
    this.config[PCI_HEADER_TYPE] = ids.headerType ?? 0;
    this.view.setUint16(PCI_SUBSYSTEM_VENDOR_ID, ids.subVendor ?? 0, true);
    this.view.setUint16(PCI_SUBSYSTEM_ID, ids.subDevice ?? 0, true);
    this.config[PCI_INTERRUPT_PIN] = ids.interruptPin ?? 0;
    // Command: I/O, memory, bus master, INTx disable; the interrupt line is scratch for the OS.
    this.writable[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    this.writable[PCI_COMMAND + 1] = PCI_COMMAND_INTX_DISABLE >> 8;
    this.writable[PCI_INTERRUPT_LINE] = 0xff;
  }

  /** Declares BAR `index` (0-5). Its region appears once the guest enables decoding. */
  protected addBar(index: number, spec: BarSpec): void {
    if (index < 0 || index > 5 || this.bars[index]) throw new RangeError(`${this.name}: BAR ${index} taken or out of range`);
    if (spec.is64 && (spec.kind !== 'mem' || index === 5 || this.bars[index + 1] || this.hiOf.has(index + 1))) {
      throw new RangeError(`${this.name}: 64-bit BAR ${index} has no room for its upper half`);
    }
    if (this.hiOf.has(index)) throw new RangeError(`${this.name}: BAR ${index} is the upper half of a 64-bit BAR`);
    const min = spec.kind === 'io' ? 4 : 16;
    if (spec.size < min || (spec.size & (spec.size - 1)) !== 0) throw new RangeError(`${this.name}: BAR size ${spec.size}`);
    this.bars[index] = { ...spec, addr: 0, region: null };
    this.view.setUint32(PCI_BASE_ADDRESS_0 + 4 * index, typeBitsOf(spec), true);
    if (spec.is64) this.hiOf.set(index + 1, index);
  }

  /**
   * Declares the expansion ROM BAR (PCI 3.0 6.2.5.2) holding `image`: read-only
   * memory of the next power of two (2 KiB at least) that decodes while its
   * enable bit (bit 0) and the command register's memory space bit are set,
   * where firmware finds option ROMs such as a VGA BIOS.
   */
  protected addRomBar(image: Uint8Array): void {
    if (this.rom) throw new RangeError(`${this.name}: ROM BAR taken`);
    let size = 2048;
    while (size < image.length) size *= 2;
    this.rom = { image, size, region: null };
  }

  get command(): number { return this.view.getUint16(PCI_COMMAND, true); }

  /** The current address of BAR `index` as the guest programmed it (0: not placed). */
  barAddress(index: number): number { return this.bars[index]?.addr ?? 0; }

  /**
   * BAR `index` as declared (kind, size, handler), for a host that routes
   * accesses by BAR rather than by address: a host PCI device process
   * (processes/pcidev), whose owner names the BAR and the offset in it.
   */
  barRegion(index: number): Readonly<BarSpec> | undefined {
    const b = this.bars[index];
    return b && { kind: b.kind, size: b.size, prefetchable: b.prefetchable, handler: b.handler, name: b.name };
  }

  /** Called by the bus when plugged in. */
  attach(spaces: PciSpaces): void { this.spaces = spaces; }

  /**
   * Called by the bus when unplugged: the BARs (and the ROM) stop decoding.
   * A subclass with regions or timers of its own overrides this and calls
   * super.detach().
   */
  detach(): void {
    for (const bar of this.bars) {
      if (bar?.region) { bar.region.unregister(); bar.region = null; }
    }
    if (this.rom?.region) { this.rom.region.unregister(); this.rom.region = null; }
    this.spaces = null;
  }

  configRead(offset: number, size: AccessSize): number {
    if (offset < 0 || offset + size > 256) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    if (size === 1) return this.config[offset]!;
    if (size === 2) return this.view.getUint16(offset, true);
    return this.view.getUint32(offset, true);
  }

  configWrite(offset: number, size: AccessSize, value: number): void {
    if (offset < 0 || offset + size > 256) return;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      if (at >= PCI_BASE_ADDRESS_0 && at < PCI_BASE_ADDRESS_0 + 24) continue; // below
      if (at === PCI_STATUS + 1 || at === PCI_STATUS) {
        // Write-1-to-clear error bits (15:11, 8); the rest is read-only.
        const w1c = at === PCI_STATUS ? 0x00 : 0xf9;
        this.config[at] = this.config[at]! & ~(byte & w1c);
        continue;
      }
      const mask = this.writable[at]!;
      this.config[at] = (this.config[at]! & ~mask) | (byte & mask);
    }
    // BARs: the address bits above the size are writable; the rest read as the type.
    for (let b = 0; b < 6; b++) {
      const reg = PCI_BASE_ADDRESS_0 + 4 * b;
      if (offset + size <= reg || offset >= reg + 4) continue;
      const bar = this.bars[b];
      if (!bar && !this.hiOf.has(b)) continue;
      const old = this.view.getUint32(reg, true);
      let v = old;
      for (let i = 0; i < size; i++) {
        const at = offset + i;
        if (at < reg || at >= reg + 4) continue;
        const shift = 8 * (at - reg);
        v = (v & ~(0xff << shift)) | (((value >>> (8 * i)) & 0xff) << shift);
      }
      if (!bar) { this.view.setUint32(reg, v >>> 0, true); continue; } // an upper half: every bit is address
      const typeBits = typeBitsOf(bar);
      // All 32 bits above the size are writable for I/O BARs too (as QEMU's
      // wmask): a sizing probe reads back 0xffffff01 for 256 ports, which is
      // what firmware computes the size from; only the decode is 16-bit.
      const addr = (v >>> 0) & ~(bar.size - 1);
      this.view.setUint32(reg, (addr | typeBits) >>> 0, true);
    }
    // The ROM BAR: address bits above its size and the enable bit are writable.
    if (this.rom && offset < PCI_ROM_ADDRESS + 4 && offset + size > PCI_ROM_ADDRESS) {
      let v = this.view.getUint32(PCI_ROM_ADDRESS, true);
      for (let i = 0; i < size; i++) {
        const at = offset + i;
        if (at < PCI_ROM_ADDRESS || at >= PCI_ROM_ADDRESS + 4) continue;
        const shift = 8 * (at - PCI_ROM_ADDRESS);
        v = (v & ~(0xff << shift)) | (((value >>> (8 * i)) & 0xff) << shift);
      }
      const keep = (PCI_ROM_ADDRESS_MASK & ~(this.rom.size - 1)) | PCI_ROM_ADDRESS_ENABLE;
      this.view.setUint32(PCI_ROM_ADDRESS, (v & keep) >>> 0, true);
    }
    this.configWriteHook(offset, size, value);
    this.updateDecode();
  }

  /** Device-specific registers; the base class has already stored writable bits. */
  protected configWriteHook(_offset: number, _size: AccessSize, _value: number): void { /* none */ }

  /** Sets or clears the interrupt status bit (and the caller drives the INTx line). */
  protected setInterruptStatus(on: boolean): void {
    const s = this.view.getUint16(PCI_STATUS, true);
    this.view.setUint16(PCI_STATUS, on ? s | PCI_STATUS_INTERRUPT : s & ~PCI_STATUS_INTERRUPT, true);
  }

  /** Brings each BAR's region in line with the command register and its programmed address. */
  private updateDecode(): void {
    if (!this.spaces) return;
    const cmd = this.command;
    for (let b = 0; b < 6; b++) {
      const bar = this.bars[b];
      if (!bar) continue;
      const reg = this.view.getUint32(PCI_BASE_ADDRESS_0 + 4 * b, true);
      const addr = (bar.kind === 'io' ? reg & ~0x3 : reg & ~0xf) >>> 0;
      const high = bar.is64 ? this.view.getUint32(PCI_BASE_ADDRESS_0 + 4 * (b + 1), true) : 0;
      const on = (bar.kind === 'io' ? cmd & PCI_COMMAND_IO : cmd & PCI_COMMAND_MEMORY) !== 0;
      // The sizing probe writes all-ones: the address then is the size mask,
      // not a placement; an I/O BAR past the 64 KiB of ports decodes nothing.
      const placed = addr !== 0 && addr !== (0xffffffff & ~(bar.size - 1) & (bar.kind === 'io' ? ~0x3 : ~0xf)) >>> 0 &&
        (bar.kind === 'mem' || addr + bar.size <= 0x10000) && high === 0;
      const want = on && placed ? addr : -1;
      bar.addr = placed ? addr : 0;
      const space = bar.kind === 'io' ? this.spaces.ports : this.spaces.mmio;
      if (want < 0) {
        if (bar.region) { bar.region.unregister(); bar.region = null; }
      } else if (!bar.region) {
        bar.region = space.register(want, bar.size, bar.handler, `${this.name} BAR${b}`);
      } else if (bar.region.base !== want) {
        bar.region.move(want);
      }
    }
    const rom = this.rom;
    if (rom) {
      const reg = this.view.getUint32(PCI_ROM_ADDRESS, true);
      const addr = (reg & PCI_ROM_ADDRESS_MASK) >>> 0;
      const placed = addr !== 0 && addr !== ((PCI_ROM_ADDRESS_MASK & ~(rom.size - 1)) >>> 0);
      const want = cmd & PCI_COMMAND_MEMORY && reg & PCI_ROM_ADDRESS_ENABLE && placed ? addr : -1;
      if (want < 0) {
        if (rom.region) { rom.region.unregister(); rom.region = null; }
      } else if (!rom.region) {
        const handler: IoHandler = {
          read: (o, size) => {
            let v = 0;
            for (let i = 0; i < size; i++) v |= (rom.image[o + i] ?? 0) << (8 * i);
            return v >>> 0;
          },
          write: () => { /* read-only */ },
        };
        rom.region = this.spaces.mmio.register(want, rom.size, handler, `${this.name} ROM`);
      } else if (rom.region.base !== want) {
        rom.region.move(want);
      }
    }
  }
}

function typeBitsOf(bar: BarSpec): number {
  if (bar.kind === 'io') return PCI_BASE_ADDRESS_SPACE_IO;
  return (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0) | (bar.is64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0);
}

/** Bus 0: up to 32 devices of up to 8 functions. */
export class PciBus {
  private readonly fns = new Map<number, PciFunction>();

  constructor(private readonly spaces: PciSpaces) {}

  /** Plugs `f` in at device `device`, function `fn`. */
  plug(f: PciFunction, device: number, fn = 0): void {
    const devfn = (device << 3) | fn;
    if (device < 0 || device > 31 || fn < 0 || fn > 7 || this.fns.has(devfn)) {
      throw new RangeError(`PCI 00:${device.toString(16).padStart(2, '0')}.${fn} taken or out of range`);
    }
    f.device = device;
    f.fn = fn;
    this.fns.set(devfn, f);
    f.attach(this.spaces);
  }

  get(device: number, fn = 0): PciFunction | undefined { return this.fns.get((device << 3) | fn); }

  /**
   * Removes a function (Xen's platform device unplugging emulated NICs, as
   * qemu-xen's object_unparent does): its BARs stop decoding and its slot
   * reads all-ones from then on.
   */
  unplug(device: number, fn = 0): PciFunction | undefined {
    const devfn = (device << 3) | fn;
    const f = this.fns.get(devfn);
    if (!f) return undefined;
    this.fns.delete(devfn);
    f.detach();
    return f;
  }

  functions(): PciFunction[] { return [...this.fns.values()]; }

  /** A configuration read of bus 0; an absent function reads all-ones (master abort). */
  configRead(devfn: number, offset: number, size: AccessSize): number {
    const f = this.fns.get(devfn);
    if (!f) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return f.configRead(offset, size);
  }

  configWrite(devfn: number, offset: number, size: AccessSize, value: number): void {
    this.fns.get(devfn)?.configWrite(offset, size, value);
  }
}
