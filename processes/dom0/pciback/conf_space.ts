// pciback's filter of a guest's configuration-space accesses: the semantics
// of Linux's drivers/xen/xen-pciback/conf_space.c and conf_space_header.c,
// written anew for xenemu.
//
// A device's configuration space is a list of *fields* pciback knows
// (offset, size, a read and maybe a write handler). An access may cover
// parts of several fields and the bytes between them:
//
//   read   the device's real bytes are read first; every field the access
//          overlaps then puts its own (virtual) value over its bytes.
//   write  every overlapped field gets the guest's bytes merged into its
//          current value and decides what reaches the device; a field
//          without a write handler is read-only. An access that overlaps no
//          field writes the device only when the device is `permissive`;
//          otherwise it is dropped (and logged once).
//
// The fields (a type 0 header; Linux's header_common + header_0):
//
//   0x00 vendor, 0x02 device   read: the values read when the device was
//                              seized; never written
//   0x04 command               read: the device's PCI_COMMAND_GUEST bits,
//                              the rest as the guest last wrote them.
//                              write: I/O and memory decoding follow the
//                              guest's bits as pci_enable_device /
//                              pci_disable_device do (only for the kinds of
//                              BAR the device has), bus mastering and
//                              memory-write-invalidate as pci_set_master /
//                              pci_set_mwi do; INTx disable stays Domain-0's
//                              (no allow_interrupt_control for a PV guest).
//                              With permissive, the PCI_COMMAND_GUEST bits
//                              are written through as well.
//   0x0c cache line size       read and written through
//   0x0d latency timer         read-only
//   0x0f BIST                  only a start request, or a write that changes
//                              nothing but the start bit
//   0x10..0x24 BARs            read: the BAR as seized (or its size mask
//                              after a probe). write: a size probe (all ones
//                              apart from the BAR's flag bits) switches reads
//                              to the size mask; writing back the seized
//                              value restores it; anything else is dropped.
//                              The upper half of a 64-bit BAR takes only
//                              all ones as a probe.
//   0x30 expansion ROM         the same, with the ROM's enable and reserved
//                              bits as flags
//   0x3c interrupt line        read: the line Domain-0 knows (its GSI for the
//                              device, Linux's dev->irq); never written
//   0x3d interrupt pin         read-only
//
// Everything else (status, class, subsystem, capabilities, the rest of the
// 256 bytes) is read from the device and not writable unless permissive.
// Only 1-, 2- and 4-byte accesses inside the first 256 bytes, aligned to
// their size, are served: anything else is XEN_PCI_ERR_invalid_offset.
import {
  PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_SPACE_IO, PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID, PCI_HEADER_TYPE, PCI_INTERRUPT_LINE, PCI_INTERRUPT_PIN, PCI_ROM_ADDRESS, PCI_ROM_ADDRESS_MASK, PCI_VENDOR_ID,
} from '../../../shared/hw/pci.js';
import {
  XEN_PCI_ERR_access_denied, XEN_PCI_ERR_dev_not_found, XEN_PCI_ERR_invalid_offset, XEN_PCI_ERR_not_implemented,
  XEN_PCI_ERR_op_failed, XEN_PCI_ERR_success,
} from '../../../shared/abi/io/pciif.js';
import { XEN_EINVAL, XEN_ENODEV, XEN_ENOSYS, XEN_EPERM } from '../../../shared/abi/errno.js';

export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_BIST = 0x0f;
export const PCI_BIST_START = 0x40;
export const PCI_COMMAND_SPECIAL = 0x8;
export const PCI_COMMAND_INVALIDATE = 0x10;
export const PCI_COMMAND_VGA_PALETTE = 0x20;
export const PCI_COMMAND_WAIT = 0x80;
export const PCI_COMMAND_FAST_BACK = 0x200;
/** The bits a permissive guest writes through (Linux conf_space_header.c). */
export const PCI_COMMAND_GUEST = PCI_COMMAND_MASTER | PCI_COMMAND_SPECIAL | PCI_COMMAND_INVALIDATE | PCI_COMMAND_VGA_PALETTE
  | PCI_COMMAND_WAIT | PCI_COMMAND_FAST_BACK;
/** What a guest may reach: the conventional configuration space. */
export const PCI_CFG_SPACE_SIZE = 256;
const PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x06;
const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
const PCI_BASE_ADDRESS_IO_FLAGS = 0x3;
const PCI_BASE_ADDRESS_MEM_FLAGS = 0xf;

/** A device's real configuration space, as Domain-0 reaches it (the device's socket). */
export interface ConfigSpace {
  read(offset: number, size: 1 | 2 | 4): Promise<number>;
  write(offset: number, size: 1 | 2 | 4, value: number): Promise<void>;
}

/** An access the device itself refused: `errno` is Xen's negative errno. */
export class ConfigSpaceError extends Error {
  constructor(readonly errno: number, message: string) { super(message); this.name = 'ConfigSpaceError'; }
}

/** xen_pcibk_convert_errno: a device's refusal as the XEN_PCI_ERR_* pcifront understands. */
export function pciErrFromErrno(errno: number): number {
  switch (errno) {
    case 0: return XEN_PCI_ERR_success;
    case -XEN_ENODEV: return XEN_PCI_ERR_dev_not_found;
    case -XEN_EINVAL: return XEN_PCI_ERR_invalid_offset;
    case -XEN_ENOSYS: return XEN_PCI_ERR_not_implemented;
    case -XEN_EPERM: return XEN_PCI_ERR_access_denied;
    default: return XEN_PCI_ERR_op_failed;
  }
}

interface BarInfo { val: number; lenVal: number; which: 0 | 1; mask: number }

interface Field {
  offset: number;
  size: 1 | 2 | 4;
  read(): Promise<number> | number;
  write?(value: number): Promise<void> | void;
}

export interface ConfResult { err: number; value: number }

const maskOf = (size: number): number => (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1);

/** merge_value: `nv` (a field of `nvMask` bits) placed at byte `shift` of `val` (a negative shift moves it down). */
function mergeValue(val: number, nv: number, nvMask: number, shift: number): number {
  const b = shift * 8;
  let m: number; let v: number;
  if (shift >= 0) { m = b >= 32 ? 0 : (nvMask << b) >>> 0; v = b >= 32 ? 0 : (nv << b) >>> 0; }
  else { m = -b >= 32 ? 0 : nvMask >>> -b; v = -b >= 32 ? 0 : nv >>> -b; }
  return ((val & ~m) | (v & m)) >>> 0;
}

/** How a seized device's configuration space looks to the guest that owns it. */
export class ConfSpaceFilter {
  private readonly fields: Field[] = [];
  private cmdVal = 0;
  private hasIo = false;
  private hasMem = false;
  /** The first write to a read-only field is logged (Linux's warned_on_write). */
  warnedOnWrite = false;

  private constructor(private readonly dev: ConfigSpace, readonly permissive: boolean, private readonly log: (m: string) => void) {}

  /**
   * Seizes `dev`: reads what pciback keeps of it (ids, command, interrupt
   * line) and sizes its BARs as Domain-0's PCI core does at boot (all ones
   * written, the mask read, the value put back).
   */
  static async seize(dev: ConfigSpace, o: { permissive?: boolean; log?: (m: string) => void; irq?: number } = {}): Promise<ConfSpaceFilter> {
    const f = new ConfSpaceFilter(dev, o.permissive ?? false, o.log ?? (() => undefined));
    await f.init(o.irq);
    return f;
  }

  /** `irqLine`: the interrupt line Domain-0 knows for the device (default: the device's register). */
  private async init(irqLine?: number): Promise<void> {
    const dev = this.dev;
    const vendor = await dev.read(PCI_VENDOR_ID, 2);
    const device = await dev.read(PCI_DEVICE_ID, 2);
    this.cmdVal = await dev.read(PCI_COMMAND, 2);
    const irq = irqLine ?? await dev.read(PCI_INTERRUPT_LINE, 1);
    const hdr = (await dev.read(PCI_HEADER_TYPE, 1)) & 0x7f;
    const passRead = (off: number, size: 1 | 2 | 4) => () => dev.read(off, size);
    this.fields.push(
      { offset: PCI_VENDOR_ID, size: 2, read: () => vendor },
      { offset: PCI_DEVICE_ID, size: 2, read: () => device },
      { offset: PCI_COMMAND, size: 2, read: () => this.commandRead(), write: (v) => this.commandWrite(v) },
      { offset: PCI_INTERRUPT_LINE, size: 1, read: () => irq },
      { offset: PCI_INTERRUPT_PIN, size: 1, read: passRead(PCI_INTERRUPT_PIN, 1) },
      { offset: PCI_CACHE_LINE_SIZE, size: 1, read: passRead(PCI_CACHE_LINE_SIZE, 1), write: (v) => dev.write(PCI_CACHE_LINE_SIZE, 1, v) },
      { offset: PCI_LATENCY_TIMER, size: 1, read: passRead(PCI_LATENCY_TIMER, 1) },
      { offset: PCI_BIST, size: 1, read: passRead(PCI_BIST, 1), write: (v) => this.bistWrite(v) },
    );
    // Type 0 headers only (xenemu's devices are endpoints); a bridge keeps its BARs read-only.
    if (hdr !== 0) return;
    let upper = false;
    for (let i = 0; i < 6; i++) {
      const off = PCI_BASE_ADDRESS_0 + 4 * i;
      const bar = await this.sizeBar(off, upper);
      upper = !upper && (bar.val & PCI_BASE_ADDRESS_SPACE_IO) === 0 && (bar.val & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
      this.fields.push({ offset: off, size: 4, read: () => (bar.which ? bar.lenVal : bar.val), write: (v) => this.barWrite(off, bar, v) });
    }
    const rom = await this.sizeBar(PCI_ROM_ADDRESS, false, true);
    this.fields.push({ offset: PCI_ROM_ADDRESS, size: 4, read: () => (rom.which ? rom.lenVal : rom.val), write: (v) => this.barWrite(PCI_ROM_ADDRESS, rom, v) });
  }

  private async sizeBar(off: number, upperHalf: boolean, rom = false): Promise<BarInfo> {
    const val = await this.dev.read(off, 4);
    await this.dev.write(off, 4, 0xffffffff);
    const probed = await this.dev.read(off, 4);
    await this.dev.write(off, 4, val);
    if (upperHalf) return { val, lenVal: probed, which: 0, mask: 0 };
    if (rom) {
      const size = (probed & PCI_ROM_ADDRESS_MASK) >>> 0;
      return { val, lenVal: size ? size : 0, which: 0, mask: ~PCI_ROM_ADDRESS_MASK >>> 0 };
    }
    const io = (val & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
    const flags = io ? PCI_BASE_ADDRESS_IO_FLAGS : PCI_BASE_ADDRESS_MEM_FLAGS;
    const size = (probed & ~flags) >>> 0;
    if (size) { if (io) this.hasIo = true; else this.hasMem = true; }
    return { val, lenVal: size ? (size | (val & flags)) >>> 0 : 0, which: 0, mask: flags };
  }

  private async commandRead(): Promise<number> {
    const v = await this.dev.read(PCI_COMMAND, 2);
    return ((v & PCI_COMMAND_GUEST) | (this.cmdVal & ~PCI_COMMAND_GUEST)) & 0xffff;
  }

  private async commandWrite(value: number): Promise<void> {
    const cur = await this.dev.read(PCI_COMMAND, 2);
    let next = cur;
    // pci_enable_device / pci_disable_device: decoding of what the device has.
    const decode = (this.hasIo ? PCI_COMMAND_IO : 0) | (this.hasMem ? PCI_COMMAND_MEMORY : 0);
    if (value & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY)) next |= decode; else next &= ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    // pci_set_master / pci_clear_master, pci_set_mwi / pci_clear_mwi.
    next = (next & ~(PCI_COMMAND_MASTER | PCI_COMMAND_INVALIDATE)) | (value & (PCI_COMMAND_MASTER | PCI_COMMAND_INVALIDATE));
    this.cmdVal = value & 0xffff;
    if (this.permissive) next = (value & PCI_COMMAND_GUEST) | (next & ~PCI_COMMAND_GUEST);
    if (next !== cur) await this.dev.write(PCI_COMMAND, 2, next & 0xffff);
  }

  private async bistWrite(value: number): Promise<void> {
    const cur = await this.dev.read(PCI_BIST, 1);
    if ((cur & ~PCI_BIST_START) === (value & ~PCI_BIST_START) || value === PCI_BIST_START) await this.dev.write(PCI_BIST, 1, value);
  }

  private async barWrite(off: number, bar: BarInfo, value: number): Promise<void> {
    if (((value | bar.mask) >>> 0) === 0xffffffff) { bar.which = 1; return; }
    if (value === bar.val) {
      // A restore of the value seized: put back if something moved it.
      const cur = await this.dev.read(off, 4);
      if (cur !== bar.val) await this.dev.write(off, 4, bar.val);
    }
    bar.which = 0;
  }

  /** A guest's read of `size` bytes at `offset`. Never throws. */
  async read(offset: number, size: number): Promise<ConfResult> {
    if (!validRequest(offset, size)) return { err: XEN_PCI_ERR_invalid_offset, value: 0 };
    const sz = size as 1 | 2 | 4;
    try {
      let value = await this.dev.read(offset, sz);
      const end = offset + sz;
      for (const f of this.fields) {
        if (end > f.offset && f.offset + f.size > offset) value = mergeValue(value, await f.read(), maskOf(f.size), f.offset - offset);
      }
      return { err: XEN_PCI_ERR_success, value: (value & maskOf(sz)) >>> 0 };
    } catch (e) {
      return { err: e instanceof ConfigSpaceError ? pciErrFromErrno(e.errno) : XEN_PCI_ERR_op_failed, value: 0 };
    }
  }

  /** A guest's write of `size` bytes at `offset`. Never throws. */
  async write(offset: number, size: number, value: number): Promise<ConfResult> {
    if (!validRequest(offset, size)) return { err: XEN_PCI_ERR_invalid_offset, value: 0 };
    const sz = size as 1 | 2 | 4;
    const v = (value & maskOf(sz)) >>> 0;
    try {
      let handled = false;
      const end = offset + sz;
      for (const f of this.fields) {
        if (!(end > f.offset && f.offset + f.size > offset)) continue;
        handled = true;
        if (!f.write) continue;
        const merged = mergeValue(await f.read(), v, maskOf(sz), offset - f.offset) & maskOf(f.size);
        await f.write(merged >>> 0);
      }
      if (!handled) {
        if (this.permissive) await this.dev.write(offset, sz, v);
        else if (!this.warnedOnWrite) {
          this.warnedOnWrite = true;
          this.log(`Driver tried to write to a read-only configuration space field at offset 0x${offset.toString(16)}, size ${sz}. ` +
            'This may be harmless; permissive=1 lets such writes through');
        }
      }
      return { err: XEN_PCI_ERR_success, value: 0 };
    } catch (e) {
      return { err: e instanceof ConfigSpaceError ? pciErrFromErrno(e.errno) : XEN_PCI_ERR_op_failed, value: 0 };
    }
  }
}

/** valid_request, with the guest's reach limited to the conventional 256 bytes. */
function validRequest(offset: number, size: number): boolean {
  return (size === 1 || size === 2 || size === 4) && Number.isInteger(offset) && offset >= 0 && offset % size === 0
    && offset + size <= PCI_CFG_SPACE_SIZE;
}

