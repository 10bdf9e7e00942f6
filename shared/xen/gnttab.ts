// Grant tables as a domain uses them (Linux grant-table.c, Mini-OS gnttab.c):
// granting its own frames to another domain, and mapping or copying frames
// others granted to it. Checks happen in the hypervisor (grant_table.ts);
// this side writes entries in Xen's order (frame and domid, then flags) and
// refuses to end access while the hypervisor holds GTF_reading/GTF_writing.
import { PAGE_SIZE } from '../abi/xen.js';
import { shmOpen } from '../shm.js';
import {
  GNTMAP_host_map, GNTMAP_readonly, GNTST_okay, GNTTABOP_copy, GNTTABOP_map_grant_ref, GNTTABOP_query_size,
  GNTTABOP_setup_table, GNTTABOP_unmap_grant_ref, GTF_permit_access, GTF_readonly, GTF_reading, GTF_writing,
  type gnttab_copy,
} from '../abi/grant_table.js';
import { XenError, type HypervisorClient } from './hypervisor.js';

/** Refs below this are kept for the toolstack (console 0, xenstore 1), as Xen does. */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;

export interface GrantMapping {
  handle: number;
  /** The granted page, shared with the granting domain. */
  page: Uint8Array;
  frame: number;
  readonly: boolean;
}

export class GrantTable {
  readonly i32: Int32Array;
  readonly entries: number;
  private readonly free: number[] = [];

  constructor(private readonly hv: HypervisorClient, readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.entries = sab.byteLength / 8;
    for (let r = this.entries - 1; r >= GNTTAB_NR_RESERVED_ENTRIES; r--) this.free.push(r);
  }

  static open(hv: HypervisorClient, segment: string, frames: number): GrantTable {
    return new GrantTable(hv, shmOpen(segment, frames * PAGE_SIZE));
  }

  /** Writes entry `ref` directly (the toolstack's reserved refs use this). */
  setEntry(ref: number, domid: number, frame: number, readonly = false): void {
    Atomics.store(this.i32, ref * 2 + 1, frame | 0);
    Atomics.store(this.i32, ref * 2, ((domid & 0xffff) << 16) | GTF_permit_access | (readonly ? GTF_readonly : 0));
  }

  /** gnttab_grant_foreign_access: returns a ref, or -1 when the table is full. */
  grantAccess(domid: number, frame: number, readonly = false): number {
    const ref = this.free.pop();
    if (ref === undefined) return -1;
    this.setEntry(ref, domid, frame, readonly);
    return ref;
  }

  /** True while the hypervisor says the grant is mapped (GTF_reading/GTF_writing). */
  inUse(ref: number): boolean {
    return (Atomics.load(this.i32, ref * 2) & (GTF_reading | GTF_writing)) !== 0;
  }

  /** gnttab_end_foreign_access_ref: false (and the grant stays) while it is mapped. */
  endAccess(ref: number): boolean {
    for (;;) {
      const cur = Atomics.load(this.i32, ref * 2);
      if (cur & (GTF_reading | GTF_writing)) return false;
      if (Atomics.compareExchange(this.i32, ref * 2, cur, 0) === cur) break;
    }
    if (ref >= GNTTAB_NR_RESERVED_ENTRIES) this.free.push(ref);
    return true;
  }

  async setupTable(nrFrames: number, dom?: number): Promise<{ status: number; frame_list?: number[]; segment?: string }> {
    return (await this.hv.grant_table_op<{ status: number }>(GNTTABOP_setup_table, { dom, nr_frames: nrFrames })).data ?? { status: -1 };
  }

  async querySize(dom?: number): Promise<{ status: number; nr_frames: number; max_nr_frames: number }> {
    return (await this.hv.grant_table_op<{ status: number; nr_frames: number; max_nr_frames: number }>(
      GNTTABOP_query_size, { dom })).data!;
  }

  /** GNTTABOP_map_grant_ref; throws XenError with the GNTST_* status on refusal. */
  async mapGrant(domid: number, ref: number, readonly = false): Promise<GrantMapping> {
    const r = await this.hv.grant_table_op<{ status: number; handle: number; frame: number; segment: string;
                                              segment_bytes: number; offset: number }>(
      GNTTABOP_map_grant_ref, { dom: domid, ref, flags: GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0) });
    if (r.ret < 0) throw new XenError('GNTTABOP_map_grant_ref', r.ret);
    const d = r.data!;
    if (d.status !== GNTST_okay) throw new XenError('GNTTABOP_map_grant_ref', d.status);
    // Only the granted page is mapped into this process, nothing around it.
    const page = new Uint8Array(shmOpen(d.segment, PAGE_SIZE, d.offset));
    return { handle: d.handle, page, frame: d.frame, readonly };
  }

  /** GNTTABOP_unmap_grant_ref: returns the GNTST_* status. */
  async unmapGrant(handle: number): Promise<number> {
    const r = await this.hv.grant_table_op<{ status: number }>(GNTTABOP_unmap_grant_ref, { handle });
    return r.ret < 0 ? r.ret : r.data!.status;
  }

  /**
   * GNTTABOP_copy of several ops in one hypercall (Xen's `count`): one
   * GNTST_* status per op, or every op failed with the hypercall's errno.
   */
  async copyBatch(ops: gnttab_copy[]): Promise<number[]> {
    if (ops.length === 0) return [];
    const r = await this.hv.grant_table_op<{ status: number[] }>(GNTTABOP_copy, { ops });
    if (r.ret < 0 || !Array.isArray(r.data?.status)) return ops.map(() => (r.ret < 0 ? r.ret : -1));
    return r.data!.status;
  }

  /** GNTTABOP_copy, done by the hypervisor: returns the GNTST_* status. */
  async copy(op: gnttab_copy): Promise<number> {
    const r = await this.hv.grant_table_op<{ status: number }>(GNTTABOP_copy, op);
    return r.ret < 0 ? r.ret : r.data!.status;
  }
}
