// A VGA with the Bochs VBE extensions: QEMU's "stdvga" (PCI 1234:1111,
// class 0x0300), the card SeaBIOS's vgabios-stdvga drives. The VGA part
// follows IBM's "VGA XGA Technical Reference Manual" (registers, memory
// organisation, write and read modes) with QEMU's hw/display/vga.c as the
// reference for how firmware and Linux expect an emulated one to behave; the
// VBE part is the Bochs DISPI interface (index 0x1CE, data 0x1CF) of QEMU's
// vga.c and include/hw/display/bochs-vbe.h.
//
// Video memory is one array holding the four planes interleaved, as QEMU
// keeps it: plane p's byte at plane address a is vram[4a + p]. Planar
// accesses move four planes at once through one 32-bit word (the latches);
// chain-4 (mode 13h) and the VBE linear frame buffer see the array as
// linear bytes; odd/even (text modes) maps guest address a to plane a & 1
// at plane address a >> 1 (QEMU's mapping, which the CRTC start address and
// cursor location of the text renderer use too). The plane words are read
// little-endian, as on every host Node runs on.
//
//   ports 0x3C0-0x3CF, 0x3B4/5/A, 0x3D4/5/A   attribute, misc, sequencer, DAC, graphics, CRTC
//   ports 0x1CE-0x1D0                         Bochs VBE index and data
//   MMIO 0xA0000-0xBFFFF                      the legacy window, placed by GR06's memory map select
//   BAR0 (prefetchable, 16 MiB)               VRAM, linear (the VBE LFB)
//   BAR2 (4 KiB)                              QEMU's stdvga MMIO: EDID, VGA ports, VBE registers
//   expansion ROM BAR (optional)              the VGA BIOS, as QEMU offers vgabios-stdvga.bin
//
// textScreen() and screenshot() (vga_display.ts) show what is on the screen.
import type { AccessSize, IoHandler, IoRegion, IoSpace } from './machine.js';
import { PCI_BASE_ADDRESS_0, PciFunction, type PciSpaces } from './pci.js';
import { renderScreenshot, readTextScreen, type Screenshot, type TextScreen } from './vga_display.js';

// Bochs DISPI (include/hw/display/bochs-vbe.h).
export const VBE_DISPI_INDEX_ID = 0x0;
export const VBE_DISPI_INDEX_XRES = 0x1;
export const VBE_DISPI_INDEX_YRES = 0x2;
export const VBE_DISPI_INDEX_BPP = 0x3;
export const VBE_DISPI_INDEX_ENABLE = 0x4;
export const VBE_DISPI_INDEX_BANK = 0x5;
export const VBE_DISPI_INDEX_VIRT_WIDTH = 0x6;
export const VBE_DISPI_INDEX_VIRT_HEIGHT = 0x7;
export const VBE_DISPI_INDEX_X_OFFSET = 0x8;
export const VBE_DISPI_INDEX_Y_OFFSET = 0x9;
export const VBE_DISPI_INDEX_VIDEO_MEMORY_64K = 0xa;
export const VBE_DISPI_INDEX_NB = 0xa;
export const VBE_DISPI_ID0 = 0xb0c0;
export const VBE_DISPI_ID5 = 0xb0c5;
export const VBE_DISPI_DISABLED = 0x00;
export const VBE_DISPI_ENABLED = 0x01;
export const VBE_DISPI_GETCAPS = 0x02;
export const VBE_DISPI_8BIT_DAC = 0x20;
export const VBE_DISPI_LFB_ENABLED = 0x40;
export const VBE_DISPI_NOCLEARMEM = 0x80;
export const VBE_DISPI_MAX_XRES = 16000;
export const VBE_DISPI_MAX_YRES = 12000;
export const VBE_DISPI_MAX_BPP = 32;
export const VBE_DISPI_IOPORT_INDEX = 0x1ce;

export const VGA_VRAM_DEFAULT = 16 << 20;
/** QEMU's stdvga MMIO BAR layout (hw/display/vga-pci.c). */
export const PCI_VGA_MMIO_SIZE = 0x1000;
const PCI_VGA_EDID_SIZE = 0x100;
const PCI_VGA_IOPORT_OFFSET = 0x400;
const PCI_VGA_IOPORT_SIZE = 0x20;
const PCI_VGA_BOCHS_OFFSET = 0x500;
const PCI_VGA_BOCHS_SIZE = (VBE_DISPI_INDEX_NB + 1) * 2;
const PCI_VGA_QEXT_OFFSET = 0x600;
const PCI_VGA_QEXT_SIZE = 8;
const PCI_VGA_QEXT_LITTLE_ENDIAN = 0x1e1e1e1e;

/** Bits that exist in each sequencer and graphics register; the rest read 0 (the VGA reference's register maps, as QEMU's sr_mask/gr_mask). */
const SR_MASK = [0x03, 0x3d, 0x0f, 0x3f, 0x0e, 0x00, 0x00, 0xff];
const GR_MASK = [0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff, 0, 0, 0, 0, 0, 0, 0];

/** A 4-bit plane mask widened to a byte mask of the four interleaved planes. */
const MASK16 = Uint32Array.from({ length: 16 }, (_, m) =>
  ((m & 1 ? 0xff : 0) | (m & 2 ? 0xff00 : 0) | (m & 4 ? 0xff0000 : 0) | (m & 8 ? 0xff000000 : 0)) >>> 0);

// Register indexes used below.
const SR_CLOCKING = 0x01;
const SR_MAP_MASK = 0x02;
const SR_MEMORY_MODE = 0x04;
const SR04_CHAIN4 = 0x08;
const GR_SET_RESET = 0x00;
const GR_ENABLE_SET_RESET = 0x01;
const GR_COLOR_COMPARE = 0x02;
const GR_DATA_ROTATE = 0x03;
const GR_READ_MAP = 0x04;
const GR_MODE = 0x05;
const GR_MISC = 0x06;
const GR_COLOR_DONT_CARE = 0x07;
const GR_BIT_MASK = 0x08;
const CR_VSYNC_END = 0x11;
const CR_OVERFLOW = 0x07;

export interface VgaOptions {
  /** Bytes of video memory, a power of two of at least 1 MiB (default 16 MiB). */
  vramSize?: number;
  /** Use this buffer as VRAM (shared memory a later mapping hands the guest directly). */
  vram?: Uint8Array;
  /** The VGA BIOS (vgabios-stdvga.bin) behind the PCI expansion ROM BAR, where SeaBIOS looks for it. */
  rom?: Uint8Array;
}

export class Vga {
  readonly vram: Uint8Array;
  private readonly vram32: Uint32Array;
  private readonly vramView: DataView;

  // The VGA's registers, public for the display code.
  readonly sr = new Uint8Array(8);
  readonly gr = new Uint8Array(16);
  readonly cr = new Uint8Array(256);
  readonly ar = new Uint8Array(0x15);
  /** The DAC's 256 entries of red, green, blue (6 bits each, or 8 with VBE_DISPI_8BIT_DAC). */
  readonly palette = new Uint8Array(768);
  srIndex = 0;
  grIndex = 0;
  crIndex = 0;
  /** Attribute index and its palette address source bit (0x20: the screen shows). */
  arIndex = 0;
  private arFlipFlop = 0;
  misc = 0;
  private featureControl = 0;
  private st01 = 0;
  pelMask = 0xff;
  private dacReadIndex = 0;
  private dacWriteIndex = 0;
  private dacSub = 0;
  private dacState = 0;
  private readonly dacCache = new Uint8Array(3);
  private latch = 0;

  // Bochs VBE.
  readonly vbe = new Uint16Array(VBE_DISPI_INDEX_NB + 1);
  private vbeIndex = 0;
  private bankOffset = 0;
  /** Bytes per scan line and first displayed byte while VBE is enabled. */
  vbeLineOffset = 0;
  vbeStartAddr = 0;

  private readonly regions: IoRegion[] = [];

  constructor(opts: VgaOptions = {}) {
    const size = opts.vram?.length ?? opts.vramSize ?? VGA_VRAM_DEFAULT;
    if (size < 1 << 20 || (size & (size - 1)) !== 0) throw new RangeError(`VGA memory of ${size} bytes: a power of two of 1 MiB or more`);
    this.vram = opts.vram ?? new Uint8Array(size);
    if (this.vram.byteOffset & 3) throw new RangeError('VGA memory must be 4-byte aligned');
    this.vram32 = new Uint32Array(this.vram.buffer, this.vram.byteOffset, size >> 2);
    this.vramView = new DataView(this.vram.buffer, this.vram.byteOffset, size);
    this.reset();
  }

  reset(): void {
    this.sr.fill(0); this.gr.fill(0); this.cr.fill(0); this.ar.fill(0); this.palette.fill(0);
    this.srIndex = this.grIndex = this.crIndex = this.arIndex = this.arFlipFlop = 0;
    this.misc = this.featureControl = this.st01 = 0;
    this.pelMask = 0xff;
    this.dacReadIndex = this.dacWriteIndex = this.dacSub = this.dacState = 0;
    this.latch = 0;
    this.vbe.fill(0);
    this.vbe[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
    this.vbeIndex = 0;
    this.bankOffset = 0;
    this.vbeLineOffset = this.vbeStartAddr = 0;
  }

  get vbeEnabled(): boolean { return (this.vbe[VBE_DISPI_INDEX_ENABLE]! & VBE_DISPI_ENABLED) !== 0; }
  get dac8bit(): boolean { return (this.vbe[VBE_DISPI_INDEX_ENABLE]! & VBE_DISPI_8BIT_DAC) !== 0; }

  /** Claims the legacy ports and the 0xA0000 window (a PCI VGA decodes them whatever its BARs say). */
  plugLegacy(ports: IoSpace, mmio: IoSpace): void {
    const at = (base: number): IoHandler => ({
      read: (o, s) => this.portRead(base + o, s),
      write: (o, s, v) => this.portWrite(base + o, s, v),
    });
    this.regions.push(
      ports.register(0x3c0, 16, at(0x3c0), 'vga'),
      ports.register(0x3b4, 2, at(0x3b4), 'vga mono crtc'),
      ports.register(0x3ba, 1, at(0x3ba), 'vga mono status'),
      ports.register(0x3d4, 2, at(0x3d4), 'vga crtc'),
      ports.register(0x3da, 1, at(0x3da), 'vga status'),
      // Index at 0x1CE, data at 0x1CF (and 0x1D0, where non-x86 Bochs puts it), word accesses.
      ports.register(VBE_DISPI_IOPORT_INDEX, 3, { read: (o, s) => this.vbePortRead(o, s), write: (o, s, v) => this.vbePortWrite(o, s, v) }, 'vbe dispi'),
      mmio.register(0xa0000, 0x20000, { read: (o, s) => this.legacyRead(o, s), write: (o, s, v) => this.legacyWrite(o, s, v) }, 'vga window'),
    );
  }

  unplugLegacy(): void {
    for (const r of this.regions.splice(0)) r.unregister();
  }

  textScreen(): TextScreen | null { return readTextScreen(this); }
  screenshot(opts: { cursor?: boolean } = {}): Screenshot { return renderScreenshot(this, opts); }

  // --- VGA ports (byte registers; a word access is two consecutive ports, as `outw(0x0300 | idx, 0x3c4)`).

  portRead(port: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.ioRead(port + i) << (8 * i);
    return v >>> 0;
  }

  portWrite(port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.ioWrite(port + i, (value >>> (8 * i)) & 0xff);
  }

  /** Ports of the other adapter (mono 0x3Bx while in colour, colour 0x3Dx while in mono) are not decoded (Misc bit 0). */
  private portInvalid(port: number): boolean {
    return this.misc & 1 ? port >= 0x3b0 && port <= 0x3bf : port >= 0x3d0 && port <= 0x3df;
  }

  private ioRead(port: number): number {
    if (this.portInvalid(port)) return 0xff;
    switch (port) {
      case 0x3c0: return this.arIndex; // the address register, in either phase of the flip-flop
      case 0x3c1: {
        const i = this.arIndex & 0x1f;
        return i < 0x15 ? this.ar[i]! : 0;
      }
      case 0x3c2: return 0; // input status 0: no switch sense, no pending vertical interrupt
      case 0x3c4: return this.srIndex;
      case 0x3c5: return this.sr[this.srIndex]!;
      case 0x3c6: return this.pelMask;
      case 0x3c7: return this.dacState;
      case 0x3c8: return this.dacWriteIndex;
      case 0x3c9: {
        const v = this.palette[this.dacReadIndex * 3 + this.dacSub]!;
        if (++this.dacSub === 3) { this.dacSub = 0; this.dacReadIndex = (this.dacReadIndex + 1) & 0xff; }
        return v;
      }
      case 0x3ca: return this.featureControl;
      case 0x3cc: return this.misc;
      case 0x3ce: return this.grIndex;
      case 0x3cf: return this.gr[this.grIndex]!;
      case 0x3b4: case 0x3d4: return this.crIndex;
      case 0x3b5: case 0x3d5: return this.cr[this.crIndex]!;
      case 0x3ba: case 0x3da:
        // Input status 1: display enable and vertical retrace toggle on every read, so a
        // loop waiting for either edge ends; reading it also resets the attribute flip-flop.
        this.st01 ^= 0x09;
        this.arFlipFlop = 0;
        return this.st01;
      default: return 0;
    }
  }

  private ioWrite(port: number, v: number): void {
    if (this.portInvalid(port)) return;
    switch (port) {
      case 0x3c0:
        if (this.arFlipFlop === 0) {
          this.arIndex = v & 0x3f;
        } else {
          const i = this.arIndex & 0x1f;
          if (i < 0x10) this.ar[i] = v & 0x3f;
          else if (i === 0x10) this.ar[i] = v & ~0x10;
          else if (i === 0x11) this.ar[i] = v;
          else if (i === 0x12) this.ar[i] = v & 0x3f;
          else if (i === 0x13 || i === 0x14) this.ar[i] = v & 0x0f;
        }
        this.arFlipFlop ^= 1;
        return;
      case 0x3c2: this.misc = v & ~0x10; return;
      case 0x3c4: this.srIndex = v & 7; return;
      case 0x3c5: this.sr[this.srIndex] = v & SR_MASK[this.srIndex]!; return;
      case 0x3c6: this.pelMask = v; return;
      case 0x3c7: this.dacReadIndex = v; this.dacSub = 0; this.dacState = 3; return;
      case 0x3c8: this.dacWriteIndex = v; this.dacSub = 0; this.dacState = 0; return;
      case 0x3c9:
        this.dacCache[this.dacSub] = v;
        if (++this.dacSub === 3) {
          this.palette.set(this.dacCache, this.dacWriteIndex * 3);
          this.dacSub = 0;
          this.dacWriteIndex = (this.dacWriteIndex + 1) & 0xff;
        }
        return;
      case 0x3ce: this.grIndex = v & 0x0f; return;
      case 0x3cf: this.gr[this.grIndex] = v & GR_MASK[this.grIndex]!; return;
      case 0x3b4: case 0x3d4: this.crIndex = v; return;
      case 0x3b5: case 0x3d5:
        // CR11 bit 7 protects CR00-CR07, except CR07's line compare bit 8.
        if (this.cr[CR_VSYNC_END]! & 0x80 && this.crIndex <= CR_OVERFLOW) {
          if (this.crIndex === CR_OVERFLOW) this.cr[CR_OVERFLOW] = (this.cr[CR_OVERFLOW]! & ~0x10) | (v & 0x10);
          return;
        }
        this.cr[this.crIndex] = v;
        return;
      case 0x3ba: case 0x3da: this.featureControl = v & 0x10; return;
    }
  }

  // --- The legacy window: 0xA0000 + offset.

  private legacyRead(offset: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.memRead(offset + i) << (8 * i);
    return v >>> 0;
  }

  private legacyWrite(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.memWrite(offset + i, (value >>> (8 * i)) & 0xff);
  }

  /** Guest offset in the 128 KiB window to VGA memory address, or -1 outside GR06's memory map. */
  private mapAddress(addr: number): number {
    switch ((this.gr[GR_MISC]! >> 2) & 3) {
      case 0: return addr; // A0000-BFFFF
      case 1: return addr < 0x10000 ? addr + this.bankOffset : -1; // A0000-AFFFF, banked by VBE
      case 2: return addr >= 0x10000 && addr < 0x18000 ? addr - 0x10000 : -1; // B0000-B7FFF
      default: return addr >= 0x18000 ? addr - 0x18000 : -1; // B8000-BFFFF
    }
  }

  /** A CPU read of VGA memory (reference manual: read modes 0 and 1, latches). */
  memRead(offset: number): number {
    const addr = this.mapAddress(offset);
    if (addr < 0) return 0xff;
    if (this.sr[SR_MEMORY_MODE]! & SR04_CHAIN4) return addr < this.vram.length ? this.vram[addr]! : 0xff;
    let plane: number;
    let a = addr;
    if (this.gr[GR_MODE]! & 0x10) {
      // Odd/even: address bit 0 picks plane 0/1 (or 2/3 with read map select bit 1).
      plane = (this.gr[GR_READ_MAP]! & 2) | (addr & 1);
      a = addr >> 1;
      return a * 4 < this.vram.length ? this.vram[a * 4 + plane]! : 0xff;
    }
    if (a * 4 >= this.vram.length) return 0xff;
    this.latch = this.vram32[a]!;
    if (!(this.gr[GR_MODE]! & 0x08)) {
      plane = this.gr[GR_READ_MAP]! & 3;
      return (this.latch >>> (plane * 8)) & 0xff;
    }
    // Read mode 1: 1 where every plane not in Color Don't Care matches Color Compare.
    let d = (this.latch ^ MASK16[this.gr[GR_COLOR_COMPARE]! & 0xf]!) & MASK16[this.gr[GR_COLOR_DONT_CARE]! & 0xf]!;
    d |= d >>> 16;
    d |= d >>> 8;
    return ~d & 0xff;
  }

  /** A CPU write of VGA memory (reference manual: write modes 0-3, set/reset, rotate, logical ops, bit mask, map mask). */
  memWrite(offset: number, value: number): void {
    const addr = this.mapAddress(offset);
    if (addr < 0) return;
    const mapMask = this.sr[SR_MAP_MASK]! & 0xf;
    if (this.sr[SR_MEMORY_MODE]! & SR04_CHAIN4) {
      // Chain-4: address bits 1:0 pick the plane and memory is linear (mode 13h, VBE banks).
      if (mapMask & (1 << (addr & 3)) && addr < this.vram.length) this.vram[addr] = value;
      return;
    }
    if (this.gr[GR_MODE]! & 0x10) {
      // Odd/even (text modes): even addresses to plane 0 (2), odd to plane 1 (3), at plane address addr >> 1.
      const plane = (this.gr[GR_READ_MAP]! & 2) | (addr & 1);
      const i = (addr >> 1) * 4 + plane;
      if (mapMask & (1 << plane) && i < this.vram.length) this.vram[i] = value;
      return;
    }
    if (addr * 4 >= this.vram.length) return;
    const gr = this.gr;
    let v: number;
    let bitMask = gr[GR_BIT_MASK]!;
    switch (gr[GR_MODE]! & 3) {
      case 0: {
        const rot = gr[GR_DATA_ROTATE]! & 7;
        let b = ((value >> rot) | (value << (8 - rot))) & 0xff;
        b |= b << 8;
        b |= b << 16;
        const sr = MASK16[gr[GR_ENABLE_SET_RESET]! & 0xf]!;
        v = ((b & ~sr) | (MASK16[gr[GR_SET_RESET]! & 0xf]! & sr)) >>> 0;
        break;
      }
      case 1:
        // The latches as they are, through the map mask only.
        this.storePlanes(addr, this.latch, mapMask);
        return;
      case 2:
        v = MASK16[value & 0xf]!;
        break;
      default: {
        const rot = gr[GR_DATA_ROTATE]! & 7;
        bitMask &= ((value >> rot) | (value << (8 - rot))) & 0xff;
        v = MASK16[gr[GR_SET_RESET]! & 0xf]!;
      }
    }
    switch (gr[GR_DATA_ROTATE]! >> 3 & 3) {
      case 1: v &= this.latch; break;
      case 2: v |= this.latch; break;
      case 3: v ^= this.latch; break;
    }
    bitMask |= bitMask << 8;
    bitMask |= bitMask << 16;
    v = ((v & bitMask) | (this.latch & ~bitMask)) >>> 0;
    this.storePlanes(addr, v, mapMask);
  }

  private storePlanes(addr: number, v: number, mapMask: number): void {
    const m = MASK16[mapMask]!;
    this.vram32[addr] = ((this.vram32[addr]! & ~m) | (v & m)) >>> 0;
  }

  // --- The linear frame buffer (BAR0): VRAM as bytes.

  lfbRead(offset: number, size: AccessSize): number {
    if (offset + size > this.vram.length) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    if (size === 1) return this.vram[offset]!;
    if (size === 2) return this.vramView.getUint16(offset, true);
    return this.vramView.getUint32(offset, true);
  }

  lfbWrite(offset: number, size: AccessSize, value: number): void {
    if (offset + size > this.vram.length) return;
    if (size === 1) this.vram[offset] = value;
    else if (size === 2) this.vramView.setUint16(offset, value, true);
    else this.vramView.setUint32(offset, value >>> 0, true);
  }

  // --- Bochs VBE.

  private vbePortRead(offset: number, size: AccessSize): number {
    const v = offset === 0 ? this.vbeIndex : this.vbeRead(this.vbeIndex);
    return size === 1 ? v & 0xff : v;
  }

  private vbePortWrite(offset: number, _size: AccessSize, value: number): void {
    if (offset === 0) this.vbeIndex = value & 0xffff;
    else this.vbeWrite(this.vbeIndex, value & 0xffff);
  }

  vbeRead(index: number): number {
    if (index === VBE_DISPI_INDEX_VIDEO_MEMORY_64K) return this.vram.length >>> 16;
    if (index >= VBE_DISPI_INDEX_NB) return 0;
    if (this.vbe[VBE_DISPI_INDEX_ENABLE]! & VBE_DISPI_GETCAPS) {
      // With GETCAPS the resolution and depth registers read the maximums (SeaBIOS's mode validation).
      if (index === VBE_DISPI_INDEX_XRES) return VBE_DISPI_MAX_XRES;
      if (index === VBE_DISPI_INDEX_YRES) return VBE_DISPI_MAX_YRES;
      if (index === VBE_DISPI_INDEX_BPP) return VBE_DISPI_MAX_BPP;
    }
    return this.vbe[index]!;
  }

  vbeWrite(index: number, v: number): void {
    const r = this.vbe;
    switch (index) {
      case VBE_DISPI_INDEX_ID:
        if (v >= VBE_DISPI_ID0 && v <= VBE_DISPI_ID5) r[index] = v;
        return;
      case VBE_DISPI_INDEX_XRES: case VBE_DISPI_INDEX_YRES: case VBE_DISPI_INDEX_BPP:
      case VBE_DISPI_INDEX_VIRT_WIDTH: case VBE_DISPI_INDEX_X_OFFSET: case VBE_DISPI_INDEX_Y_OFFSET:
        r[index] = v;
        this.vbeFixup();
        if (this.vbeEnabled) this.vbeSetVgaRegs();
        return;
      case VBE_DISPI_INDEX_BANK: {
        const bankMask = (this.vram.length >>> 16) - 1;
        v &= r[VBE_DISPI_INDEX_BPP] === 4 ? bankMask >> 2 : bankMask;
        r[index] = v;
        this.bankOffset = v << 16;
        return;
      }
      case VBE_DISPI_INDEX_ENABLE:
        if (v & VBE_DISPI_ENABLED && !(r[index]! & VBE_DISPI_ENABLED)) {
          r[VBE_DISPI_INDEX_VIRT_WIDTH] = 0;
          r[VBE_DISPI_INDEX_X_OFFSET] = 0;
          r[VBE_DISPI_INDEX_Y_OFFSET] = 0;
          r[index] = r[index]! | VBE_DISPI_ENABLED;
          this.vbeFixup();
          if (!(v & VBE_DISPI_NOCLEARMEM)) this.vram.fill(0, 0, Math.min(this.vram.length, r[VBE_DISPI_INDEX_YRES]! * this.vbeLineOffset));
          this.vbeSetVgaRegs();
        } else if (!(v & VBE_DISPI_ENABLED)) {
          this.bankOffset = 0;
        }
        r[index] = v;
        return;
    }
  }

  /**
   * Keeps the VBE registers within what the memory can show, as QEMU's
   * vbe_fixup_regs does: there is no way to report an error to the guest, so
   * each value moves to the nearest one that works.
   */
  private vbeFixup(): void {
    const r = this.vbe;
    if (!(r[VBE_DISPI_INDEX_ENABLE]! & VBE_DISPI_ENABLED)) return;
    let bits: number;
    switch (r[VBE_DISPI_INDEX_BPP]) {
      case 4: case 8: case 16: case 24: case 32: bits = r[VBE_DISPI_INDEX_BPP]!; break;
      case 15: bits = 16; break;
      default: bits = r[VBE_DISPI_INDEX_BPP] = 8;
    }
    r[VBE_DISPI_INDEX_XRES] = Math.min(Math.max(r[VBE_DISPI_INDEX_XRES]! & ~7, 8), VBE_DISPI_MAX_XRES);
    r[VBE_DISPI_INDEX_VIRT_WIDTH] = Math.max(Math.min(r[VBE_DISPI_INDEX_VIRT_WIDTH]! & ~7, VBE_DISPI_MAX_XRES), r[VBE_DISPI_INDEX_XRES]!);
    const lineLength = (r[VBE_DISPI_INDEX_VIRT_WIDTH]! * bits) >> 3;
    const maxY = Math.floor(this.vram.length / lineLength);
    r[VBE_DISPI_INDEX_YRES] = Math.min(Math.max(r[VBE_DISPI_INDEX_YRES]!, 1), VBE_DISPI_MAX_YRES, maxY);
    r[VBE_DISPI_INDEX_X_OFFSET] = Math.min(r[VBE_DISPI_INDEX_X_OFFSET]!, VBE_DISPI_MAX_XRES);
    r[VBE_DISPI_INDEX_Y_OFFSET] = Math.min(r[VBE_DISPI_INDEX_Y_OFFSET]!, VBE_DISPI_MAX_YRES);
    let offset = ((r[VBE_DISPI_INDEX_X_OFFSET]! * bits) >> 3) + r[VBE_DISPI_INDEX_Y_OFFSET]! * lineLength;
    if (offset + r[VBE_DISPI_INDEX_YRES]! * lineLength > this.vram.length) {
      r[VBE_DISPI_INDEX_Y_OFFSET] = 0;
      offset = (r[VBE_DISPI_INDEX_X_OFFSET]! * bits) >> 3;
      if (offset + r[VBE_DISPI_INDEX_YRES]! * lineLength > this.vram.length) {
        r[VBE_DISPI_INDEX_X_OFFSET] = 0;
        offset = 0;
      }
    }
    r[VBE_DISPI_INDEX_VIRT_HEIGHT] = Math.min(maxY, 0xffff);
    this.vbeLineOffset = lineLength;
    this.vbeStartAddr = offset;
  }

  /** What enabling VBE does to the VGA registers, so VGA-minded code sees a consistent graphics mode (QEMU's vbe_update_vgaregs). */
  private vbeSetVgaRegs(): void {
    const r = this.vbe;
    const cr = this.cr;
    this.gr[GR_MISC] = (this.gr[GR_MISC]! & ~0x0c) | 0x04 | 0x01; // graphics, A0000 64 KiB
    cr[0x17] = cr[0x17]! | 3; // no CGA address substitution
    cr[0x13] = this.vbeLineOffset >> 3;
    cr[0x01] = (r[VBE_DISPI_INDEX_XRES]! >> 3) - 1;
    const h = r[VBE_DISPI_INDEX_YRES]! - 1;
    cr[0x12] = h & 0xff;
    cr[CR_OVERFLOW] = (cr[CR_OVERFLOW]! & ~0x42) | ((h >> 7) & 0x02) | ((h >> 3) & 0x40);
    cr[0x18] = 0xff; // line compare out of the way
    cr[CR_OVERFLOW] = cr[CR_OVERFLOW]! | 0x10;
    cr[0x09] = cr[0x09]! | 0x40;
    let shift: number;
    if (r[VBE_DISPI_INDEX_BPP] === 4) {
      shift = 0;
      this.sr[SR_CLOCKING] = this.sr[SR_CLOCKING]! & ~0x08;
    } else {
      shift = 2;
      this.sr[SR_MEMORY_MODE] = this.sr[SR_MEMORY_MODE]! | SR04_CHAIN4;
      this.sr[SR_MAP_MASK] = this.sr[SR_MAP_MASK]! | 0x0f;
    }
    this.gr[GR_MODE] = (this.gr[GR_MODE]! & ~0x60) | (shift << 5);
    cr[0x09] = cr[0x09]! & ~0x9f; // no double scan
  }
}

/**
 * The stdvga as a PCI function: 1234:1111 class 0x030000, BAR0 the VRAM
 * (prefetchable), BAR2 QEMU's 4 KiB register window. The legacy ports and
 * window are claimed when the bus plugs it in.
 */
export class VgaPci extends PciFunction {
  readonly vga: Vga;
  private qextByteOrder = PCI_VGA_QEXT_LITTLE_ENDIAN;

  constructor(opts: VgaOptions = {}) {
    // Revision 2 announces the qemu extended registers at 0x600 (Linux's bochs-drm checks it).
    super('vga', { vendor: 0x1234, device: 0x1111, classCode: 0x030000, revision: 2, subVendor: 0x1af4, subDevice: 0x1100 });
    const vga = this.vga = new Vga(opts);
    this.addBar(0, {
      kind: 'mem', size: vga.vram.length, prefetchable: true, name: 'vga vram',
      handler: { read: (o, s) => vga.lfbRead(o, s), write: (o, s, v) => vga.lfbWrite(o, s, v) },
    });
    this.addBar(2, {
      kind: 'mem', size: PCI_VGA_MMIO_SIZE, name: 'vga mmio',
      handler: { read: (o, s) => this.mmioRead(o, s), write: (o, s, v) => this.mmioWrite(o, s, v) },
    });
    if (opts.rom) this.addRomBar(opts.rom);
  }

  override attach(spaces: PciSpaces): void {
    super.attach(spaces);
    this.vga.plugLegacy(spaces.ports, spaces.mmio);
  }

  /** Where BAR0 (the linear frame buffer) is, as vgabios reads it from config space. */
  get lfbAddress(): number { return (this.configRead(PCI_BASE_ADDRESS_0, 4) & ~0xf) >>> 0; }

  private mmioRead(o: number, size: AccessSize): number {
    if (o < PCI_VGA_EDID_SIZE) return 0; // no EDID blob: drivers use their default modes
    if (o >= PCI_VGA_IOPORT_OFFSET && o + size <= PCI_VGA_IOPORT_OFFSET + PCI_VGA_IOPORT_SIZE) {
      return this.vga.portRead(0x3c0 + o - PCI_VGA_IOPORT_OFFSET, size);
    }
    if (o >= PCI_VGA_BOCHS_OFFSET && o < PCI_VGA_BOCHS_OFFSET + PCI_VGA_BOCHS_SIZE) {
      return this.vga.vbeRead((o - PCI_VGA_BOCHS_OFFSET) >> 1);
    }
    if (o === PCI_VGA_QEXT_OFFSET) return PCI_VGA_QEXT_SIZE;
    if (o === PCI_VGA_QEXT_OFFSET + 4) return this.qextByteOrder;
    return 0;
  }

  private mmioWrite(o: number, size: AccessSize, v: number): void {
    if (o >= PCI_VGA_IOPORT_OFFSET && o + size <= PCI_VGA_IOPORT_OFFSET + PCI_VGA_IOPORT_SIZE) {
      this.vga.portWrite(0x3c0 + o - PCI_VGA_IOPORT_OFFSET, size, v);
    } else if (o >= PCI_VGA_BOCHS_OFFSET && o < PCI_VGA_BOCHS_OFFSET + PCI_VGA_BOCHS_SIZE) {
      this.vga.vbeWrite((o - PCI_VGA_BOCHS_OFFSET) >> 1, v & 0xffff);
    } else if (o === PCI_VGA_QEXT_OFFSET + 4) {
      // Only little-endian frame buffers are offered; a big-endian request is refused by keeping the value.
      if (v === PCI_VGA_QEXT_LITTLE_ENDIAN) this.qextByteOrder = v;
    }
  }
}
