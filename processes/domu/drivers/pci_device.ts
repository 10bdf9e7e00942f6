// A PCI device as the PV guest kernel's drivers see it (processes/domu's
// NVMe and e1000 drivers): its configuration space through pcifront
// (XEN_PCI_OP_conf_read/write, io/pciif.h), its BARs through the device's
// BAR channel, DMA buffers in the guest's own pages, and its MSI-X vectors as
// pirqs bound to event channels. pcifront.ts gives one handle per device it
// found on the buses pciback published.

/** One BAR, mapped: accesses reach the device without Domain-0. */
export interface PciBar { readonly size: number; read(off: number, size: 1|2|4): number; write(off: number, size: 1|2|4, v: number): void }

/** Guest memory for DMA: `busAddr` is what goes into the device's descriptors. */
export interface PciDmaBuffer { readonly busAddr: number; readonly bytes: Uint8Array; free(): void }

export interface PciDeviceHandle {
  /** The guest's address of the device, DDDD:BB:DD.F (pcifront's virtual bus). */
  readonly bdf: string;
  cfgRead(off: number, size: 1|2|4): Promise<number>;
  cfgWrite(off: number, size: 1|2|4, v: number): Promise<void>;
  bar(n: number): PciBar;
  dmaAlloc(bytes: number): PciDmaBuffer;
  /** Enables MSI-X with `vectors` vectors; resolves to how many the device got. */
  enableMsix(vectors: number): Promise<number>;
  onInterrupt(vector: number, cb: () => void): void;
  eoi(vector: number): void;
}
