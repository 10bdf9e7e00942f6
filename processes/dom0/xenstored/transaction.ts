// Transactions (docs/misc/xenstore.txt TRANSACTION_START/END).
//
// What a transaction sees. Like Xen's C xenstored (xenstored_transaction.c,
// access_node), a transaction takes its own copy of a node the first time it
// touches it, read or write, and from then on sees only that copy: a value
// written outside afterwards, a node removed outside, children added outside
// to a directory it listed, none of it shows. A node absent at first sight
// stays absent for it, even if someone creates it later. Nodes it never
// touched it reads from the live tree, as they are at that moment. So each
// node it sees is the one it based itself on, and its own writes go to its
// copies, where it sees them and nobody else does.
//
// What a copy costs. A node is a small object whose value string and perm
// list never change in place; the copy is a new small object pointing at
// them. Its set of children is shared with the tree, which replaces a shared
// set instead of changing it (store.ts, shareChildren): a large directory is
// copied only by the tree's first change to it after a transaction took a
// copy of it (the mark is not taken back when the transaction ends), or when
// the transaction itself adds or removes one of its children.
//
// How conflicts are found. The transaction is optimistic: for every node it
// touched it remembers the generation the node had at first sight (0 for
// "did not exist"). On commit, if any of those nodes now has another
// generation, somebody changed what this transaction based itself on, and
// the commit fails with EAGAIN; the client retries. Otherwise the operations
// it performed are replayed, in order, onto the main tree: because every
// node they touch is exactly as the transaction saw it, the replay produces
// exactly the transaction's result, and it goes through the main tree's
// normal path (generations, durability, quotas). Creating or removing a child
// changes the parent's list of children, so two transactions adding
// different children to one directory conflict, as in Xen.
//
// A guest's transaction may touch at most 1024 nodes (Xen's transaction-nodes
// quota): the request that would touch one more fails with ENOSPC, and the
// transaction can then only fail (its commit answers ENOMEM, as in Xen),
// since part of that request may have been done.
//
// Watches. A change inside a transaction fires nothing until the commit, and
// then one event per node changed, however often it was written, in the
// order the transaction first touched them (Xen's queue_watches and
// finalize_transaction); an abort drops everything.
import type { Perms } from './permissions.js';
import { type View, type XsNode, type Tree, type XsValue, shareChildren } from './store.js';
import { parentOf, baseName, childPath } from './path.js';

type Op =
  | { k: 'create'; path: string; value: XsValue; perms: Perms }
  | { k: 'value'; path: string; value: XsValue }
  | { k: 'perms'; path: string; perms: Perms }
  | { k: 'rm'; path: string };

/** A watch event owed on commit: exact (this node only) or for the node and its ancestors' watches. */
export interface Fire { exact: boolean }

/** Thrown by a transaction asked to touch a node past its quota; the request answers ENOSPC. */
export class TransactionFull extends Error {
  constructor() { super('transaction node quota'); this.name = 'TransactionFull'; }
}

export class Transaction implements View {
  readonly id: number;
  private readonly tree: Tree;
  /** Nodes it may touch (Infinity for Domain-0). */
  private readonly nodeLimit: number;
  /** A request went past the node quota: the commit must fail. */
  failed = false;
  /**
   * This transaction's view of every node it touched: its copy, or null for
   * absent (at first sight, or removed here). Insertion order is the order
   * of first access.
   */
  private readonly seen = new Map<string, XsNode | null>();
  /** Copies whose children set is this transaction's own (not shared with the tree). */
  private readonly ownChildren = new Set<string>();
  /** path -> main-tree generation at first access (0: absent). */
  readonly accessed = new Map<string, number>();
  readonly ops: Op[] = [];
  /** Watch events owed on commit, one per node. */
  readonly fires = new Map<string, Fire>();
  /** Node count changes per owner, for quota checks before commit. */
  readonly ownerDelta = new Map<number, number>();

  constructor(id: number, tree: Tree, nodeLimit = Infinity) {
    this.id = id;
    this.tree = tree;
    this.nodeLimit = nodeLimit;
  }

  get(path: string): XsNode | undefined {
    const mine = this.seen.get(path);
    if (mine !== undefined) return mine ?? undefined;
    if (this.accessed.size >= this.nodeLimit) {
      this.failed = true;
      throw new TransactionFull();
    }
    const n = this.tree.get(path);
    this.accessed.set(path, n ? n.gen : 0);
    if (!n) {
      this.seen.set(path, null);
      return undefined;
    }
    const copy: XsNode = { value: n.value, perms: n.perms, children: shareChildren(n.children), gen: n.gen };
    this.seen.set(path, copy);
    return copy;
  }

  /**
   * The perms a node had at first sight, for nodes that existed then and
   * changed here: who may hear of the change on commit (Xen checks the old
   * perms too, so that a watcher losing access still learns of it).
   */
  private readonly original = new Map<string, Perms>();

  private keepOriginal(path: string, n: XsNode): void {
    if (this.accessed.get(path) && !this.original.has(path)) this.original.set(path, n.perms);
  }

  /** This transaction's copy of an existing node, for a change. */
  private mine(path: string): XsNode {
    const n = this.get(path)!;
    this.keepOriginal(path, n);
    n.gen = this.tree.nextGen();
    return n;
  }

  private mineWithKids(path: string): XsNode {
    const n = this.mine(path);
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
    const parent = this.mineWithKids(parentOf(path));
    (parent.children ??= new Set()).add(baseName(path));
    this.get(path); // remembers that it did not exist
    this.seen.set(path, { value, perms, children: null, gen: this.tree.nextGen() });
    this.ownChildren.add(path);
    this.count(perms[0]!.id, 1);
    this.ops.push({ k: 'create', path, value, perms });
  }

  setValue(path: string, value: XsValue): void {
    this.mine(path).value = value;
    this.ops.push({ k: 'value', path, value });
  }

  setPerms(path: string, perms: Perms): void {
    const n = this.mine(path);
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
      this.keepOriginal(p, n);
      removed.push([p, n]);
      if (n.children) for (const c of n.children) stack.push(childPath(p, c));
      this.seen.set(p, null);
      this.ownChildren.delete(p);
      this.count(n.perms[0]!.id, -1);
    }
    const parent = this.mineWithKids(parentOf(path));
    if (parent.children) {
      parent.children.delete(baseName(path));
      if (parent.children.size === 0) parent.children = null;
    }
    this.ops.push({ k: 'rm', path });
    return removed;
  }

  /** A watch event owed for `path` on commit; a non-exact one replaces an exact one, not the reverse. */
  queueFire(path: string, exact: boolean): void {
    const f = this.fires.get(path);
    if (!f) this.fires.set(path, { exact });
    else if (!exact) f.exact = false;
  }

  /** The events owed, in the order their nodes were first touched, with the perms each node had then. */
  *firesInOrder(): Generator<[string, Fire, Perms | undefined]> {
    for (const path of this.accessed.keys()) {
      const f = this.fires.get(path);
      if (f) yield [path, f, this.original.get(path)];
    }
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
}
