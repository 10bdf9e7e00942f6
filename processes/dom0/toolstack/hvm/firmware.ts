// The guest's BIOS, as libxl__domain_firmware loads it and hvmloader places
// it: the image ends at 1 MiB, so Debian's 128 KiB SeaBIOS (the seabios
// package's /usr/share/seabios/bios.bin, what libxl__seabios_path() names on
// Debian) sits at 0xe0000-0xfffff and the reset vector at 0xffff0 is its
// last paragraph. No VGA BIOS is loaded: SeaBIOS runs the option ROM of the
// emulated VGA from its PCI ROM BAR, as with qemu-xen.
import { readFileSync } from 'node:fs';
import { BuildError } from '../builder.js';

export const SEABIOS_PATH = '/usr/share/seabios/bios.bin';
/** Where the BIOS image ends (exclusive). */
export const BIOS_END = 0x100000;
export const BIOS_MAX_BYTES = 256 * 1024;
const BIOS_ALIGN = 64 * 1024;

/** Reads and checks a BIOS image (`path` defaults to Debian's SeaBIOS). */
export function loadBios(path = SEABIOS_PATH): Uint8Array {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'No such file or directory' : code === 'EACCES' ? 'Permission denied' : (e as Error).message;
    throw new BuildError('EINVAL', `failed to read BIOS file ${path}: ${why}${path === SEABIOS_PATH && code === 'ENOENT' ? " (Debian's seabios package installs it)" : ''}`);
  }
  if (data.length === 0 || data.length % BIOS_ALIGN !== 0 || data.length > BIOS_MAX_BYTES) {
    throw new BuildError('EINVAL', `BIOS file ${path} is ${data.length} bytes: a BIOS image ends at 1 MiB and must be ` +
      `a non-empty multiple of 64 KiB, at most ${BIOS_MAX_BYTES / 1024} KiB`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** The guest-physical address the image starts at. */
export function biosAddress(image: Uint8Array): number {
  return BIOS_END - image.byteLength;
}
