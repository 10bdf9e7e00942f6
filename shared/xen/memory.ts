// Guest memory: a domain's own pseudo-physical frames, and (Dom0 only) the
// frames of another domain, as xc_map_foreign_range gives them to a builder.
import { PAGE_SIZE } from '../abi/xen.js';
import { shmOpen } from '../shm.js';
import { XENEMU_DOMCTL_getsegments, type xenemu_domain_segments } from '../abi/domctl.js';
import { check, type HypervisorClient } from './hypervisor.js';
import { domainSegmentNames } from '../wire/hypercall.js';

export class GuestMemory {
  readonly bytes: Uint8Array;
  readonly nrFrames: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.bytes = new Uint8Array(sab);
    this.nrFrames = sab.byteLength / PAGE_SIZE;
  }

  static open(segment: string, bytes: number): GuestMemory { return new GuestMemory(shmOpen(segment, bytes)); }

  /** The page of `pfn` (a view: writes go to guest memory). */
  page(pfn: number): Uint8Array {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrFrames) throw new RangeError(`pfn ${pfn} out of range`);
    return new Uint8Array(this.sab, pfn * PAGE_SIZE, PAGE_SIZE);
  }

  /** `count` consecutive pages from `pfn`. */
  range(pfn: number, count: number): Uint8Array {
    if (!Number.isInteger(pfn) || !Number.isInteger(count) || pfn < 0 || count < 1 || pfn + count > this.nrFrames) {
      throw new RangeError(`pfns ${pfn}+${count} out of range`);
    }
    return new Uint8Array(this.sab, pfn * PAGE_SIZE, count * PAGE_SIZE);
  }

  dataView(pfn: number, count = 1): DataView {
    const r = this.range(pfn, count);
    return new DataView(r.buffer, r.byteOffset, r.byteLength);
  }
}

/** XENEMU_DOMCTL_getsegments: -EPERM unless the caller is Dom0. */
export async function domainSegments(hv: HypervisorClient, domid: number): Promise<xenemu_domain_segments> {
  return check('XENEMU_DOMCTL_getsegments', await hv.domctl<xenemu_domain_segments>(XENEMU_DOMCTL_getsegments, { domain: domid })).data!;
}

/** Maps another domain's whole memory (privileged: the domain builder's view). */
export async function mapForeignDomain(hv: HypervisorClient, domid: number): Promise<GuestMemory> {
  const s = await domainSegments(hv, domid);
  return GuestMemory.open(s.mem, s.mem_bytes);
}

/**
 * Dom0 only, synchronous: one page of domain `domid` by its well-known
 * segment name (for services such as xenstored that map a ring given by
 * frame number inside a synchronous callback).
 */
export function mapForeignPage(host: string, domid: number, pfn: number): Uint8Array {
  return new Uint8Array(shmOpen(domainSegmentNames(host, domid).mem, PAGE_SIZE, pfn * PAGE_SIZE));
}

/** xc_map_foreign_range: `count` pages of domain `domid` from `pfn`. */
export async function mapForeignRange(hv: HypervisorClient, domid: number, pfn: number, count: number): Promise<Uint8Array> {
  return (await mapForeignDomain(hv, domid)).range(pfn, count);
}
