// Watches (docs/misc/xenstore.txt WATCH/UNWATCH, xenstored_watch.c).
//
// A watch on P fires for a change to P or to anything below it, with the
// changed node's name. Removing a subtree fires, for each node removed,
// deepest first, the watches exactly on it, then the watches on the removed
// node and above it (Xen's delnode_sub). A watcher learns of a change only if
// it may read the node as it was before or as it is now, or its parent
// (watch_permitted); of @introduceDomain and @releaseDomain only if it may
// read the special node (SET_PERMS on it; by default only Domain-0 may).
// Watches are indexed by path so a write costs one lookup per ancestor, not
// a scan of every watch; one connection hears of one change in the order it
// set its watches up.
//
// Tokens are bytes: held as latin1 strings (one char per byte), so what a
// client sent comes back unchanged in every event.
import type { Perms } from './permissions.js';
import { permFor, ownerPerms } from './permissions.js';
import { XS_PERM_READ } from '../../../shared/abi/io/xs_wire.js';
import { parentOf, relativeTo } from './path.js';

export interface Watcher {
  readonly domid: number;
  readonly privileged: boolean;
  readonly target: number | undefined;
  /** Queues an XS_WATCH_EVENT for this connection (path and token as latin1 strings: bytes). */
  sendEvent(path: string, token: string): void;
}

export interface Watch {
  readonly conn: Watcher;
  /** Absolute node name or @special. */
  readonly path: string;
  /** Bytes, as a latin1 string. */
  readonly token: string;
  readonly relative: boolean;
  /** Creation order, for the order one connection hears of one change in. */
  seq?: number;
}

/**
 * Whose read access lets a watcher hear of a change to a node: its perms
 * before the change, its perms now, its parent's perms. `node` or `parent`
 * left undefined are looked up in the tree when needed (a node not there:
 * nobody hears through it).
 */
export interface Audience { before?: Perms | undefined; node?: Perms | undefined; parent?: Perms | undefined }

/** The special nodes whose events go only to who may read them. */
export const SPECIAL_NODES = ['@introduceDomain', '@releaseDomain'] as const;

export class WatchTable {
  private readonly byPath = new Map<string, Watch[]>();
  private count = 0;
  private seq = 0;
  /** Perms of @introduceDomain and @releaseDomain (Xen's set_dom_perms_default: Domain-0's, "n0"). */
  readonly specialPerms = new Map<string, Perms>(SPECIAL_NODES.map((n) => [n, ownerPerms(0)]));
  /** Current perms of a node in the main tree. */
  private readonly lookup: (path: string) => Perms | undefined;

  constructor(lookup: (path: string) => Perms | undefined = () => undefined) {
    this.lookup = lookup;
  }

  get size(): number {
    return this.count;
  }

  find(conn: Watcher, path: string, token: string): Watch | undefined {
    return this.byPath.get(path)?.find((w) => w.conn === conn && w.token === token);
  }

  add(w: Watch): void {
    let list = this.byPath.get(w.path);
    if (!list) this.byPath.set(w.path, (list = []));
    w.seq = this.seq++;
    list.push(w);
    this.count++;
  }

  remove(w: Watch): void {
    const list = this.byPath.get(w.path);
    if (!list) return;
    const i = list.indexOf(w);
    if (i < 0) return;
    list.splice(i, 1);
    this.count--;
    if (list.length === 0) this.byPath.delete(w.path);
  }

  removeConn(conn: Watcher): number {
    let n = 0;
    for (const [path, list] of this.byPath) {
      const keep = list.filter((w) => w.conn !== conn);
      n += list.length - keep.length;
      if (keep.length) this.byPath.set(path, keep);
      else this.byPath.delete(path);
    }
    this.count -= n;
    return n;
  }

  /** The initial event a new watch gets. */
  fireOne(w: Watch): void {
    w.conn.sendEvent(w.relative ? relativeTo(w.conn.domid, w.path) : w.path, w.token);
  }

  /** @introduceDomain or @releaseDomain happened. */
  fireSpecial(name: string): void {
    const perms = this.specialPerms.get(name);
    if (this.count === 0 || !perms) return;
    const list = this.byPath.get(name);
    if (!list) return;
    for (const w of list) {
      const c = w.conn;
      if (c.privileged || permFor(perms, c.domid, false, c.target) & XS_PERM_READ) c.sendEvent(name, w.token);
    }
  }

  /**
   * A node changed. exact: only watches on the node itself hear (a node
   * below a removed one); otherwise watches on it and on its ancestors.
   */
  fire(path: string, exact: boolean, who: Audience): void {
    if (this.count === 0) return;
    let hits: Watch[] | undefined;
    let p = path;
    for (;;) {
      const list = this.byPath.get(p);
      if (list) hits = hits ? hits.concat(list) : list;
      if (exact || p === '/') break;
      p = parentOf(p);
    }
    if (!hits) return;
    if (hits.length > 1) hits = [...hits].sort((a, b) => a.seq! - b.seq!);
    let allowed: Map<Watcher, boolean> | undefined; // guests' verdicts, one per connection
    for (const w of hits) {
      const c = w.conn;
      if (!c.privileged) {
        let ok = (allowed ??= new Map()).get(c);
        if (ok === undefined) allowed.set(c, (ok = this.permitted(c, path, who)));
        if (!ok) continue;
      }
      c.sendEvent(w.relative ? relativeTo(c.domid, path) : path, w.token);
    }
  }

  /** Xen's watch_permitted: the old perms, else the node's, else its parent's allow reading. */
  private permitted(c: Watcher, path: string, who: Audience): boolean {
    const reads = (p: Perms | undefined): boolean => !!p && (permFor(p, c.domid, false, c.target) & XS_PERM_READ) !== 0;
    if (reads(who.before)) return true;
    const node = who.node ?? this.lookup(path);
    if (!node) return false;
    if (reads(node)) return true;
    return reads(who.parent ?? this.lookup(parentOf(path)));
  }
}
