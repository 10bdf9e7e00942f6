// What an emulated device sees of the machine it is plugged into.
//
// Device models (shared/hw/*.ts) are synchronous state machines: an access
// comes in (a port or MMIO read or write, a PCI configuration access), the
// model updates its registers, may move data to or from guest memory (DMA),
// may raise or lower an interrupt line, and returns. They do no I/O of their
// own: disks, character devices and networks are back ends handed to them
// (shared/hw/backend.ts), and time is a Clock. So the same model runs inside
// qemu-dm's ioreq thread (processes/qemu-dm), in a stub domain, or as a
// "physical" device of a host, and a unit test drives it in one process with
// a Uint8Array for guest memory.
//
//   guest vCPU --ioreq--> qemu-dm ioreq loop --> IoSpace.read/write --> device
//                                    <-- value --
//   device --GuestMemory.write--> guest RAM (DMA)   device --IrqLines--> vCPU's PIC
//
// Sizes are 1, 2 or 4 bytes (an 8-byte MMIO access arrives as two 4-byte
// ones). Values are unsigned; a read of a byte returns 0..255.

export type AccessSize = 1 | 2 | 4;

/** One claimed range of ports or of MMIO addresses. `offset` is from the range's base. */
export interface IoHandler {
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
  /**
   * `count` reads at `offset` (a `rep ins`), element i stored little-endian
   * at `dst` + `at` + i * `step`: the same values `count` read() calls give,
   * without a dispatch per element. Optional: a data port implements it.
   */
  readBlock?(offset: number, size: AccessSize, count: number, dst: DataView, at: number, step: number): void;
}

/** A space of ports (64 KiB) or of physical addresses (MMIO). */
export interface IoSpace {
  /** Claims [base, base+length); throws on overlap with another claim. */
  register(base: number, length: number, handler: IoHandler, name: string): IoRegion;
}

export interface IoRegion {
  readonly base: number;
  readonly length: number;
  /** Moves the range (a PCI BAR the guest reprogrammed); -1 unmaps it. */
  move(base: number): void;
  unregister(): void;
}

/** Guest physical memory, for DMA. Out-of-range accesses throw RangeError. */
export interface GuestMemory {
  /** Bytes of RAM the guest has (addresses from 0; the VGA hole reads as RAM here). */
  readonly size: number;
  read(gpa: number, dst: Uint8Array): void;
  write(gpa: number, src: Uint8Array): void;
  /**
   * The guest's bytes [gpa, gpa+len) themselves, checked as read or write
   * would check them, for a device that moves a transfer between them and
   * its back end without a copy (a disk reading straight into guest memory);
   * undefined where this memory has no such view (use read and write).
   */
  view?(gpa: number, len: number, dir: 'read' | 'write'): Uint8Array | undefined;
}

/**
 * A device's DMA read: false (nothing read) when the range is not guest
 * memory or the memory refuses it (an IOMMU fault throws RangeError), so a
 * hostile descriptor becomes the model's DMA error, never an exception.
 */
export function dmaRead(mem: GuestMemory, gpa: number, dst: Uint8Array): boolean {
  if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa + dst.length > mem.size) return false;
  try { mem.read(gpa, dst); return true; } catch (e) { if (e instanceof RangeError) return false; throw e; }
}

/** A device's DMA write, as dmaRead: false and nothing written when refused. */
export function dmaWrite(mem: GuestMemory, gpa: number, src: Uint8Array): boolean {
  if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa + src.length > mem.size) return false;
  try { mem.write(gpa, src); return true; } catch (e) { if (e instanceof RangeError) return false; throw e; }
}

/**
 * A device's direct DMA (GuestMemory.view): the guest's bytes, null when
 * refused (as dmaRead's false), undefined when the memory has no view.
 */
export function dmaView(mem: GuestMemory, gpa: number, len: number, dir: 'read' | 'write'): Uint8Array | null | undefined {
  if (!mem.view) return undefined;
  if (!Number.isSafeInteger(gpa) || gpa < 0 || len < 0 || gpa + len > mem.size) return null;
  try { return mem.view(gpa, len, dir); } catch (e) { if (e instanceof RangeError) return null; throw e; }
}

/** Interrupt lines into the vCPU's interrupt controllers. */
export interface IrqLines {
  /** An ISA line (0-15) as XEN_DMOP_set_isa_irq_level: level 1 asserted, 0 deasserted. */
  setIsaIrq(irq: number, level: 0 | 1): void;
  /** A PCI INTx line as XEN_DMOP_set_pci_intx_level: device 0-31, intx 0-3 (INTA#-INTD#). */
  setPciIntx(device: number, intx: number, level: 0 | 1): void;
}

/** Monotonic time and one-shot timers, serviced by whoever runs the devices. */
export interface Clock {
  /** Nanoseconds on a monotonic clock. */
  now(): number;
  /** Calls `fn` once at or after `deadlineNs` (Clock time); returns a handle for cancel. */
  setTimer(deadlineNs: number, fn: () => void): number;
  cancel(handle: number): void;
}

/** What a device is given when it is plugged in. */
export interface Machine {
  ports: IoSpace;
  mmio: IoSpace;
  mem: GuestMemory;
  irq: IrqLines;
  clock: Clock;
}
