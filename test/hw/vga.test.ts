// The stdvga (shared/hw/vga.ts, vga_display.ts, png.ts) driven as SeaBIOS's
// vgabios-stdvga drives it (vgasrc/stdvgaio.c register access,
// stdvgamodes.c stdvga_set_mode with its mode tables, stdvga.c
// stdvga_load_font, bochsvga.c bochsvga_setup and bochsvga_set_mode,
// vgafb.c text output), and as Linux's vgacon and bochs-drm use it.
import t from 'tap';
import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';
import { PciBus } from '../../shared/hw/pci.js';
import { encodePng } from '../../shared/hw/png.js';
import {
  VBE_DISPI_8BIT_DAC, VBE_DISPI_ENABLED, VBE_DISPI_GETCAPS, VBE_DISPI_ID0, VBE_DISPI_ID5, VBE_DISPI_INDEX_BANK, VBE_DISPI_INDEX_BPP,
  VBE_DISPI_INDEX_ENABLE, VBE_DISPI_INDEX_ID, VBE_DISPI_INDEX_VIDEO_MEMORY_64K, VBE_DISPI_INDEX_VIRT_HEIGHT, VBE_DISPI_INDEX_VIRT_WIDTH,
  VBE_DISPI_INDEX_XRES, VBE_DISPI_INDEX_Y_OFFSET, VBE_DISPI_INDEX_YRES, VBE_DISPI_LFB_ENABLED, VBE_DISPI_NOCLEARMEM, VgaPci,
} from '../../shared/hw/vga.js';
import { testMachine } from './fakes.js';

const LFB = 0xfd000000;
const MMIO = 0xfebf0000;

// SeaBIOS's mode tables (vgasrc/stdvgamodes.c): sequencer 1-4, misc, CRTC 0-0x18, attribute 0-0x13, graphics 0-8.
const MODE3 = {
  sequ: [0x00, 0x03, 0x00, 0x02], misc: 0x67,
  crtc: [0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff],
  actl: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08],
  grdc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff],
};
const MODE12 = {
  sequ: [0x01, 0x0f, 0x00, 0x06], misc: 0xe3,
  crtc: [0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff],
  actl: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00],
  grdc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff],
};
const MODE13 = {
  sequ: [0x01, 0x0f, 0x00, 0x0e], misc: 0x63,
  crtc: [0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff],
  actl: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x41, 0x00, 0x0f, 0x00],
  grdc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff],
};
type ModeTable = typeof MODE3;

/** The EGA's 64 colours (6-bit DAC values): bits 0-2 the 2/3 components, bits 3-5 the 1/3 ones. */
const PAL_EGA = Array.from({ length: 64 }, (_, i) => [
  0x2a * ((i >> 2) & 1) + 0x15 * ((i >> 5) & 1), 0x2a * ((i >> 1) & 1) + 0x15 * ((i >> 4) & 1), 0x2a * (i & 1) + 0x15 * ((i >> 3) & 1)]);

/** A font of our own making: distinct, non-trivial bits per character and scan line. */
const glyph = (c: number, row: number) => (row >= 14 ? 0 : ((c * 37) ^ (row * 91) ^ (c >> 3)) & 0xff);

function setup(opts: { vramSize?: number } = {}) {
  const m = testMachine();
  const dev = new VgaPci(opts);
  const bus = new PciBus(m);
  bus.plug(dev, 2);
  bus.configWrite(2 << 3, 0x10, 4, LFB);
  bus.configWrite(2 << 3, 0x18, 4, MMIO);
  bus.configWrite(2 << 3, 0x04, 2, 0x3);
  const outb = (port: number, v: number) => m.ports.write(port, 1, v);
  const outw = (port: number, v: number) => m.ports.write(port, 2, v);
  const inb = (port: number) => m.ports.read(port, 1);
  const inw = (port: number) => m.ports.read(port, 2);
  // vgasrc/stdvgaio.c
  const io = {
    sequW: (i: number, v: number) => outw(0x3c4, (v << 8) | i),
    sequR: (i: number) => { outb(0x3c4, i); return inb(0x3c5); },
    grdcW: (i: number, v: number) => outw(0x3ce, (v << 8) | i),
    grdcR: (i: number) => { outb(0x3ce, i); return inb(0x3cf); },
    crtcW: (i: number, v: number) => outw(0x3d4, (v << 8) | i),
    crtcR: (i: number) => { outb(0x3d4, i); return inb(0x3d5); },
    attrW: (i: number, v: number) => { inb(0x3da); const orig = inb(0x3c0); outb(0x3c0, i); outb(0x3c0, v); outb(0x3c0, orig); },
    attrR: (i: number) => { inb(0x3da); const orig = inb(0x3c0); outb(0x3c0, i); const v = inb(0x3c1); inb(0x3da); outb(0x3c0, orig); return v; },
    attrIndexW: (v: number) => { inb(0x3da); outb(0x3c0, v); },
    dacW: (i: number, rgb: number[]) => { outb(0x3c8, i); for (const c of rgb) outb(0x3c9, c); },
    dacR: (i: number) => { outb(0x3c7, i); return [inb(0x3c9), inb(0x3c9), inb(0x3c9)]; },
    dispiW: (i: number, v: number) => { outw(0x1ce, i); outw(0x1cf, v); },
    dispiR: (i: number) => { outw(0x1ce, i); return inw(0x1cf); },
  };
  const memW = (addr: number, size: 1 | 2 | 4, v: number) => m.mmio.write(addr, size, v);
  const memR = (addr: number, size: 1 | 2 | 4 = 1) => m.mmio.read(addr, size);
  return { m, dev, vga: dev.vga, outb, outw, inb, inw, io, memW, memR };
}
type Setup = ReturnType<typeof setup>;

/** stdvga_set_mode: palette, attribute, sequencer, graphics, CRTC, misc, enable video, clear, font. */
function setMode(s: Setup, mode: ModeTable, opts: { text: boolean; palette?: number[][] }) {
  const { io, memW } = s;
  io.dispiW(VBE_DISPI_INDEX_ENABLE, 0); // bochsvga_set_mode first turns VBE off
  s.outb(0x3c6, 0xff);
  const pal = opts.palette ?? PAL_EGA;
  pal.forEach((rgb, i) => io.dacW(i, rgb));
  for (let i = pal.length; i < 256; i++) io.dacW(i, [0, 0, 0]);
  mode.actl.forEach((v, i) => io.attrW(i, v));
  io.attrW(0x14, 0);
  io.sequW(0, 0x03);
  mode.sequ.forEach((v, i) => io.sequW(i + 1, v));
  mode.grdc.forEach((v, i) => io.grdcW(i, v));
  io.crtcW(0x11, 0);
  mode.crtc.forEach((v, i) => io.crtcW(i, v));
  s.outb(0x3c2, mode.misc);
  io.attrIndexW(0x20);
  if (opts.text) {
    for (let a = 0; a < 0x8000; a += 2) memW(0xb8000 + a, 2, 0x0720); // memset16_far(SEG_CTEXT, 0, 0x0720, 32K)
    loadFont(s);
  } else {
    for (let a = 0; a < 0x10000; a += 2) memW(0xa0000 + a, 2, 0);
  }
}

/** stdvga_load_font with our font: plane 2 through the A0000 window, 32 bytes a character. */
function loadFont(s: Setup) {
  const { io } = s;
  io.sequW(0, 1); io.sequW(2, 4); io.sequW(4, 7); io.sequW(0, 3);
  io.grdcW(4, 2); io.grdcW(5, 0); io.grdcW(6, 4);
  for (let c = 0; c < 256; c++) for (let r = 0; r < 16; r++) s.memW(0xa0000 + c * 32 + r, 1, glyph(c, r));
  io.sequW(0, 1); io.sequW(2, 3); io.sequW(4, 3); io.sequW(0, 3);
  io.grdcW(6, s.inb(0x3cc) & 1 ? 0x0e : 0x0a);
  io.grdcW(4, 0); io.grdcW(5, 0x10);
}

/** vgafb.c's text output: a word per cell at B800, then the cursor in CR0E/CR0F. */
function print(s: Setup, row: number, col: number, text: string, attr = 0x07) {
  for (let i = 0; i < text.length; i++) s.memW(0xb8000 + (row * 80 + col + i) * 2, 2, text.charCodeAt(i) | (attr << 8));
  const pos = row * 80 + col + text.length;
  s.io.crtcW(0x0e, pos >> 8);
  s.io.crtcW(0x0f, pos & 0xff);
}

function pixel(shot: { width: number; rgba: Uint8Array }, x: number, y: number): number[] {
  const o = (y * shot.width + x) * 4;
  return [...shot.rgba.subarray(o, o + 4)];
}
const rgb6 = (c: number[]) => [...c.map((x) => (x << 2) | (x >> 4)), 255];

t.test('PCI identity and BARs as QEMU\'s stdvga; legacy ranges claimed', async (t) => {
  const { m, dev } = setup();
  t.equal(dev.configRead(0, 4), 0x11111234, '1234:1111');
  t.equal(dev.configRead(0x08, 4) >>> 8, 0x030000, 'VGA-compatible display controller');
  t.equal(dev.configRead(0x08, 1), 2, 'revision 2: qemu extended registers');
  t.equal(dev.configRead(0x10, 4), (LFB | 0x8) >>> 0, 'BAR0 prefetchable memory');
  t.equal(dev.lfbAddress, LFB);
  dev.configWrite(0x10, 4, 0xffffffff);
  t.equal(dev.configRead(0x10, 4), (0xff000000 | 0x8) >>> 0, '16 MiB');
  dev.configWrite(0x10, 4, LFB);
  t.same(m.ports.list().map((r) => r.base.toString(16)), ['1ce', '3b4', '3ba', '3c0', '3d4', '3da']);
  t.same(m.mmio.list().map((r) => [r.base.toString(16), r.length.toString(16)]),
    [['a0000', '20000'], ['fd000000', '1000000'], ['febf0000', '1000']]);
});

t.test('vgabios init: stdvga_setup and bochsvga_setup', async (t) => {
  const s = setup();
  const { io } = s;
  s.outb(0x3c2, 0xc3);
  io.sequW(0x04, 0x02);
  t.equal(s.inb(0x3cc), 0xc3, 'misc reads back at 0x3CC');
  t.equal(io.sequR(4), 0x02);
  t.equal(io.dispiR(VBE_DISPI_INDEX_ID), VBE_DISPI_ID5, 'ID after reset');
  io.dispiW(VBE_DISPI_INDEX_ID, VBE_DISPI_ID0);
  t.equal(io.dispiR(VBE_DISPI_INDEX_ID), VBE_DISPI_ID0, 'DISPI detected');
  io.dispiW(VBE_DISPI_INDEX_ID, VBE_DISPI_ID5);
  io.dispiW(VBE_DISPI_INDEX_ID, 0x1234);
  t.equal(io.dispiR(VBE_DISPI_INDEX_ID), VBE_DISPI_ID5, 'an unknown ID is refused');
  t.equal(io.dispiR(VBE_DISPI_INDEX_VIDEO_MEMORY_64K) * 65536, 16 << 20, 'VIDEO_MEMORY_64K');
  const en = io.dispiR(VBE_DISPI_INDEX_ENABLE);
  io.dispiW(VBE_DISPI_INDEX_ENABLE, en | VBE_DISPI_GETCAPS);
  t.equal(io.dispiR(VBE_DISPI_INDEX_XRES), 16000, 'max xres');
  t.equal(io.dispiR(VBE_DISPI_INDEX_BPP), 32, 'max bpp');
  io.dispiW(VBE_DISPI_INDEX_ENABLE, en);
  t.equal(io.dispiR(VBE_DISPI_INDEX_XRES), 0, 'GETCAPS off: the register itself');
  // stdvga's MMIO BAR: VBE registers at 0x500, VGA ports at 0x400, qemu extended registers at 0x600.
  t.equal(s.memR(MMIO + 0x500 + 2 * VBE_DISPI_INDEX_ID, 2), VBE_DISPI_ID5);
  s.memW(MMIO + 0x400 + 4, 1, 0x02);
  t.equal(s.memR(MMIO + 0x400 + 4), 0x02, 'sequencer index through MMIO');
  t.equal(s.memR(MMIO + 0x600, 4), 8, 'qext size');
  t.equal(s.memR(MMIO + 0x604, 4), 0x1e1e1e1e, 'little-endian');
  t.equal(s.memR(MMIO + 0, 1), 0, 'no EDID');
});

t.test('mode 3 as vgabios sets it, text printed, textScreen and screenshot', async (t) => {
  const s = setup();
  s.outb(0x3c2, 0xc3);
  s.io.sequW(0x04, 0x02);
  setMode(s, MODE3, { text: true });
  // The registers read back as written.
  t.equal(s.io.attrR(0x10), 0x0c, 'AR10 via the flip-flop');
  t.equal(s.io.crtcR(0x09), 0x4f);
  t.equal(s.io.grdcR(6), 0x0e);
  t.same(s.io.dacR(7), [0x2a, 0x2a, 0x2a], 'DAC entry 7');
  t.equal(s.inb(0x3c7), 3, 'DAC state: read');
  const banner = 'SeaBIOS (version 1.16.3-debian)';
  print(s, 0, 0, banner);
  print(s, 1, 0, 'Booting from Hard Disk...', 0x1e);
  print(s, 2, 0, '\u00c4\u00c4\u00b3');
  const screen = s.vga.textScreen()!;
  t.equal(screen.cols, 80);
  t.equal(screen.rows, 25);
  t.equal(screen.lines[0], banner.padEnd(80));
  t.equal(screen.lines[1]!.trimEnd(), 'Booting from Hard Disk...');
  t.equal(screen.lines[2]!.slice(0, 3), '──│', 'CP437 box drawing');
  t.equal(screen.lines[24], ' '.repeat(80), 'cleared with 0x0720');
  t.equal(screen.cells[80]! >> 8, 0x1e, 'attribute from plane 1');
  t.same(screen.cursor, { row: 2, col: 3, visible: true }, 'cursor from CR0E/CR0F');
  t.equal(s.memR(0xb8000, 2), 0x0753, 'reads back through odd/even');

  const shot = s.vga.screenshot();
  t.equal(shot.mode, 'text');
  t.equal(shot.width, 720, '80 columns of 9 dots');
  t.equal(shot.height, 400, '25 rows of 16 lines');
  // Every dot of 'S' at row 0, column 0 from our font in plane 2, grey on black.
  const grey = rgb6([0x2a, 0x2a, 0x2a]);
  const black = rgb6([0, 0, 0]);
  let mismatches = 0;
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 9; x++) {
      const on = x < 8 && (glyph(0x53, y) >> (7 - x)) & 1;
      if (JSON.stringify(pixel(shot, x, y)) !== JSON.stringify(on ? grey : black)) mismatches++;
    }
  }
  t.equal(mismatches, 0, 'glyph dots from plane 2, DAC colours through the attribute palette');
  // Yellow on blue: attribute 0x1e -> palette 0x3e (bright yellow), 0x01 (blue).
  t.same(pixel(shot, 8, 16 + 5), rgb6(PAL_EGA[0x01]!), 'ninth column is background for letters: blue');
  const boxX = 8;
  t.same(pixel(shot, boxX, 32 + 3), (glyph(0xc4, 3) & 1) ? grey : black, 'ninth column repeats the eighth for 0xC0-0xDF');
  t.same(pixel(shot, 18 + 8, 32 + 3), black, 'but not for 0xB3');
  t.same(pixel(shot, 9 * 3 + 4, 32 + 13), grey, 'cursor on scan lines 13-14 of row 2, column 3');
  t.same(pixel(s.vga.screenshot({ cursor: false }), 9 * 3 + 4, 32 + 13), (glyph(0x20, 13) >> 3) & 1 ? grey : black, 'without the cursor');
  let yellow = 0;
  for (let x = 0; x < 9; x++) for (let y = 16; y < 32; y++) if (JSON.stringify(pixel(shot, x, y)) === JSON.stringify(rgb6(PAL_EGA[0x3e]!))) yellow++;
  t.ok(yellow > 0, 'yellow foreground from attribute 0x1e');

  // PNG of it: chunks with valid CRCs (zlib's own CRC-32), pixels intact.
  const png = encodePng(shot.width, shot.height, shot.rgba);
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let o = 8;
  const idat: Buffer[] = [];
  while (o < png.length) {
    const len = png.readUInt32BE(o);
    const type = png.toString('latin1', o + 4, o + 8);
    t.equal(png.readUInt32BE(o + 8 + len), zlibCrc32(png.subarray(o + 4, o + 8 + len)), `${type} CRC`);
    if (type === 'IHDR') t.same([png.readUInt32BE(o + 8), png.readUInt32BE(o + 12), png[o + 16], png[o + 17]], [720, 400, 8, 6]);
    if (type === 'IDAT') idat.push(png.subarray(o + 8, o + 8 + len));
    o += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  t.equal(raw.length, 400 * (1 + 720 * 4));
  t.same([...raw.subarray(1 + 4 * 9 * 30, 1 + 4 * 9 * 30 + 4)], pixel(shot, 9 * 30, 0), 'pixels survive the encoding');
});

t.test('text mode as Linux vgacon moves it: start address scrolls, cursor off', async (t) => {
  const s = setup();
  s.outb(0x3c2, 0xc3);
  setMode(s, MODE3, { text: true });
  for (let row = 0; row < 50; row++) print(s, row, 0, `line ${row}`);
  s.io.crtcW(0x0c, (80 * 10) >> 8);
  s.io.crtcW(0x0d, (80 * 10) & 0xff);
  const screen = s.vga.textScreen()!;
  t.equal(screen.start, 800);
  t.equal(screen.lines[0]!.trimEnd(), 'line 10', 'the screen starts at row 10 of memory');
  t.equal(screen.lines[24]!.trimEnd(), 'line 34');
  t.same(screen.cursor, { row: 39, col: 7, visible: false }, 'cursor below the screen');
  s.io.crtcW(0x0a, 0x20);
  print(s, 60, 0, 'x');
  t.equal(s.vga.textScreen()!.cursor.visible, false, 'CR0A bit 5 hides the cursor');
  s.io.attrIndexW(0x00);
  t.equal(s.vga.screenshot().mode, 'blank', 'palette address source off: dark');
  t.equal(s.vga.textScreen()!.lines[2]!.trimEnd(), 'line 12', 'the text is still there');
});

t.test('attribute flip-flop, DAC, CRTC protection, port decode', async (t) => {
  const s = setup();
  s.outb(0x3c2, 0x01);
  s.inb(0x3da);
  s.outb(0x3c0, 0x11);
  t.equal(s.inb(0x3c0), 0x11, 'the index reads back at 0x3C0 (and does not move the flip-flop)');
  s.outb(0x3c0, 0x05);
  t.equal(s.inb(0x3c0), 0x11, 'also after the data write');
  s.outb(0x3c0, 0x12); // back to index phase: this is an index
  s.outb(0x3c0, 0xff);
  t.equal(s.io.attrR(0x12), 0x3f, 'colour plane enable keeps 6 bits');
  t.equal(s.io.attrR(0x11), 0x05, 'overscan');
  s.inb(0x3da);
  s.outb(0x3c0, 0x07);
  s.inb(0x3da); // resets the flip-flop: the next write is an index again
  s.outb(0x3c0, 0x08);
  s.outb(0x3c0, 0x2a);
  t.equal(s.io.attrR(0x08), 0x2a, '0x3DA read resets the flip-flop');
  // DAC auto-increment in both directions.
  s.outb(0x3c8, 254);
  for (const c of [1, 2, 3, 4, 5, 6, 7, 8, 9]) s.outb(0x3c9, c);
  t.equal(s.inb(0x3c8), 1, 'write index wrapped past 255');
  s.outb(0x3c7, 255);
  t.same([s.inb(0x3c9), s.inb(0x3c9), s.inb(0x3c9), s.inb(0x3c9)], [4, 5, 6, 7], 'read index advances every three');
  // CR11 bit 7 protects CR0-CR7 but CR7 bit 4.
  s.io.crtcW(0x11, 0x80);
  s.io.crtcW(0x01, 0x4f);
  t.equal(s.io.crtcR(0x01), 0, 'protected');
  s.io.crtcW(0x07, 0xff);
  t.equal(s.io.crtcR(0x07), 0x10, 'line compare bit 8 still writable');
  s.io.crtcW(0x11, 0);
  // Colour vs mono decode.
  s.outb(0x3d4, 0x0e);
  t.equal(s.inb(0x3d4), 0x0e);
  t.equal(s.inb(0x3b4), 0xff, 'mono CRTC not decoded in colour mode');
  s.outb(0x3c2, 0x00);
  t.equal(s.inb(0x3d5), 0xff, 'colour CRTC not decoded in mono mode');
  s.outb(0x3b4, 0x0e);
  t.equal(s.inb(0x3b4), 0x0e, 'mono CRTC');
  t.not(s.inb(0x3ba) & 0x08, s.inb(0x3ba) & 0x08, 'retrace toggles');
});

t.test('memory map select decides where the window answers', async (t) => {
  const s = setup();
  s.io.sequW(4, 0x06); // planar, no chain-4: one plane byte per address
  s.io.sequW(2, 0x01);
  s.io.grdcW(5, 0x00);
  s.io.grdcW(8, 0xff);
  s.io.grdcW(6, 0x0c); // B8000
  s.memW(0xa0000, 1, 0x11);
  t.equal(s.vga.vram[0], 0, 'A0000 not decoded in map 3');
  t.equal(s.memR(0xa0000), 0xff);
  s.memW(0xb8000, 1, 0x22);
  t.equal(s.vga.vram[0], 0x22, 'B8000 is address 0');
  s.io.grdcW(6, 0x08); // B0000-B7FFF
  s.memW(0xb0004, 1, 0x33);
  t.equal(s.vga.vram[16], 0x33);
  t.equal(s.memR(0xb8000), 0xff, 'B8000 not decoded in map 2');
  s.io.grdcW(6, 0x00); // A0000-BFFFF
  s.memW(0xb0000, 1, 0x44);
  t.equal(s.vga.vram[0x10000 * 4], 0x44, 'the whole 128 KiB in map 0');
  s.io.grdcW(6, 0x04);
  t.equal(s.memR(0xb0000), 0xff, 'map 1 is A0000-AFFFF only');
});

t.test('planar write modes 0-3, logical operations, read modes 0/1, latches', async (t) => {
  const s = setup();
  s.outb(0x3c2, 0xe3);
  setMode(s, MODE12, { text: false });
  const { io, vga } = s;
  const planes = (a: number) => [...vga.vram.subarray(a * 4, a * 4 + 4)];
  // Mode 0, plain: the byte to every plane the map mask enables.
  s.memW(0xa0000, 1, 0xa5);
  t.same(planes(0), [0xa5, 0xa5, 0xa5, 0xa5]);
  io.sequW(2, 0x05);
  s.memW(0xa0001, 1, 0x3c);
  t.same(planes(1), [0x3c, 0, 0x3c, 0], 'map mask 0101');
  io.sequW(2, 0x0f);
  // Set/reset on planes 0 and 1 with value 0001: plane 0 all ones, plane 1 all zeros.
  io.grdcW(0, 0x01); io.grdcW(1, 0x03);
  s.memW(0xa0002, 1, 0x0f);
  t.same(planes(2), [0xff, 0x00, 0x0f, 0x0f], 'set/reset');
  io.grdcW(1, 0);
  // Rotate by 4.
  io.grdcW(3, 0x04);
  s.memW(0xa0003, 1, 0x12);
  t.same(planes(3), [0x21, 0x21, 0x21, 0x21], 'rotate');
  io.grdcW(3, 0);
  // Bit mask keeps the latched bits.
  s.memR(0xa0000); // latch a5 in every plane
  io.grdcW(8, 0x0f);
  s.memW(0xa0000, 1, 0x00);
  t.same(planes(0), [0xa0, 0xa0, 0xa0, 0xa0], 'bit mask 0x0f: high nibble from the latches');
  io.grdcW(8, 0xff);
  // Logical operations against the latches (a0 now).
  for (const [fn, want] of [[1, 0xa0 & 0x3c], [2, 0xa0 | 0x3c], [3, 0xa0 ^ 0x3c]] as const) {
    s.memR(0xa0000);
    io.grdcW(3, fn << 3);
    s.memW(0xa0010, 1, 0x3c);
    t.same(planes(0x10), [want, want, want, want], `function ${['', 'AND', 'OR', 'XOR'][fn]}`);
  }
  io.grdcW(3, 0);
  // Mode 1: copy the latches (four planes at once, as scrolling does).
  vga.vram.set([1, 2, 3, 4], 0x20 * 4);
  io.grdcW(5, 0x01);
  s.memR(0xa0020);
  s.memW(0xa0030, 1, 0xee);
  t.same(planes(0x30), [1, 2, 3, 4], 'write mode 1');
  // Mode 2: the low nibble is a colour, spread over the bit mask.
  io.grdcW(5, 0x02);
  io.grdcW(8, 0x81);
  s.memR(0xa0040);
  s.memW(0xa0040, 1, 0x0a);
  t.same(planes(0x40), [0x00, 0x81, 0x00, 0x81], 'write mode 2: colour 1010 at bits 7 and 0');
  // Mode 3: set/reset colour, the rotated byte ANDed with the bit mask.
  io.grdcW(5, 0x03);
  io.grdcW(8, 0xff);
  io.grdcW(0, 0x06);
  s.memR(0xa0050);
  s.memW(0xa0050, 1, 0xf0);
  t.same(planes(0x50), [0x00, 0xf0, 0xf0, 0x00], 'write mode 3');
  // Read mode 0: the plane GR04 names; read mode 1: colour compare.
  io.grdcW(5, 0x00);
  io.grdcW(4, 2);
  t.equal(s.memR(0xa0050), 0xf0, 'read map 2');
  vga.vram.set([0xff, 0x0f, 0xf0, 0x00], 0x60 * 4);
  io.grdcW(5, 0x08);
  io.grdcW(2, 0x05); // compare with colour 0101
  io.grdcW(7, 0x0f);
  t.equal(s.memR(0xa0060), 0xf0 & ~0x0f & 0xff, 'pixels of colour 0101 (planes 0 and 2 set, 1 and 3 clear)');
  io.grdcW(7, 0x01); // only plane 0 counts
  t.equal(s.memR(0xa0060), 0xff, 'don\'t care on planes 1-3');
  io.grdcW(5, 0x00);

  // A screenshot of mode 12h: 640x480, 16 colours through the attribute palette.
  vga.vram.fill(0, 0, 0x40000);
  vga.vram.set([0x80, 0x80, 0x00, 0x80], (80 * 10 + 1) * 4); // pixel (8, 10): colour 1011
  const shot = vga.screenshot();
  t.equal(shot.mode, 'vga16');
  t.same([shot.width, shot.height], [640, 480]);
  t.same(pixel(shot, 8, 10), rgb6(PAL_EGA[0x3b]!), 'colour 11 -> AR0B 0x3b -> DAC');
  t.same(pixel(shot, 9, 10), rgb6(PAL_EGA[0]!), 'its neighbour black');
  io.attrW(0x12, 0x07);
  t.same(pixel(vga.screenshot(), 8, 10), rgb6(PAL_EGA[0x03]!), 'colour plane enable masks plane 3');
});

t.test('mode 13h: chain-4, 256 colours, 320x200', async (t) => {
  const s = setup();
  const pal = Array.from({ length: 256 }, (_, i) => [i & 0x3f, (i >> 2) & 0x3f, 0x3f - (i & 0x3f)]);
  s.outb(0x3c2, 0xc3); // stdvga_setup: colour ports
  setMode(s, MODE13, { text: false, palette: pal });
  for (let x = 0; x < 320; x++) s.memW(0xa0000 + 199 * 320 + x, 1, x & 0xff);
  s.memW(0xa0000 + 5 * 320 + 8, 4, 0x44332211);
  t.equal(s.vga.vram[5 * 320 + 9], 0x22, 'chain-4 is linear');
  t.equal(s.memR(0xa0000 + 5 * 320 + 8, 4), 0x44332211);
  const shot = s.vga.screenshot();
  t.equal(shot.mode, 'vga256');
  t.same([shot.width, shot.height], [320, 200]);
  t.same(pixel(shot, 300, 199), rgb6(pal[300 & 0xff]!));
  t.same(pixel(shot, 10, 5), rgb6(pal[0x33]!));
  s.outb(0x3c6, 0x0f);
  t.same(pixel(s.vga.screenshot(), 10, 5), rgb6(pal[0x03]!), 'the PEL mask');
});

t.test('Bochs VBE as bochsvga_set_mode sets it: LFB at 8/16/24/32 bpp, banks, offsets', async (t) => {
  const s = setup();
  const { io } = s;
  s.outb(0x3c2, 0xc3);
  setMode(s, MODE3, { text: true });
  const vbeMode = (w: number, h: number, bpp: number, flags = VBE_DISPI_LFB_ENABLED) => {
    io.dispiW(VBE_DISPI_INDEX_ENABLE, 0);
    io.dispiW(VBE_DISPI_INDEX_BPP, bpp);
    io.dispiW(VBE_DISPI_INDEX_XRES, w);
    io.dispiW(VBE_DISPI_INDEX_YRES, h);
    io.dispiW(VBE_DISPI_INDEX_BANK, 0);
    io.dispiW(VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | flags);
    io.crtcW(0x11, 0);
    io.crtcW(0x01, w / 8 - 1);
    io.attrIndexW(0x20);
  };
  const lfbW = (off: number, size: 1 | 2 | 4, v: number) => s.memW(LFB + off, size, v);

  vbeMode(1024, 768, 32);
  t.equal(s.vga.textScreen(), null, 'no text in a graphics mode');
  t.equal(io.dispiR(VBE_DISPI_INDEX_VIRT_WIDTH), 1024);
  t.equal(io.dispiR(VBE_DISPI_INDEX_VIRT_HEIGHT), Math.floor((16 << 20) / 4096), 'virtual height: what memory holds');
  t.equal(io.grdcR(6) & 1, 1, 'VGA registers say graphics');
  lfbW((100 * 1024 + 200) * 4, 4, 0x00123456); // B G R X in memory: 56 34 12
  let shot = s.vga.screenshot();
  t.equal(shot.mode, 'vbe32');
  t.same([shot.width, shot.height], [1024, 768]);
  t.same(pixel(shot, 200, 100), [0x12, 0x34, 0x56, 255]);
  t.equal(s.memR(LFB + (100 * 1024 + 200) * 4, 4), 0x00123456, 'LFB reads back');
  // Panning: Y_OFFSET moves the displayed start.
  io.dispiW(VBE_DISPI_INDEX_Y_OFFSET, 50);
  t.same(pixel(s.vga.screenshot(), 200, 50), [0x12, 0x34, 0x56, 255], 'Y_OFFSET scrolls');
  io.dispiW(VBE_DISPI_INDEX_Y_OFFSET, 0);

  vbeMode(800, 600, 16);
  t.equal(s.vga.vram[(100 * 1024 + 200) * 4 + 2], 0, 'enabling cleared the memory');
  lfbW((10 * 800 + 20) * 2, 2, 0xf800); // pure red in 5:6:5
  lfbW((10 * 800 + 21) * 2, 2, 0x07e0);
  shot = s.vga.screenshot();
  t.equal(shot.mode, 'vbe16');
  t.same(pixel(shot, 20, 10), [255, 0, 0, 255]);
  t.same(pixel(shot, 21, 10), [0, 255, 0, 255]);

  vbeMode(640, 480, 24, VBE_DISPI_LFB_ENABLED | VBE_DISPI_NOCLEARMEM);
  t.equal(s.vga.vram[(10 * 800 + 20) * 2 + 1], 0xf8, 'NOCLEARMEM kept the memory');
  lfbW(3 * (640 * 2 + 3), 1, 0x01); lfbW(3 * (640 * 2 + 3) + 1, 1, 0x02); lfbW(3 * (640 * 2 + 3) + 2, 1, 0x03);
  t.same(pixel(s.vga.screenshot(), 3, 2), [3, 2, 1, 255], '24 bpp is B G R');

  vbeMode(320, 200, 8, VBE_DISPI_LFB_ENABLED | VBE_DISPI_8BIT_DAC);
  io.dacW(9, [0x80, 0x40, 0xff]);
  lfbW(320 * 7 + 7, 1, 9);
  t.same(pixel(s.vga.screenshot(), 7, 7), [0x80, 0x40, 0xff, 255], '8 bpp through an 8-bit DAC');
  t.equal(io.crtcR(0x13), 320 / 8, 'CR13 from the VBE line length');
  io.dispiW(VBE_DISPI_INDEX_VIRT_WIDTH, 640);
  t.equal(io.crtcR(0x13), 640 / 8, 'and follows it while VBE is on');
  lfbW(640 * 3 + 7, 1, 9);
  t.same(pixel(s.vga.screenshot(), 7, 3), [0x80, 0x40, 0xff, 255], 'lines of 640 bytes');
  io.dispiW(VBE_DISPI_INDEX_VIRT_WIDTH, 320);
  // Banked access through A0000 (VBE windows of 64 KiB).
  io.dispiW(VBE_DISPI_INDEX_BANK, 1);
  s.memW(0xa0000 + 4, 1, 0x77);
  t.equal(s.vga.vram[0x10000 + 4], 0x77, 'bank 1 maps A0000 to 64 KiB');
  io.dispiW(VBE_DISPI_INDEX_BANK, 0x1234);
  t.equal(io.dispiR(VBE_DISPI_INDEX_BANK), 0x1234 & 0xff, 'bank masked to the memory');
  // Fix-ups: a depth that does not exist becomes 8, widths round down to 8 pixels.
  io.dispiW(VBE_DISPI_INDEX_BPP, 7);
  t.equal(io.dispiR(VBE_DISPI_INDEX_BPP), 8);
  io.dispiW(VBE_DISPI_INDEX_XRES, 1001);
  t.equal(io.dispiR(VBE_DISPI_INDEX_XRES), 1000);
  io.dispiW(VBE_DISPI_INDEX_YRES, 60000);
  t.equal(io.dispiR(VBE_DISPI_INDEX_YRES), 12000, 'YRES within the maximum and the memory');

  // Back to mode 3: text again, with what vgabios put there.
  setMode(s, MODE3, { text: true });
  print(s, 0, 0, 'back in text');
  t.equal(s.vga.textScreen()!.lines[0]!.trimEnd(), 'back in text');
  t.equal(s.vga.screenshot().mode, 'text');
});

t.test('VRAM size is a parameter; bad sizes are refused', async (t) => {
  const s = setup({ vramSize: 4 << 20 });
  t.equal(s.io.dispiR(VBE_DISPI_INDEX_VIDEO_MEMORY_64K), 64);
  t.throws(() => new VgaPci({ vramSize: 3 << 20 }), /power of two/);
});
