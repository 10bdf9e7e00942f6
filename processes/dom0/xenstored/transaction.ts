// Transactions (docs/misc/xenstore.txt TRANSACTION_START/END).
//
// How conflicts are found. Like Xen's C xenstored (transaction.c), a
// transaction is optimistic: it runs against a private overlay of the tree and
// remembers, for every node it looked at or changed, the generation that node
// had in the main tree at first sight (0 for "did not exist"). Its own writes
// go into the overlay, so it sees them and nobody else does. On commit, if any
// remembered node now has another generation, somebody changed what this
// transaction based itself on, and the commit fails with EAGAIN; the client
// retries. Otherwise the operations it performed are replayed, in order, onto
// the main tree: because every node they touch is exactly as the transaction
// saw it, the replay produces exactly the overlay's result, and it goes
// through the main tree's normal path (generations, durability, quotas).
// Watches on its changes fire only then; an abort drops everything.
//
// Creating or removing a child changes the parent's list of children, so two
// transactions adding different children to one directory conflict, as in Xen.
import type { Perms } from './permissions.js';
import type { View, XsNode, Tree, XsValue } from './store.js';
import { parentOf, baseName, childPath } from './path.js';

type Op =
  | { k: 'create'; path: string; value: XsValue; perms: Perms }
  | { k: 'value'; path: string; value: XsValue }
  | { k: 'perms'; path: string; perms: Perms }
  | { k: 'rm'; path: string };

export interface Fire { path: string; recursive: boolean; perms: Perms | undefined }

export class Transaction implements View {
  readonly id: number;
  private readonly tree: Tree;
  /** path -> private node, or null when removed in this transaction. */
  private readonly overlay = new Map<string, XsNode | null>();
  /** Overlay nodes whose children set is our own copy. */
  private readonly ownChildren = new Set<string>();
  /** path -> main-tree generation at first access (0: absent). */
  readonly accessed = new Map<string, number>();
  readonly ops: Op[] = [];
  readonly fires: Fire[] = [];
  /** Node count changes per owner, for quota checks before commit. */
  readonly ownerDelta = new Map<number, number>();

  constructor(id: number, tree: Tree) {
    this.id = id;
    this.tree = tree;
  }

  get(path: string): XsNode | undefined {
    if (this.overlay.has(path)) return this.overlay.get(path) ?? undefined;
    const n = this.tree.get(path);
    if (!this.accessed.has(path)) this.accessed.set(path, n ? n.gen : 0);
    return n;
  }

  /** A private copy of a node, made on first change. */
  private own(path: string): XsNode {
    const cur = this.overlay.get(path);
    if (cur) return cur;
    const n = this.get(path)!;
    const copy: XsNode = { value: n.value, perms: n.perms, children: n.children, gen: n.gen };
    this.overlay.set(path, copy);
    return copy;
  }

  private ownKids(path: string): XsNode {
    const n = this.own(path);
    if (!this.ownChildren.has(path)) {
      n.children = n.children ? new Set(n.children) : null;
      this.ownChildren.add(path);
    }
    return n;
  }

  private count(owner: number, d: number): void {
    this.ownerDelta.set(owner, (this.ownerDelta.get(owner) ?? 0) + d);
  }

  create(path: string, value: XsValue, perms: Perms): void {
    const parent = this.ownKids(parentOf(path));
    (parent.children ??= new Set()).add(baseName(path));
    this.get(path); // remember that it did not exist
    this.overlay.set(path, { value, perms, children: null, gen: 0 });
    this.ownChildren.add(path);
    this.count(perms[0]!.id, 1);
    this.ops.push({ k: 'create', path, value, perms });
  }

  setValue(path: string, value: XsValue): void {
    this.own(path).value = value;
    this.ops.push({ k: 'value', path, value });
  }

  setPerms(path: string, perms: Perms): void {
    const n = this.own(path);
    if (n.perms[0]!.id !== perms[0]!.id) { this.count(n.perms[0]!.id, -1); this.count(perms[0]!.id, 1); }
    n.perms = perms;
    this.ops.push({ k: 'perms', path, perms });
  }

  removeSubtree(path: string): Array<[string, XsNode]> {
    const removed: Array<[string, XsNode]> = [];
    const stack = [path];
    while (stack.length) {
      const p = stack.pop()!;
      const n = this.get(p);
      if (!n) continue;
      removed.push([p, n]);
      if (n.children) for (const c of n.children) stack.push(childPath(p, c));
      this.overlay.set(p, null);
      this.count(n.perms[0]!.id, -1);
    }
    const parent = this.ownKids(parentOf(path));
    if (parent.children) {
      parent.children.delete(baseName(path));
      if (parent.children.size === 0) parent.children = null;
    }
    this.ops.push({ k: 'rm', path });
    return removed;
  }

  /** True when nothing this transaction relied on has changed since. */
  isCurrent(): boolean {
    for (const [path, gen] of this.accessed) {
      const n = this.tree.get(path);
      if ((n ? n.gen : 0) !== gen) return false;
    }
    return true;
  }

  /** Replays this transaction's operations onto the main tree (after isCurrent). */
  applyTo(main: View): void {
    for (const op of this.ops) {
      switch (op.k) {
        case 'create': main.create(op.path, op.value, op.perms); break;
        case 'value': main.setValue(op.path, op.value); break;
        case 'perms': main.setPerms(op.path, op.perms); break;
        case 'rm': main.removeSubtree(op.path); break;
      }
    }
  }

  /** Rough memory held, to bound what one transaction may pile up. */
  get size(): number {
    return this.overlay.size + this.ops.length;
  }
}
