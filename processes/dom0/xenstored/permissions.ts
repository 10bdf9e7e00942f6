// Xen's permission model (docs/misc/xenstore.txt "Permissions";
// xenstored_core.c perm_for_conn):
//  - the first entry names the owner and the access everyone else gets;
//  - further entries give one domain 'n', 'r', 'w' or 'b';
//  - the owner, and privileged connections (Domain-0), have every right;
//  - a device model given a target with SET_TARGET has its target's rights.
// Perm lists are interned: thousands of nodes share a handful of lists.
import { XS_PERM_NONE, XS_PERM_READ, XS_PERM_WRITE, XS_PERM_BOTH, XS_PERM_OWNER } from '../../../shared/abi/io/xs_wire.js';

export interface PermEntry { readonly id: number; readonly perm: number }
export type Perms = readonly PermEntry[];

const CHARS: Record<string, number> = { n: XS_PERM_NONE, r: XS_PERM_READ, w: XS_PERM_WRITE, b: XS_PERM_BOTH };
const LETTER = ['n', 'r', 'w', 'b'];

const interned = new Map<string, Perms>();

export function formatPerm(e: PermEntry): string {
  return `${LETTER[e.perm & 3]}${e.id}`;
}

/** Keys of interned (frozen) lists: every logged change names its node's perms. */
const keys = new WeakMap<Perms, string>();

export function permsKey(p: Perms): string {
  let k = keys.get(p);
  if (k === undefined) {
    k = p.map(formatPerm).join(',');
    if (Object.isFrozen(p)) keys.set(p, k);
  }
  return k;
}

/** The one shared instance of a perm list. */
export function intern(p: Perms): Perms {
  const key = permsKey(p);
  let v = interned.get(key);
  if (!v) {
    v = Object.freeze(p.map((e) => Object.freeze({ id: e.id, perm: e.perm })));
    interned.set(key, v);
  }
  return v;
}

export function ownerPerms(domid: number): Perms {
  return intern([{ id: domid, perm: XS_PERM_NONE }]);
}

/** Parses "r0" style entries; null when any entry is malformed. */
export function parsePerms(strs: string[]): Perms | null {
  if (strs.length === 0) return null;
  const out: PermEntry[] = [];
  for (const s of strs) {
    const perm = CHARS[s[0] ?? ''];
    if (perm === undefined) return null;
    const idStr = s.slice(1);
    if (!/^\d{1,5}$/.test(idStr)) return null;
    const id = Number(idStr);
    if (id > 0x7fef) return null; // DOMID_FIRST_RESERVED
    out.push({ id, perm });
  }
  return intern(out);
}

/** The rights (XS_PERM_*) a caller has on a node with these perms. */
export function permFor(perms: Perms, domid: number, privileged: boolean, target: number | undefined): number {
  const owner = perms[0]!.id;
  if (privileged || owner === domid || (target !== undefined && owner === target)) {
    return XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;
  }
  for (let i = 1; i < perms.length; i++) {
    const e = perms[i]!;
    if (e.id === domid || (target !== undefined && e.id === target)) return e.perm;
  }
  return perms[0]!.perm;
}
