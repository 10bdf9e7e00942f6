// What a VGA (vga.ts) shows: the text of a text mode, and the screen as an
// RGBA bitmap, computed from the registers the way the CRT controller,
// attribute controller and DAC scan VGA memory out (IBM VGA XGA Technical
// Reference Manual; QEMU's vga.c vga_draw_text/vga_draw_graphic for the
// emulated-card conventions of vga.ts's memory layout).
//
// Text: cells at plane address start + row * 2 * CR13 + column, character
// in plane 0, attribute in plane 1; the glyph of character c is 32 bytes at
// c * 32 in plane 2, in the character map SR03 selects for the attribute's
// bit 3 (whatever font the BIOS or the OS loaded there: no font of ours).
// Colours: attribute nibble -> attribute controller palette (with the colour
// select register) -> DAC. Blinking text is drawn in its visible phase; the
// cursor is drawn unless asked not to.
//
// Graphics: Bochs VBE at 8 (palette), 15, 16, 24 and 32 bits per pixel; VGA
// 256-colour (mode 13h: GR05 shift 2, chain-4) and 16-colour planar modes
// (0Dh-12h, 6Ah). Left out: CGA-compatible 2-colour/4-colour modes (04h-06h,
// GR05 interleave and CR17 address substitution), VBE 4 bpp, line compare
// (split screen), horizontal panning and the overscan border.
import type { Vga } from './vga.js';

export interface TextScreen {
  cols: number;
  rows: number;
  /** Each row as text: CP437 code points mapped to Unicode (0 and 0x20 show as spaces). */
  lines: string[];
  /** Per cell, character | attribute << 8, row after row. */
  cells: Uint16Array;
  /** Where the cursor is (row/col may fall off the screen when the CRTC puts it there) and whether it shows. */
  cursor: { row: number; col: number; visible: boolean };
  /** CRTC start address, in cells. */
  start: number;
}

export interface Screenshot {
  width: number;
  height: number;
  /** width * height pixels of R, G, B, A. */
  rgba: Uint8Array;
  /** What was drawn: a text mode, a VGA graphics mode, a VBE mode, or nothing (screen off or a mode not drawn). */
  mode: 'text' | 'vga256' | 'vga16' | `vbe${number}` | 'blank';
}

/** Code page 437 as Unicode, the VGA's built-in character set. */
export const CP437 = Array.from(
  '\u0020☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼'
  + ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~⌂'
  + 'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»'
  + '░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀'
  + 'αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0',
);

/** Visible lines of the display (CR12 with its overflow bits in CR07), before dividing by the character height or double scan. */
function displayLines(v: Vga): number {
  const cr = v.cr;
  return (cr[0x12]! | ((cr[0x07]! & 0x02) << 7) | ((cr[0x07]! & 0x40) << 3)) + 1;
}

function isTextMode(v: Vga): boolean { return !v.vbeEnabled && (v.gr[0x06]! & 1) === 0; }

export function readTextScreen(v: Vga): TextScreen | null {
  if (!isTextMode(v)) return null;
  const cr = v.cr;
  const cols = cr[0x01]! + 1;
  const cheight = (cr[0x09]! & 0x1f) + 1;
  const lines = displayLines(v) >> (cr[0x09]! >> 7);
  const rows = Math.max(1, Math.floor(lines / cheight));
  const stride = cr[0x13]! * 2;
  const start = (cr[0x0c]! << 8) | cr[0x0d]!;
  const cells = new Uint16Array(cols * rows);
  const text: string[] = [];
  for (let row = 0; row < rows; row++) {
    let s = '';
    for (let col = 0; col < cols; col++) {
      const a = ((start + row * stride + col) & 0xffff) * 4;
      const ch = v.vram[a]!;
      cells[row * cols + col] = ch | (v.vram[a + 1]! << 8);
      s += ch === 0 ? ' ' : CP437[ch];
    }
    text.push(s);
  }
  const offset = ((cr[0x0e]! << 8) | cr[0x0f]!) - start;
  const row = stride > 0 ? Math.floor(offset / stride) : 0;
  const col = stride > 0 ? offset - row * stride : offset;
  const cstart = cr[0x0a]! & 0x1f;
  const cend = cr[0x0b]! & 0x1f;
  const visible = !(cr[0x0a]! & 0x20) && cstart <= cend && cstart < cheight && row >= 0 && row < rows && col >= 0 && col < cols;
  return { cols, rows, lines: text, cells, cursor: { row, col, visible }, start };
}

/** 6-bit DAC value to 8 bits. */
const c6to8 = (x: number) => ((x & 0x3f) << 2) | ((x & 0x3f) >> 4);

/** The 16 colours of text and planar modes as 0xAABBGGRR (little-endian RGBA words). */
function palette16(v: Vga): Uint32Array {
  const out = new Uint32Array(16);
  const ar = v.ar;
  for (let i = 0; i < 16; i++) {
    let idx = ar[i]!;
    // Colour select supplies bits 7:6 always and bits 5:4 when AR10 bit 7 asks (reference manual, attribute registers 10h and 14h).
    idx = ar[0x10]! & 0x80 ? ((ar[0x14]! & 0xf) << 4) | (idx & 0xf) : ((ar[0x14]! & 0xc) << 4) | (idx & 0x3f);
    out[i] = dacColor(v, idx & v.pelMask, false);
  }
  return out;
}

function palette256(v: Vga): Uint32Array {
  const out = new Uint32Array(256);
  for (let i = 0; i < 256; i++) out[i] = dacColor(v, i & v.pelMask, v.dac8bit);
  return out;
}

function dacColor(v: Vga, i: number, eightBit: boolean): number {
  const p = v.palette;
  const [r, g, b] = eightBit ? [p[i * 3]!, p[i * 3 + 1]!, p[i * 3 + 2]!] : [c6to8(p[i * 3]!), c6to8(p[i * 3 + 1]!), c6to8(p[i * 3 + 2]!)];
  return (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
}

function blank(width: number, height: number): Screenshot {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 0xff;
  return { width, height, rgba, mode: 'blank' };
}

export function renderScreenshot(v: Vga, opts: { cursor?: boolean } = {}): Screenshot {
  // The palette address source bit clear (attribute index written without 0x20) or SR01 screen off: the screen is dark.
  const dark = !(v.arIndex & 0x20) || (v.sr[0x01]! & 0x20) !== 0;
  if (v.vbeEnabled) {
    return dark ? blank(v.vbe[1]!, v.vbe[2]!) : renderVbe(v);
  }
  if (isTextMode(v)) {
    const t = readTextScreen(v)!;
    const cw = (v.sr[0x01]! & 1 ? 8 : 9) * (v.sr[0x01]! & 0x08 ? 2 : 1);
    const ch = (v.cr[0x09]! & 0x1f) + 1;
    return dark ? blank(t.cols * cw, t.rows * ch) : renderText(v, t, opts.cursor ?? true);
  }
  const shift = (v.gr[0x05]! >> 5) & 3;
  const scan = ((v.cr[0x09]! & 0x1f) + 1) << (v.cr[0x09]! >> 7);
  const height = Math.max(1, Math.floor(displayLines(v) / scan));
  if (shift >= 2) {
    const width = (v.cr[0x01]! + 1) * 4;
    return dark ? blank(width, height) : render256(v, width, height);
  }
  const width = (v.cr[0x01]! + 1) * 8;
  if (shift === 1 || !(v.cr[0x17]! & 1)) return blank(width, height); // CGA-compatible modes are not drawn
  return dark ? blank(width, height) : renderPlanar(v, width, height);
}

function renderText(v: Vga, t: TextScreen, cursor: boolean): Screenshot {
  const sr1 = v.sr[0x01]!;
  const dots = sr1 & 1 ? 8 : 9;
  const wide = sr1 & 0x08 ? 2 : 1;
  const cw = dots * wide;
  const ch = (v.cr[0x09]! & 0x1f) + 1;
  const width = t.cols * cw;
  const height = t.rows * ch;
  const rgba = new Uint8Array(width * height * 4);
  const px = new Uint32Array(rgba.buffer);
  const pal = palette16(v);
  const ar10 = v.ar[0x10]!;
  const blink = (ar10 & 0x08) !== 0;
  const lineGraphics = (ar10 & 0x04) !== 0;
  // Character maps: A (SR03 bits 5,3,2) for attribute bit 3 set, B (bits 4,1,0) for it clear; map n at plane 2 offset n * 8 KiB with the high bit interleaved.
  const sr3 = v.sr[0x03]!;
  const mapB = (((sr3 >> 4) & 1) | ((sr3 << 1) & 6)) * 8192;
  const mapA = (((sr3 >> 5) & 1) | ((sr3 >> 1) & 6)) * 8192;
  const vram = v.vram;
  for (let row = 0; row < t.rows; row++) {
    for (let col = 0; col < t.cols; col++) {
      const cell = t.cells[row * t.cols + col]!;
      const c = cell & 0xff;
      const attr = cell >> 8;
      const fg = pal[attr & 0x0f]!;
      const bg = pal[blink ? (attr >> 4) & 7 : attr >> 4]!;
      const font = (attr & 0x08 ? mapA : mapB) + c * 32;
      const dup9 = dots === 9 && lineGraphics && c >= 0xc0 && c <= 0xdf;
      for (let y = 0; y < ch; y++) {
        const bits = vram[(((font + y) & 0xffff) * 4) + 2]!;
        let o = (row * ch + y) * width + col * cw;
        for (let x = 0; x < dots; x++) {
          const on = x < 8 ? (bits >> (7 - x)) & 1 : dup9 ? bits & 1 : 0;
          const color = on ? fg : bg;
          px[o++] = color;
          if (wide === 2) px[o++] = color;
        }
      }
    }
  }
  const cur = t.cursor;
  if (cursor && cur.visible) {
    const attr = t.cells[cur.row * t.cols + cur.col]! >> 8;
    const fg = pal[attr & 0x0f]!;
    const last = Math.min(v.cr[0x0b]! & 0x1f, ch - 1);
    for (let y = v.cr[0x0a]! & 0x1f; y <= last; y++) {
      const o = (cur.row * ch + y) * width + cur.col * cw;
      px.fill(fg, o, o + cw);
    }
  }
  return { width, height, rgba, mode: 'text' };
}

function render256(v: Vga, width: number, height: number): Screenshot {
  const rgba = new Uint8Array(width * height * 4);
  const px = new Uint32Array(rgba.buffer);
  const pal = palette256(v);
  const start = ((v.cr[0x0c]! << 8) | v.cr[0x0d]!) * 4;
  const stride = v.cr[0x13]! * 8;
  const vram = v.vram;
  const mask = vram.length - 1;
  for (let y = 0; y < height; y++) {
    const line = start + y * stride;
    for (let x = 0; x < width; x++) px[y * width + x] = pal[vram[(line + x) & mask]!]!;
  }
  return { width, height, rgba, mode: 'vga256' };
}

function renderPlanar(v: Vga, width: number, height: number): Screenshot {
  const rgba = new Uint8Array(width * height * 4);
  const px = new Uint32Array(rgba.buffer);
  const pal = palette16(v);
  const enable = v.ar[0x12]! & 0x0f;
  const start = (v.cr[0x0c]! << 8) | v.cr[0x0d]!;
  const stride = v.cr[0x13]! * 2;
  const vram = v.vram;
  const bytes = width >> 3;
  for (let y = 0; y < height; y++) {
    for (let b = 0; b < bytes; b++) {
      const a = ((start + y * stride + b) & 0xffff) * 4;
      const p0 = vram[a]!, p1 = vram[a + 1]!, p2 = vram[a + 2]!, p3 = vram[a + 3]!;
      for (let i = 0; i < 8; i++) {
        const s = 7 - i;
        const idx = ((p0 >> s) & 1) | (((p1 >> s) & 1) << 1) | (((p2 >> s) & 1) << 2) | (((p3 >> s) & 1) << 3);
        px[y * width + b * 8 + i] = pal[idx & enable]!;
      }
    }
  }
  return { width, height, rgba, mode: 'vga16' };
}

function renderVbe(v: Vga): Screenshot {
  const width = v.vbe[1]!;
  const height = v.vbe[2]!;
  const bpp = v.vbe[3]!;
  const rgba = new Uint8Array(width * height * 4);
  const px = new Uint32Array(rgba.buffer);
  const vram = v.vram;
  const stride = v.vbeLineOffset;
  const start = v.vbeStartAddr;
  if (bpp === 4) return blank(width, height);
  const pal = bpp === 8 ? palette256(v) : null;
  for (let y = 0; y < height; y++) {
    let o = start + y * stride;
    const row = y * width;
    for (let x = 0; x < width; x++) {
      let c: number;
      if (pal) {
        c = pal[vram[o++]!]!;
      } else if (bpp === 15 || bpp === 16) {
        const w = vram[o]! | (vram[o + 1]! << 8);
        o += 2;
        let r, g, b;
        if (bpp === 15) { r = (w >> 10) & 0x1f; g = (w >> 5) & 0x1f; b = w & 0x1f; g = (g << 3) | (g >> 2); }
        else { r = w >> 11; g = (w >> 5) & 0x3f; b = w & 0x1f; g = (g << 2) | (g >> 4); }
        c = (0xff000000 | (((b << 3) | (b >> 2)) << 16) | (g << 8) | ((r << 3) | (r >> 2))) >>> 0;
      } else {
        // 24 and 32 bpp are B, G, R (, X) in memory.
        c = (0xff000000 | (vram[o]! << 16) | (vram[o + 1]! << 8) | vram[o + 2]!) >>> 0;
        o += bpp === 24 ? 3 : 4;
      }
      px[row + x] = c;
    }
  }
  return { width, height, rgba, mode: `vbe${bpp}` };
}
