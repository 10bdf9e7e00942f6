// A PCI function as the PV kernel's drivers see it: configuration space
// through pcifront (XEN_PCI_OP_conf_read/conf_write of io/pciif.h, so each
// access is a round trip through Domain-0's pciback and may be refused), the
// BARs as synchronous registers (the device's BAR channel, mapped into the
// guest), DMA buffers in the guest's own frames (bus address = pfn << 12,
// checked page by page by the IOMMU the hypervisor programs), and interrupts
// as the event channels of pirqs (PHYSDEVOP_map_pirq, EVTCHNOP_bind_pirq).
// pcifront implements it; a driver (nvme.ts) is written only against it.

/** One BAR's registers; offsets from the BAR's start. */
export interface PciBar { readonly size: number; read(off: number, size: 1 | 2 | 4): number; write(off: number, size: 1 | 2 | 4, v: number): void }

/** Page-aligned guest memory a device may reach by DMA at `busAddr` (its frame << 12). */
export interface PciDmaBuffer { readonly busAddr: number; readonly bytes: Uint8Array; free(): void }

export interface PciDeviceHandle {
  /** The function's address as the guest sees it ("0000:00:00.0"). */
  readonly bdf: string;
  /** Through pcifront (XEN_PCI_OP_conf_read). */
  cfgRead(off: number, size: 1 | 2 | 4): Promise<number>;
  cfgWrite(off: number, size: 1 | 2 | 4, v: number): Promise<void>;
  /** Synchronous register access. */
  bar(n: number): PciBar;
  /** Page-aligned memory of the guest, busAddr = its frame << 12. */
  dmaAlloc(bytes: number): PciDmaBuffer;
  /** How many vectors were granted (0: use INTx). */
  enableMsix(vectors: number): Promise<number>;
  /** Vector 0 = INTx when MSI-X is off. */
  onInterrupt(vector: number, cb: () => void): void;
  /** Ends an interrupt's handling: a level (INTx) pirq stays masked until then (PHYSDEVOP_eoi). */
  eoi(vector: number): void;
}
