// xen/include/public/hvm/e820.h and xen/include/public/arch-x86/hvm/start_info.h
// (Xen 4.17): the fixed points of an HVM guest's physical map below 4 GiB.
export const HVM_E820_PAGE = 0x00090000;
export const HVM_BELOW_4G_RAM_END = 0xf0000000;
export const HVM_BELOW_4G_MMIO_START = HVM_BELOW_4G_RAM_END;
export const HVM_BELOW_4G_MMIO_LENGTH = 2 ** 32 - HVM_BELOW_4G_MMIO_START;

// The legacy VGA window, never RAM in an HVM guest (libxl__build_hvm leaves
// it out of the physmap; qemu claims it as MMIO).
export const VGA_HOLE_START = 0xa0000;
export const VGA_HOLE_END = 0xc0000;

// e820 entry types (arch-x86/hvm/start_info.h).
export const E820_RAM = 1;
export const E820_RESERVED = 2;
export const E820_ACPI = 3;
export const E820_NVS = 4;
