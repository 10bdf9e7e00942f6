// The node tree, and the two ways of changing it: directly (the main tree)
// or inside a transaction (see transaction.ts). Operations in core.ts are
// written once against the View interface and work the same in both.
//
// A node's `gen` changes whenever the node or its list of children changes;
// transactions use it to detect conflicts and DIRECTORY_PART reports it as
// the generation count clients compare between calls.
//
// A transaction keeps its own copy of each node it touched (transaction.ts),
// a small object holding the same value string and perm list, which never
// change in place. Only the set of children would be expensive to copy, so
// the copy shares it and marks it shared (shareChildren); the tree replaces a
// shared set with a copy of its own before it adds or removes a child. A
// directory is copied only by the first change to it after some transaction
// took a copy of it.
import type { Perms } from './permissions.js';
import { permsKey } from './permissions.js';
import { parentOf, baseName, childPath } from './path.js';

/**
 * A node's value: bytes held as a latin1 string, one char per byte. V8 keeps
 * such strings flat and compact (a 16-byte header), where a Buffer per node
 * costs a 96-byte object plus a share of an 8 KiB pool block it pins.
 */
export type XsValue = string;

export const EMPTY: XsValue = '';

export function valueFromBytes(b: Buffer, start = 0, end = b.length): XsValue {
  return start >= end ? EMPTY : b.toString('latin1', start, end);
}

export function valueToBytes(v: XsValue): Buffer {
  return Buffer.from(v, 'latin1');
}

export interface XsNode {
  value: XsValue;
  perms: Perms;
  /** Child names in creation order; null for a leaf (most nodes). */
  children: Set<string> | null;
  gen: number;
}

/** What durability writes for one change (persist.ts). */
export type Effect =
  | { t: 'n'; p: string; v: XsValue; perms: string }
  | { t: 'd'; p: string };

/** Children sets that a transaction's copy of a node holds too: never changed in place. */
const sharedChildren = new WeakSet<Set<string>>();

/** Marks a node's children set as held by a copy; returns it. */
export function shareChildren(kids: Set<string> | null): Set<string> | null {
  if (kids) sharedChildren.add(kids);
  return kids;
}

/** The node's children set, made its own (not shared) first, for a change. */
function ownChildren(n: XsNode): Set<string> {
  if (!n.children) return (n.children = new Set());
  if (sharedChildren.has(n.children)) n.children = new Set(n.children);
  return n.children;
}

export interface View {
  get(path: string): XsNode | undefined;
  /** Adds a node under an existing parent. */
  create(path: string, value: XsValue, perms: Perms): void;
  setValue(path: string, value: XsValue): void;
  setPerms(path: string, perms: Perms): void;
  /** Removes a node and everything below it; returns what was removed. */
  removeSubtree(path: string): Array<[string, XsNode]>;
}

/** Called when a node owned by `owner` appears (+1) or goes (-1). */
export type OwnerCounter = (owner: number, delta: number) => void;

export class Tree implements View {
  readonly nodes = new Map<string, XsNode>();
  private genCounter = 0;
  /** Changes since the last flush, in order. */
  effects: Effect[] = [];
  recordEffects = true;
  onOwner: OwnerCounter = () => undefined;

  constructor(rootPerms: Perms) {
    this.nodes.set('/', { value: EMPTY, perms: rootPerms, children: null, gen: this.nextGen() });
  }

  nextGen(): number {
    return ++this.genCounter;
  }

  get(path: string): XsNode | undefined {
    return this.nodes.get(path);
  }

  get size(): number {
    return this.nodes.size;
  }

  create(path: string, value: XsValue, perms: Perms): void {
    const parent = this.nodes.get(parentOf(path));
    if (!parent) throw new Error(`xenstored: create ${path} without parent`);
    ownChildren(parent).add(baseName(path));
    parent.gen = this.nextGen();
    this.nodes.set(path, { value, perms, children: null, gen: this.nextGen() });
    this.onOwner(perms[0]!.id, 1);
    if (this.recordEffects) this.effects.push({ t: 'n', p: path, v: value, perms: permsKey(perms) });
  }

  setValue(path: string, value: XsValue): void {
    const n = this.nodes.get(path)!;
    n.value = value;
    n.gen = this.nextGen();
    if (this.recordEffects) this.effects.push({ t: 'n', p: path, v: value, perms: permsKey(n.perms) });
  }

  setPerms(path: string, perms: Perms): void {
    const n = this.nodes.get(path)!;
    if (n.perms[0]!.id !== perms[0]!.id) {
      this.onOwner(n.perms[0]!.id, -1);
      this.onOwner(perms[0]!.id, 1);
    }
    n.perms = perms;
    n.gen = this.nextGen();
    if (this.recordEffects) this.effects.push({ t: 'n', p: path, v: n.value, perms: permsKey(perms) });
  }

  removeSubtree(path: string): Array<[string, XsNode]> {
    const removed: Array<[string, XsNode]> = [];
    const stack = [path];
    while (stack.length) {
      const p = stack.pop()!;
      const n = this.nodes.get(p);
      if (!n) continue;
      removed.push([p, n]);
      if (n.children) for (const c of n.children) stack.push(childPath(p, c));
      this.nodes.delete(p);
      this.onOwner(n.perms[0]!.id, -1);
    }
    const parent = this.nodes.get(parentOf(path));
    if (parent?.children) {
      const kids = ownChildren(parent);
      kids.delete(baseName(path));
      if (kids.size === 0) parent.children = null;
      parent.gen = this.nextGen();
    }
    if (this.recordEffects) this.effects.push({ t: 'd', p: path });
    return removed;
  }

  takeEffects(): Effect[] {
    const e = this.effects;
    this.effects = [];
    return e;
  }
}
