// Grant tables, v1 (xen/common/grant_table.c).
//
// A domain's grant table lives in its `gnttab` segment: grant_entry_v1
// {u16 flags, u16 domid, u32 frame} entries the granting domain writes. The
// hypervisor reads an entry once, checks it, then claims it with a 32-bit
// compare-and-swap on {flags, domid} (little-endian: flags in the low half)
// that also sets GTF_reading / GTF_writing, so a guest that rewrites the
// entry meanwhile makes the map fail instead of racing it (XSA-155 spirit).
// GTF_reading/GTF_writing stay set while any mapping is live; the granter's
// gnttab_end_foreign_access sees them and refuses to revoke.
//
// A map returns the name and offset of the granter's frame; the mapper's
// library maps that one page (shared/xen/gnttab.ts). Mapping is per process,
// so xenemu's isolation of grants is the library's, not the MMU's.
import {
  GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTMAP_readonly, GNTST_bad_copy_arg, GNTST_bad_domain,
  GNTST_bad_gntref, GNTST_bad_handle, GNTST_bad_page, GNTST_general_error, GNTST_okay,
  GNTST_permission_denied, GTF_permit_access, GTF_readonly, GTF_reading, GTF_type_mask, GTF_writing,
  type gnttab_copy, type gnttab_copy_ptr,
} from '../../shared/abi/grant_table.js';
import { DOMID_SELF, PAGE_SIZE } from '../../shared/abi/xen.js';

import type { Domain } from './domain.js';
import { markDirty } from './log_dirty.js';
import type { HcResult, Hypervisor } from './hypervisor.js';

export interface ActiveGrant { readers: number; writers: number; frame: number }
export interface MaptrackEntry { granter: number; ref: number; readonly: boolean }

function words(ref: number): [flagsDomid: number, frame: number] { return [ref * 2, ref * 2 + 1]; }

interface CheckedEntry { frame: number; combo: number }

/** Reads and checks entry `ref` of `granter` for use by `grantee`. Returns a GNTST_* on failure. */
function checkEntry(hv: Hypervisor, granter: Domain, grantee: number, ref: number, write: boolean): CheckedEntry | number {
  if (!Number.isInteger(ref) || ref < 0 || ref >= granter.gnttabEntries) return GNTST_bad_gntref;
  const [wi, fi] = words(ref);
  const combo = Atomics.load(granter.gnttab32, wi);
  const frame = Atomics.load(granter.gnttab32, fi) >>> 0;
  const flags = combo & 0xffff;
  const domid = (combo >>> 16) & 0xffff;
  if ((flags & GTF_type_mask) !== GTF_permit_access || domid !== grantee) {
    hv.console.log(`grant: d${grantee} bad flags (${flags.toString(16)}) or dom (${domid}) in d${granter.domid} ref ${ref}`);
    return GNTST_general_error;
  }
  if (write && (flags & GTF_readonly)) {
    hv.console.log(`grant: d${grantee} attempt to write-pin r/o grant d${granter.domid} ref ${ref}`);
    return GNTST_general_error;
  }
  if (!granter.frames.isOwned(frame)) {
    hv.console.log(`grant: d${granter.domid} ref ${ref} names frame ${frame} it does not own`);
    return GNTST_bad_page;
  }
  return { frame, combo };
}

export function gnttabSetupTable(_hv: Hypervisor, _caller: Domain, d: Domain, arg: { nr_frames?: number }): HcResult {
  const n = Number(arg.nr_frames ?? 1);
  if (!Number.isInteger(n) || n < 0 || n > d.maxGrantFrames) return { ret: 0, data: { status: GNTST_general_error } };
  return { ret: 0, data: { status: GNTST_okay, frame_list: Array.from({ length: n }, (_, i) => i),
                           segment: d.segments.gnttab } };
}

export function gnttabQuerySize(_hv: Hypervisor, _caller: Domain, d: Domain): HcResult {
  return { ret: 0, data: { status: GNTST_okay, nr_frames: d.maxGrantFrames, max_nr_frames: d.maxGrantFrames } };
}

export function gnttabMapGrantRef(hv: Hypervisor, caller: Domain, _t: Domain | null,
                                  arg: { dom?: number; ref?: number; flags?: number }): HcResult {
  const fail = (status: number) => ({ ret: 0, data: { status } });
  const granter = hv.domains.get(Number(arg.dom));
  if (!granter || granter.dying || granter === caller) return fail(GNTST_bad_domain);
  const ro = (Number(arg.flags ?? 0) & GNTMAP_readonly) !== 0;
  const ref = Number(arg.ref);
  // The granter can rewrite its entry at any time: like Xen's
  // _set_status, give up after a few lost races ("unstable grant entry")
  // rather than spin for as long as a hostile guest likes.
  for (let tries = 0; ; tries++) {
    if (tries === 4) return fail(GNTST_general_error);
    const e = checkEntry(hv, granter, caller.domid, ref, !ro);
    if (typeof e === 'number') return fail(e);
    const want = e.combo | GTF_reading | (ro ? 0 : GTF_writing);
    // Claim only if the guest did not change the entry since we checked it.
    if (Atomics.compareExchange(granter.gnttab32, ref * 2, e.combo, want) !== e.combo) continue;
    const act = granter.activeGrants.get(ref) ?? { readers: 0, writers: 0, frame: e.frame };
    if (ro) act.readers++; else { act.writers++; markDirty(granter, e.frame); }
    granter.activeGrants.set(ref, act);
    const handle = caller.nextHandle++;
    caller.maptrack.set(handle, { granter: granter.domid, ref, readonly: ro });
    return { ret: 0, data: { status: GNTST_okay, handle, frame: e.frame, segment: granter.segments.mem,
                             segment_bytes: granter.frames.maxPfns * PAGE_SIZE,
                             offset: e.frame * PAGE_SIZE, readonly: ro } };
  }
}

function unpin(granter: Domain, ref: number, readonly: boolean): void {
  const act = granter.activeGrants.get(ref);
  if (!act) return;
  if (readonly) act.readers = Math.max(0, act.readers - 1);
  else { act.writers = Math.max(0, act.writers - 1); markDirty(granter, act.frame); }
  let clear = 0;
  if (act.writers === 0) clear |= GTF_writing;
  if (act.writers === 0 && act.readers === 0) { clear |= GTF_reading; granter.activeGrants.delete(ref); }
  if (clear && granter.gnttab32.length > 0) Atomics.and(granter.gnttab32, ref * 2, ~clear);
}

export function gnttabUnmapGrantRef(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: { handle?: number }): HcResult {
  const handle = Number(arg.handle);
  const m = caller.maptrack.get(handle);
  if (!m) return { ret: 0, data: { status: GNTST_bad_handle } };
  caller.maptrack.delete(handle);
  const granter = hv.domains.get(m.granter);
  if (granter) unpin(granter, m.ref, m.readonly);
  return { ret: 0, data: { status: GNTST_okay } };
}

interface Side { d: Domain; frame: number }

function copySide(hv: Hypervisor, caller: Domain, p: gnttab_copy_ptr | undefined, isGref: boolean, write: boolean): Side | number {
  if (!p) return GNTST_bad_copy_arg;
  const domid = p.domid === DOMID_SELF ? caller.domid : Number(p.domid);
  const d = hv.domains.get(domid);
  if (!d || d.dying) return GNTST_bad_domain;
  if (isGref) {
    if (d === caller) return GNTST_bad_domain;
    const e = checkEntry(hv, d, caller.domid, Number(p.ref), write);
    return typeof e === 'number' ? e : { d, frame: e.frame };
  }
  // A plain frame: only the caller's own, unless the caller is privileged.
  if (d !== caller && !hv.isPrivileged(caller)) return GNTST_permission_denied;
  const frame = Number(p.gmfn);
  if (!d.frames.isOwned(frame)) return GNTST_bad_page;
  return { d, frame };
}

/**
 * GNTTABOP_copy. Xen takes an array of `count` ops, each with its own
 * status; `arg` is either one op (data.status) or `{ ops: [...] }`
 * (data.status[i] per op), so a backend moves a whole ring's worth of
 * packets in one hypercall as netback's batched gnttab_copy does.
 */
export function gnttabCopy(hv: Hypervisor, caller: Domain, t: Domain | null, arg: gnttab_copy | { ops: gnttab_copy[] }): HcResult {
  if (arg && Array.isArray((arg as { ops?: unknown }).ops)) {
    const ops = (arg as { ops: gnttab_copy[] }).ops;
    if (ops.length > 4096) return { ret: 0, data: { status: ops.map(() => GNTST_bad_copy_arg) } };
    const status = ops.map((op) => ((gnttabCopyOne(hv, caller, t, op) as { data: { status: number } }).data.status));
    return { ret: 0, data: { status } };
  }
  return gnttabCopyOne(hv, caller, t, arg as gnttab_copy);
}

function gnttabCopyOne(hv: Hypervisor, caller: Domain, _t: Domain | null, arg: gnttab_copy): HcResult {
  const fail = (status: number) => ({ ret: 0, data: { status } });
  if (!arg || typeof arg !== 'object') return fail(GNTST_bad_copy_arg);
  const flags = Number(arg.flags ?? 0);
  const len = Number(arg.len);
  const so = Number(arg.source?.offset ?? 0);
  const dst = Number(arg.dest?.offset ?? 0);
  if (!Number.isInteger(len) || len < 0 || !Number.isInteger(so) || !Number.isInteger(dst) ||
      so < 0 || dst < 0 || so + len > PAGE_SIZE || dst + len > PAGE_SIZE) return fail(GNTST_bad_copy_arg);
  const s = copySide(hv, caller, arg.source, (flags & GNTCOPY_source_gref) !== 0, false);
  if (typeof s === 'number') return fail(s);
  const d = copySide(hv, caller, arg.dest, (flags & GNTCOPY_dest_gref) !== 0, true);
  if (typeof d === 'number') return fail(d);
  if (!s.d.mem || !d.d.mem) return fail(GNTST_bad_page);
  const src = new Uint8Array(s.d.mem, s.frame * PAGE_SIZE + so, len);
  new Uint8Array(d.d.mem, d.frame * PAGE_SIZE + dst, len).set(src);
  markDirty(d.d, d.frame);
  return { ret: 0, data: { status: GNTST_okay } };
}

/** On destroy: drop this domain's mappings of others, and others' mappings of it. */
export function gnttabDestroy(hv: Hypervisor, d: Domain): void {
  for (const m of d.maptrack.values()) {
    const g = hv.domains.get(m.granter);
    if (g) unpin(g, m.ref, m.readonly);
  }
  d.maptrack.clear();
  for (const other of hv.domains.values()) {
    for (const [h, m] of other.maptrack) if (m.granter === d.domid) other.maptrack.delete(h);
  }
  d.activeGrants.clear();
}

