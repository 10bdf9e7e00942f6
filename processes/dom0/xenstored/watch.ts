// Watches (docs/misc/xenstore.txt WATCH/UNWATCH, xenstored_watch.c).
//
// A watch on P fires for a change to P or to anything below it, with the
// changed node's name; removing a subtree also fires every watch below the
// removed node, with the watch's own name. A watcher learns of a node only
// if it may read it. Watches are indexed by path so a write costs one lookup
// per ancestor, not a scan of every watch.
import type { Perms } from './permissions.js';
import { permFor } from './permissions.js';
import { XS_PERM_READ } from '../../../shared/abi/io/xs_wire.js';
import { isChildOrSelf, relativeTo } from './path.js';

export interface Watcher {
  readonly domid: number;
  readonly privileged: boolean;
  readonly target: number | undefined;
  /** Queues an XS_WATCH_EVENT for this connection. */
  sendEvent(path: string, token: string): void;
}

export interface Watch {
  readonly conn: Watcher;
  /** Absolute node name or @special. */
  readonly path: string;
  readonly token: string;
  readonly relative: boolean;
}

export class WatchTable {
  private readonly byPath = new Map<string, Watch[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  find(conn: Watcher, path: string, token: string): Watch | undefined {
    return this.byPath.get(path)?.find((w) => w.conn === conn && w.token === token);
  }

  add(w: Watch): void {
    let list = this.byPath.get(w.path);
    if (!list) this.byPath.set(w.path, (list = []));
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

  /**
   * A node changed. perms: the node's permissions (before removal for rm),
   * undefined for special @ events, which every watcher of them gets.
   */
  fire(path: string, recursive: boolean, perms: Perms | undefined): void {
    if (this.count === 0) return;
    // Watches on the node and its ancestors.
    let p = path;
    for (;;) {
      const list = this.byPath.get(p);
      if (list) for (const w of list) this.deliver(w, path, perms);
      if (p === '/' || p.startsWith('@')) break;
      const i = p.lastIndexOf('/');
      p = i <= 0 ? '/' : p.slice(0, i);
    }
    // Watches below a removed node hear about it under their own name.
    if (recursive) {
      for (const [wp, list] of this.byPath) {
        if (wp !== path && isChildOrSelf(wp, path)) for (const w of list) this.deliver(w, wp, perms);
      }
    }
  }

  private deliver(w: Watch, name: string, perms: Perms | undefined): void {
    const c = w.conn;
    if (perms && !c.privileged && !(permFor(perms, c.domid, false, c.target) & XS_PERM_READ)) return;
    c.sendEvent(w.relative ? relativeTo(c.domid, name) : name, w.token);
  }
}
