// The Xen platform PCI device (5853:0001, revision 1, class 0xFF80,
// subsystem 5853:0001, INTA#), as qemu-xen's hw/i386/xen/xen_platform.c
// models it. Guests' PV drivers find it to learn they run on Xen: its MMIO
// BAR is where they map the grant table and shared_info frames, its INTx is
// the event channel callback of old kernels, and its fixed ports carry the
// emulated-device unplug protocol (Xen's docs/misc/hvm-emulated-unplug.pandoc;
// Linux's arch/x86/xen/platform-pci-unplug.c speaks it).
//
// Fixed ports 0x10-0x1F (registered whether or not the BARs are placed):
//   0x10 read  16  magic 0x49D2 (0xD249: this driver build is blacklisted)
//   0x10 read   8  platform flags (bit 0: ROM area 0xC0000-0xFFFFF read-only)
//   0x10 write  8  platform flags
//   0x10 write 16  unplug mask: 1 IDE/SCSI disks, 2 NICs, 4 IDE disks but
//                  the primary master, 8 NVMe disks
//   0x10 write 32  driver build number (checked against the blacklist)
//   0x12 read   8  protocol version: 1
//   0x12 write  8  a log byte (a line per newline)
//   0x12 write 16  product number (pvdrivers.h: 3 is Linux)
// BAR0, 256 ports: +0 flags (8-bit), +8 log byte; reads elsewhere all-ones.
// BAR1, 16 MiB prefetchable memory: reads 0, writes dropped (Xen maps
//       frames there; the device model never sees those accesses).
import type { AccessSize, IoHandler, IoRegion, IoSpace } from './machine.js';
import { PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PciFunction } from './pci.js';

export const XEN_PLATFORM_IOPORT = 0x10;
export const XEN_PLATFORM_MAGIC = 0x49d2;
export const XEN_PLATFORM_MAGIC_BLACKLISTED = 0xd249;
export const XEN_PLATFORM_MMIO_SIZE = 0x1000000;
export const XEN_PLATFORM_IO_SIZE = 0x100;
/** Unplug mask bits (hvm-emulated-unplug.pandoc, step 6). */
export const UNPLUG_ALL_IDE_DISKS = 1;
export const UNPLUG_ALL_NICS = 2;
export const UNPLUG_AUX_IDE_DISKS = 4;
export const UNPLUG_NVME_DISKS = 8;
const PFFLAG_ROM_LOCK = 1;
/** qemu-xen flushes a log line at 4095 bytes. */
const LOG_LINE_MAX = 4095;

export interface XenPlatformOptions {
  /** The guest asked for emulated devices to go (the mask above). */
  onUnplug?: (mask: number) => void;
  /** A line the guest's drivers logged (qemu-xen: trace_xen_platform_log). */
  onLog?: (line: string) => void;
  /** The ROM lock flag changed: the host makes 0xC0000-0xFFFFF read-only or writable (xen_set_mem_type). */
  onRomLock?: (locked: boolean) => void;
  /** Whether driver `product`, build `build` is blacklisted (Xen: /mh/driver-blacklist/<product>/<build>). */
  isBlacklisted?: (product: number, build: number) => boolean;
}

export class XenPlatform extends PciFunction {
  flags = 0;
  /** The product number the drivers wrote (0 until they do). */
  product = 0;
  /** The build number the drivers wrote. */
  build = 0;
  blacklisted = false;
  /** Every unplug mask written, in order. */
  readonly unplugs: number[] = [];
  private readonly logBytes: number[] = [];
  private readonly fixed: IoRegion;

  constructor(ports: IoSpace, private readonly opts: XenPlatformOptions = {}) {
    super('xen-platform', {
      vendor: 0x5853, device: 0x0001, classCode: 0xff8000, revision: 1,
      subVendor: 0x5853, subDevice: 0x0001, interruptPin: 1,
    });
    // qemu-xen turns I/O and memory decode on at realize.
    this.config[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
    this.addBar(0, { kind: 'io', size: XEN_PLATFORM_IO_SIZE, name: 'xen-pci', handler: this.barIo });
    this.addBar(1, {
      kind: 'mem', size: XEN_PLATFORM_MMIO_SIZE, prefetchable: true, name: 'xen-mmio',
      handler: { read: () => 0, write: () => {} },
    });
    this.fixed = ports.register(XEN_PLATFORM_IOPORT, 16, this.fixedIo, 'xen-fixed');
  }

  /** The fixed ports, dispatched by offset and size as qemu-xen's platform_fixed_ioport_* are. */
  readonly fixedIo: IoHandler = {
    read: (offset: number, size: AccessSize): number => {
      if (size === 2) return offset === 0 ? (this.blacklisted ? XEN_PLATFORM_MAGIC_BLACKLISTED : XEN_PLATFORM_MAGIC) : 0xffff;
      if (size === 1) return offset === 0 ? this.flags : offset === 2 ? 1 : 0xff;
      return 0xffffffff;
    },
    write: (offset: number, size: AccessSize, value: number): void => {
      if (size === 1) {
        if (offset === 0) this.setFlags(value);
        else if (offset === 2) this.logByte(value);
      } else if (size === 2) {
        if (offset === 0) this.unplug(value & 0xffff);
        else if (offset === 2) this.product = value & 0xffff;
      } else if (offset === 0) {
        this.build = value >>> 0;
        this.blacklisted = this.opts.isBlacklisted?.(this.product, this.build) ?? false;
      }
    },
  };

  /** BAR0: byte registers (qemu-xen's xen_pci_io_ops, 1-byte accesses). */
  private readonly barIo: IoHandler = {
    read: (offset: number, size: AccessSize): number => {
      let v = 0;
      for (let i = 0; i < size; i++) v |= (offset + i === 0 ? this.flags : 0xff) << (8 * i);
      return v >>> 0;
    },
    write: (offset: number, size: AccessSize, value: number): void => {
      for (let i = 0; i < size; i++) {
        const b = (value >>> (8 * i)) & 0xff;
        if (offset + i === 0) this.setFlags(b);
        else if (offset + i === 8) this.logByte(b);
      }
    },
  };

  private setFlags(v: number): void {
    const locked = (v & PFFLAG_ROM_LOCK) !== 0;
    if (locked !== ((this.flags & PFFLAG_ROM_LOCK) !== 0)) this.opts.onRomLock?.(locked);
    this.flags = v & PFFLAG_ROM_LOCK;
  }

  private unplug(mask: number): void {
    this.unplugs.push(mask);
    if (mask & (UNPLUG_ALL_IDE_DISKS | UNPLUG_ALL_NICS | UNPLUG_AUX_IDE_DISKS | UNPLUG_NVME_DISKS)) this.opts.onUnplug?.(mask);
  }

  private logByte(b: number): void {
    if (b === 0x0a || this.logBytes.length >= LOG_LINE_MAX) {
      const line = String.fromCharCode(...this.logBytes);
      this.logBytes.length = 0;
      this.opts.onLog?.(line);
      if (b === 0x0a) return;
    }
    this.logBytes.push(b);
  }

  /** A device reset (qemu-xen's platform_reset): flags back to 0, the ROM writable. */
  reset(): void { this.setFlags(0); }

  override detach(): void {
    this.fixed.unregister();
    super.detach();
  }
}
