// The IOMMU of a host PCI device (docs/passthrough.md "IOMMU"): the
// GuestMemory a device model in processes/pcidev does its DMA through.
//
// The hypervisor programs one context per device: its owner's memory
// segment (`dom<id>.mem`, the owner's pseudo-physical address space, as
// Xen's IOMMU page tables map a guest's p2m for its devices) and the owner's
// frame table (`dom<id>.frames`, one byte per pfn, 1 while populated; the
// hypervisor alone writes it, at populate_physmap and
// decrease_reservation). Every DMA is split into pages and each page is
// checked against the frame table before any byte moves, so a DMA that
// touches one page the owner does not have does nothing at all:
//
//   owned            the bytes go to/from the owner's memory
//   not owned        RangeError to the model (its DMA fault), counted and
//                    reported as `iommu fault: d<owner> dma <dir> gfn 0x..`
//   no context       quarantine (dom_io, XSA-302): the DMA lands on one
//                    scratch page of this process; reads see the scratch
//                    page, nothing of any guest is touched; counted
//
// The frame table is read at each DMA (a byte load per page), so a page the
// owner balloons out stops being reachable at once; a direct transfer (view)
// is checked when it starts, as a device's DMA in flight outlives an IOTLB
// flush on hardware only until the transfer ends.
import { PAGE_SIZE } from '../abi/xen.js';
import type { GuestMemory } from './machine.js';

/** 48 bits of DMA address: what the model may put in a descriptor; the IOMMU decides the rest. */
export const IOMMU_ADDRESS_BYTES = 2 ** 48;

export interface IommuContext {
  owner: number;
  /** The owner's memory segment, and its frame table (one byte per pfn). */
  mem: SharedArrayBuffer;
  frames: SharedArrayBuffer;
  maxPfns: number;
}

export interface IommuFault { kind: 'iommu' | 'quarantine'; owner: number; dir: 'read' | 'write'; gfn: number }

export class Iommu implements GuestMemory {
  readonly size = IOMMU_ADDRESS_BYTES;
  private ctx: { owner: number; mem: Uint8Array; frames: Uint8Array; maxPfns: number } | null = null;
  private readonly scratch = new Uint8Array(PAGE_SIZE);
  readonly stats = { dma: 0, faults: 0, quarantined: 0 };

  /** `onWrite`: the owner's frames [pfn, pfn+n) a DMA wrote (quarantined writes touch none). */
  constructor(private readonly onFault: (f: IommuFault) => void = () => {},
              private readonly onWrite: (pfn: number, n: number) => void = () => {}) {}

  /** A new context (null: quarantine). The mappings of the former one are dropped. */
  setContext(c: IommuContext | null): void {
    this.ctx = c && {
      owner: c.owner, mem: new Uint8Array(c.mem, 0, Math.min(c.mem.byteLength, c.maxPfns * PAGE_SIZE)),
      frames: new Uint8Array(c.frames, 0, c.maxPfns), maxPfns: c.maxPfns,
    };
    this.scratch.fill(0);
  }

  get owner(): number | null { return this.ctx?.owner ?? null; }

  read(gpa: number, dst: Uint8Array): void {
    if (!this.translate(gpa, dst.length, 'read')) {
      for (let i = 0; i < dst.length; i += PAGE_SIZE) dst.set(this.scratch.subarray(0, Math.min(PAGE_SIZE, dst.length - i)), i);
      return;
    }
    dst.set(this.ctx!.mem.subarray(gpa, gpa + dst.length));
  }

  write(gpa: number, src: Uint8Array): void {
    if (!this.translate(gpa, src.length, 'write')) {
      this.scratch.set(src.subarray(Math.max(0, src.length - PAGE_SIZE)));
      return;
    }
    this.ctx!.mem.set(src, gpa);
    if (src.length) this.onWrite(Math.floor(gpa / PAGE_SIZE), Math.floor((gpa + src.length - 1) / PAGE_SIZE) - Math.floor(gpa / PAGE_SIZE) + 1);
  }

  /**
   * The owner's bytes for a transfer straight to or from them (a disk's
   * read into guest memory): every page checked now, as read and write do;
   * undefined in quarantine (read and write use the scratch page).
   */
  view(gpa: number, len: number, dir: 'read' | 'write'): Uint8Array | undefined {
    if (!this.ctx) return undefined;
    this.translate(gpa, len, dir);
    return this.ctx.mem.subarray(gpa, gpa + len);
  }

  /**
   * Checks every page of [gpa, gpa+len): true when all are the owner's;
   * false in quarantine (the caller uses the scratch page); throws
   * RangeError at the first page that is not (a DMA fault).
   */
  private translate(gpa: number, len: number, dir: 'read' | 'write'): boolean {
    this.stats.dma++;
    const c = this.ctx;
    if (!c) {
      this.stats.quarantined++;
      this.onFault({ kind: 'quarantine', owner: -1, dir, gfn: Number.isSafeInteger(gpa) && gpa >= 0 ? Math.floor(gpa / PAGE_SIZE) : -1 });
      return false;
    }
    if (!Number.isSafeInteger(gpa) || gpa < 0 || len < 0 || gpa + len > IOMMU_ADDRESS_BYTES) return this.fault(c.owner, dir, -1);
    if (len === 0) return true;
    const first = Math.floor(gpa / PAGE_SIZE);
    const last = Math.floor((gpa + len - 1) / PAGE_SIZE);
    for (let pfn = first; pfn <= last; pfn++) {
      if (pfn >= c.maxPfns || Atomics.load(c.frames, pfn) !== 1) return this.fault(c.owner, dir, pfn);
    }
    return true;
  }

  private fault(owner: number, dir: 'read' | 'write', gfn: number): never {
    this.stats.faults++;
    this.onFault({ kind: 'iommu', owner, dir, gfn });
    throw new RangeError(`iommu fault: d${owner} dma ${dir} gfn 0x${Math.max(gfn, 0).toString(16)}`);
  }
}
