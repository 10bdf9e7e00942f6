// A PciDeviceHandle (processes/domu/drivers/pci_device.ts) around a device
// model in the test's own process, for the protocol logic of the PV kernel's
// PCI drivers: guest memory is a Uint8Array, BAR0 is the model's MMIO
// through a PCI bus, DMA buffers are pages of that memory (bus address =
// offset), MSI-X messages are matched back to vectors by their data, and the
// INTx line behaves as a level pirq: delivered once, masked until eoi().
// Interrupts arrive on the next turn of the event loop, as an event channel
// upcall does, never inside the register write that caused them.
import type { BlockBackend } from '../../shared/hw/backend.js';
import type { Clock, IrqLines } from '../../shared/hw/machine.js';
import { AddressSpace } from '../../shared/hw/iospace.js';
import type { NvmeOptions } from '../../shared/hw/nvme.js';
import { NVME_CAP_MSIX, NVME_MSIX_VECTORS, NvmePci } from '../../shared/hw/nvme_pci.js';
import { PciBus } from '../../shared/hw/pci.js';
import type { PciBar, PciDeviceHandle, PciDmaBuffer } from '../../processes/domu/drivers/pci_device.js';
import { RamMemory } from '../hw/fakes.js';

const BAR0 = 0xfebf0000;
const SLOT = 5;
const PAGE = 4096;

/** Timers on Node's event loop. */
class LoopClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private next = 1;
  now(): number { return Number(process.hrtime.bigint()); }
  setTimer(deadlineNs: number, fn: () => void): number {
    const h = this.next++;
    this.timers.set(h, setTimeout(() => { this.timers.delete(h); fn(); }, Math.max(0, (deadlineNs - this.now()) / 1e6)));
    return h;
  }
  cancel(handle: number): void { clearTimeout(this.timers.get(handle)); this.timers.delete(handle); }
  close(): void { for (const t of this.timers.values()) clearTimeout(t); this.timers.clear(); }
}

export interface InProcessOptions {
  disk: BlockBackend;
  ram?: number;
  nvme?: NvmeOptions;
  /** Whether enableMsix grants vectors (false: the driver falls back to INTx). */
  msix?: boolean;
}

export class InProcessNvme implements PciDeviceHandle {
  readonly bdf = '0000:00:05.0';
  readonly mem: RamMemory;
  readonly dev: NvmePci;
  readonly clock = new LoopClock();
  private readonly bus: PciBus;
  private readonly mmio = new AddressSpace('mmio', 2 ** 32);
  private readonly handlers = new Map<number, () => void>();
  private readonly msix: boolean;
  private intxLevel: 0 | 1 = 0;
  private intxMasked = false;
  private nextPage: number;
  private readonly freePages: number[] = [];
  /** Pages handed out and not freed. */
  allocated = 0;
  /** Interrupts delivered: MSI-X messages by vector, and INTx upcalls. */
  readonly delivered = { msix: new Map<number, number>(), intx: 0 };

  constructor(opts: InProcessOptions) {
    this.mem = new RamMemory(opts.ram ?? 32 << 20);
    this.nextPage = 1; // page 0 stays unused: a bus address of 0 is a driver bug
    this.msix = opts.msix ?? true;
    const irq: IrqLines = {
      setIsaIrq: () => { /* not wired */ },
      setPciIntx: (_d, _pin, level) => { this.intxLevel = level; this.raiseIntx(); },
    };
    this.dev = new NvmePci({
      mem: this.mem, clock: this.clock, irq,
      injectMsi: (_addr, data) => {
        this.delivered.msix.set(data, (this.delivered.msix.get(data) ?? 0) + 1);
        setImmediate(() => this.handlers.get(data)?.());
      },
    }, opts.disk, opts.nvme);
    this.bus = new PciBus({ ports: new AddressSpace('ports', 0x10000), mmio: this.mmio });
    this.bus.plug(this.dev, SLOT);
    // What firmware (and pciback) did before the guest saw the device: BAR0 placed.
    this.bus.configWrite(SLOT << 3, 0x10, 4, BAR0);
    this.bus.configWrite(SLOT << 3, 0x14, 4, 0);
  }

  async cfgRead(off: number, size: 1 | 2 | 4): Promise<number> { return this.bus.configRead(SLOT << 3, off, size); }
  async cfgWrite(off: number, size: 1 | 2 | 4, v: number): Promise<void> { this.bus.configWrite(SLOT << 3, off, size, v); }

  bar(n: number): PciBar {
    if (n !== 0) throw new RangeError(`BAR${n} is not a memory BAR of this device`);
    const mmio = this.mmio;
    return {
      size: 0x4000,
      read: (off, size) => mmio.read(BAR0 + off, size),
      write: (off, size, v) => mmio.write(BAR0 + off, size, v),
    };
  }

  dmaAlloc(bytes: number): PciDmaBuffer {
    const n = Math.max(1, Math.ceil(bytes / PAGE));
    let first: number;
    if (n === 1 && this.freePages.length) first = this.freePages.pop()!;
    else { first = this.nextPage; this.nextPage += n; }
    if (this.nextPage * PAGE > this.mem.size) throw new RangeError('out of guest memory');
    this.allocated += n;
    let freed = false;
    return {
      busAddr: first * PAGE,
      bytes: this.mem.bytes.subarray(first * PAGE, first * PAGE + bytes),
      free: () => {
        if (freed) return;
        freed = true;
        this.allocated -= n;
        for (let i = 0; i < n; i++) this.freePages.push(first + i);
      },
    };
  }

  /** As pcifront's XEN_PCI_OP_enable_msix: entries programmed with data = vector, then unmasked. */
  async enableMsix(vectors: number): Promise<number> {
    if (!this.msix) return 0;
    const n = Math.min(vectors, NVME_MSIX_VECTORS);
    const ctl = NVME_CAP_MSIX + 2;
    await this.cfgWrite(ctl, 2, 0xc000);
    const bar = this.bar(0);
    for (let v = 0; v < n; v++) {
      bar.write(0x2000 + 16 * v, 4, 0xfee00000);
      bar.write(0x2000 + 16 * v + 4, 4, 0);
      bar.write(0x2000 + 16 * v + 8, 4, v);
      bar.write(0x2000 + 16 * v + 12, 4, 0);
    }
    await this.cfgWrite(ctl, 2, 0x8000);
    return n;
  }

  onInterrupt(vector: number, cb: () => void): void { this.handlers.set(vector, cb); }

  eoi(vector: number): void {
    if (vector !== 0 || this.dev.msixEnabled) return;
    this.intxMasked = false;
    this.raiseIntx();
  }

  /** A level pirq: one upcall while the line is high, then masked until the EOI. */
  private raiseIntx(): void {
    if (!this.intxLevel || this.intxMasked) return;
    this.intxMasked = true;
    setImmediate(() => { this.delivered.intx++; this.handlers.get(0)?.(); });
  }

  close(): void { this.clock.close(); }
}
