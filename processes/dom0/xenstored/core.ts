// Request handling (xenstored_core.c): one dispatch table, as Xen's
// wire_funcs[XS_TYPE_COUNT], where privilege and transaction rules are checked
// once, before any handler runs. Handlers return the reply payload or an
// xsd error string; nothing a client sends can throw out of here.
//
// Every string argument is taken as bytes (latin1, one char per byte): a
// path with a byte outside Xen's [A-Za-z0-9-/_@] fails validation (EINVAL),
// and a watch token, which may be any bytes, comes back unchanged.
import {
  XS_CONTROL, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START,
  XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE, XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM,
  XS_SET_PERMS, XS_ERROR, XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET, XS_RESET_WATCHES,
  XS_DIRECTORY_PART, XS_TYPE_COUNT, XENSTORE_PAYLOAD_MAX, XS_PERM_READ, XS_PERM_WRITE,
  XS_PERM_OWNER, type XsdError,
} from '../../../shared/abi/io/xs_wire.js';
import type { Connection, Frame } from './connection.js';
import { type View, type XsNode, type Tree, type XsValue, EMPTY, valueFromBytes, valueToBytes } from './store.js';
import { Transaction, TransactionFull } from './transaction.js';
import type { WatchTable, Audience } from './watch.js';
import type { Domains } from './domain.js';
import { type Perms, intern, parsePerms, permFor, formatPerm } from './permissions.js';
import { canonicalize, isValidNodename, isSpecial, parentOf, domainPath, childPath } from './path.js';

export interface Req {
  conn: Connection;
  frame: Frame;
  /** The transaction named by tx_id, if any. */
  tx: Transaction | undefined;
  /** Runs after the reply is queued (e.g. a new watch's first event). */
  after?: () => void;
}

type Result = Buffer | XsdError;
type Handler = (core: XenstoreCore, req: Req) => Result;

const F_NOTID = 1; // ignores tx_id (WATCH and UNWATCH only, as Xen; the others answer ENOENT for an unknown one)
const F_PRIV = 2; // Domain-0 only

interface WireFunc { name: string; fn: Handler | undefined; flags: number }

export interface DomainEvents {
  introduce(domid: number, mfn: number, port: number): XsdError | undefined;
  release(domid: number): XsdError | undefined;
  setTarget(domid: number, target: number): XsdError | undefined;
  control(args: string[]): Buffer | XsdError;
  /** SET_PERMS on a special node took effect (for durability). */
  specialPerms(name: string, perms: Perms): void;
}

const OK = Buffer.from('OK\0');
const DOMID_SELF = 0x7ff0; // xen.h
const MAX_TX_PER_CONN = 256; // even Domain-0 cannot pile up without bound

export class XenstoreCore {
  readonly tree: Tree;
  readonly watches: WatchTable;
  readonly domains: Domains;
  readonly events: DomainEvents;
  private txTotal = 0;

  constructor(tree: Tree, watches: WatchTable, domains: Domains, events: DomainEvents) {
    this.tree = tree;
    this.watches = watches;
    this.domains = domains;
    this.events = events;
  }

  handle(conn: Connection, frame: Frame): void {
    const f = frame.type < XS_TYPE_COUNT ? WIRE_FUNCS[frame.type] : undefined;
    let result: Result;
    const req: Req = { conn, frame, tx: undefined };
    if (!f || !f.fn) {
      result = 'ENOSYS';
    } else if ((f.flags & F_PRIV) && !conn.privileged) {
      result = 'EACCES';
    } else if (!(f.flags & F_NOTID) && frame.txId !== 0 && !(req.tx = conn.transactions.get(frame.txId))) {
      result = 'ENOENT';
    } else {
      try {
        result = f.fn(this, req);
      } catch (e) {
        if (!(e instanceof TransactionFull)) {
          // A bug must not take the daemon down with it; the caller gets EIO.
          conn.reply(XS_ERROR, frame.reqId, frame.txId, Buffer.from('EIO\0'));
          throw e;
        }
        result = 'ENOSPC';
      }
    }
    if (typeof result === 'string') {
      conn.reply(XS_ERROR, frame.reqId, frame.txId, Buffer.from(result + '\0'));
    } else {
      conn.reply(frame.type, frame.reqId, frame.txId, result);
      req.after?.();
    }
  }

  // ---- helpers -----------------------------------------------------------

  view(req: Req): View {
    return req.tx ?? this.tree;
  }

  perm(conn: Connection, node: XsNode): number {
    return permFor(node.perms, conn.domid, conn.privileged, conn.target);
  }

  /** Validated absolute name of a client path, or EINVAL. */
  name(conn: Connection, path: string | undefined): string | XsdError {
    if (path === undefined) return 'EINVAL';
    const abs = canonicalize(conn.domid, path);
    return isValidNodename(abs) ? abs : 'EINVAL';
  }

  /** A node the caller has `perm` on; ENOENT or EACCES as Xen's get_node. */
  getNode(req: Req, name: string, perm: number): XsNode | XsdError {
    const v = this.view(req);
    const n = v.get(name);
    if (n) return (this.perm(req.conn, n) & perm) === perm ? n : 'EACCES';
    return this.errnoFromParents(req, name, perm);
  }

  /** For a missing node: EACCES when the nearest ancestor denies `perm`. */
  private errnoFromParents(req: Req, name: string, perm: number): XsdError {
    const v = this.view(req);
    let p = name;
    for (;;) {
      p = parentOf(p);
      const n = v.get(p);
      if (n) return (this.perm(req.conn, n) & perm) === perm ? 'ENOENT' : 'EACCES';
      if (p === '/') return 'ENOENT';
    }
  }

  private quotaExceeded(req: Req, owner: number, adding: number): boolean {
    if (req.conn.privileged) return false;
    const delta = req.tx?.ownerDelta.get(owner) ?? 0;
    return this.domains.nodesOwned(owner) + delta + adding > this.domains.quotas.nodes;
  }

  /** Creates a node and any missing ancestors (construct_node). */
  create(req: Req, name: string, value: XsValue): XsdError | undefined {
    const v = this.view(req);
    const missing: string[] = [];
    let p = name;
    let parent: XsNode | undefined;
    for (;;) {
      missing.push(p);
      p = parentOf(p);
      parent = v.get(p);
      if (parent) break;
    }
    if (!(this.perm(req.conn, parent) & XS_PERM_WRITE)) return 'EACCES';
    const conn = req.conn;
    // Children inherit the parent's permissions; an unprivileged creator owns them.
    let perms: Perms = parent.perms;
    if (!conn.privileged && perms[0]!.id !== conn.domid) {
      perms = intern([{ id: conn.domid, perm: perms[0]!.perm }, ...perms.slice(1)]);
    }
    if (this.quotaExceeded(req, perms[0]!.id, missing.length)) return 'ENOSPC';
    for (let i = missing.length - 1; i >= 0; i--) {
      v.create(missing[i]!, i === 0 ? value : EMPTY, perms);
    }
    return undefined;
  }

  /** A node changed: its watchers hear of it now, or when the transaction commits. */
  fire(req: Req, path: string, exact: boolean, who: Audience): void {
    if (req.tx) req.tx.queueFire(path, exact);
    else this.watches.fire(path, exact, who);
  }

  // ---- transactions --------------------------------------------------------

  startTransaction(conn: Connection): Result {
    if (!conn.privileged && conn.transactions.size >= this.domains.quotas.transactions) return 'ENOSPC';
    if (conn.transactions.size >= MAX_TX_PER_CONN) return 'ENOSPC';
    let id = conn.nextTxId;
    while (id === 0 || conn.transactions.has(id)) id = (id + 1) >>> 0;
    conn.nextTxId = (id + 1) >>> 0;
    conn.transactions.set(id, new Transaction(id, this.tree, conn.privileged ? Infinity : this.domains.quotas.transactionNodes));
    this.txTotal++;
    return Buffer.from(`${id}\0`);
  }

  endTransaction(conn: Connection, tx: Transaction, commit: boolean): Result {
    conn.transactions.delete(tx.id);
    this.txTotal--;
    if (!commit) return OK;
    if (tx.failed) return 'ENOMEM'; // went past its node quota (Xen's trans->fail)
    if (!tx.isCurrent()) return 'EAGAIN';
    if (!conn.privileged) {
      for (const [owner, d] of tx.ownerDelta) {
        if (d > 0 && this.domains.nodesOwned(owner) + d > this.domains.quotas.nodes) return 'ENOSPC';
      }
    }
    tx.applyTo(this.tree);
    // One event per node changed; who hears is decided on the tree as committed.
    if (tx.fires.size) for (const [path, f, before] of tx.firesInOrder()) this.watches.fire(path, f.exact, { before });
    return OK;
  }

  /** Forgets a connection's transactions and watches (close, RESET_WATCHES). */
  dropConnectionState(conn: Connection, transactions: boolean): void {
    if (transactions) {
      this.txTotal -= conn.transactions.size;
      conn.transactions.clear();
    }
    this.watches.removeConn(conn);
    conn.watchCount = 0;
  }

  get transactionCount(): number {
    return this.txTotal;
  }
}

// ---- argument decoding ----------------------------------------------------

/** The single nul-terminated argument (onearg), or undefined. */
function onearg(p: Buffer): string | undefined {
  if (p.length === 0 || p.indexOf(0) !== p.length - 1) return undefined;
  return p.toString('latin1', 0, p.length - 1);
}

/** All nul-terminated strings; undefined when the last is unterminated. */
function strings(p: Buffer): string[] | undefined {
  if (p.length === 0 || p[p.length - 1] !== 0) return undefined;
  return p.toString('latin1', 0, p.length - 1).split('\0');
}

function domidArg(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n < 0x7ff0 ? n : undefined;
}

// ---- handlers --------------------------------------------------------------

function doRead(core: XenstoreCore, req: Req): Result {
  const name = core.name(req.conn, onearg(req.frame.payload));
  if (!name.startsWith('/')) return name as XsdError;
  const n = core.getNode(req, name, XS_PERM_READ);
  return typeof n === 'string' ? n : valueToBytes(n.value);
}

function childrenBlob(n: XsNode): Buffer {
  if (!n.children) return Buffer.alloc(0);
  let s = '';
  for (const c of n.children) s += c + '\0';
  return Buffer.from(s, 'latin1');
}

function doDirectory(core: XenstoreCore, req: Req): Result {
  const name = core.name(req.conn, onearg(req.frame.payload));
  if (!name.startsWith('/')) return name as XsdError;
  const n = core.getNode(req, name, XS_PERM_READ);
  if (typeof n === 'string') return n;
  const blob = childrenBlob(n);
  return blob.length > XENSTORE_PAYLOAD_MAX ? 'E2BIG' : blob;
}

/** C's atoi of a decimal argument, as the unsigned int Xen keeps it in: 0 for no digits. */
function atoiU32(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)/.exec(s);
  if (!m) return 0;
  const v = Number(m[2]!.slice(0, 12)) >>> 0;
  return m[1] === '-' ? (-v >>> 0) : v;
}

/**
 * Xen's send_directory_part: the node's generation, NUL, then as many whole
 * child names (each NUL-terminated) from byte offset `off` of the list as
 * fit, and one more NUL when the list ends there. An offset at or past the
 * end gives the generation and the empty list ("gen\0\0"): libxenstore
 * restarts when the generation changes, but gives up on an error.
 */
function doDirectoryPart(core: XenstoreCore, req: Req): Result {
  const args = strings(req.frame.payload);
  if (!args || args.length !== 2) return 'EINVAL';
  const name = core.name(req.conn, args[0]);
  if (!name.startsWith('/')) return name as XsdError;
  const n = core.getNode(req, name, XS_PERM_READ);
  if (typeof n === 'string') return n;
  const blob = childrenBlob(n);
  const off = atoiU32(args[1]!);
  const gen = Buffer.from(`${n.gen}\0`);
  if (off >= blob.length) return Buffer.concat([gen, Buffer.from([0])]);
  // Whole names only, and room for the final empty string when complete.
  let end = off;
  while (end < blob.length) {
    const next = blob.indexOf(0, end) + 1;
    if (gen.length + (next - off) + 1 > XENSTORE_PAYLOAD_MAX) break;
    end = next;
  }
  const parts = [gen, blob.subarray(off, end)];
  if (end === blob.length) parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function doGetPerms(core: XenstoreCore, req: Req): Result {
  const name = core.name(req.conn, onearg(req.frame.payload));
  if (!name.startsWith('/')) return name as XsdError;
  const n = core.getNode(req, name, XS_PERM_READ);
  if (typeof n === 'string') return n;
  return Buffer.from(n.perms.map((e) => formatPerm(e) + '\0').join(''));
}

/** A subtree's nodes, children before parents (in child order): [path, perms, parent's perms]. */
function postOrder(v: View, root: string): Array<[string, Perms, Perms | undefined]> {
  const out: Array<[string, Perms, Perms | undefined]> = [];
  const rootNode = v.get(root)!;
  const stack: Array<{ path: string; node: XsNode; parent: Perms | undefined; kids: Iterator<string> | undefined }> = [
    { path: root, node: rootNode, parent: v.get(parentOf(root))?.perms, kids: rootNode.children?.values() },
  ];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const next = top.kids?.next();
    if (next && !next.done) {
      const path = childPath(top.path, next.value);
      const node = v.get(path);
      if (node) stack.push({ path, node, parent: top.node.perms, kids: node.children?.values() });
      continue;
    }
    out.push([top.path, top.node.perms, top.parent]);
    stack.pop();
  }
  return out;
}

function doWrite(core: XenstoreCore, req: Req): Result {
  const p = req.frame.payload;
  const nul = p.indexOf(0);
  if (nul < 0) return 'EINVAL';
  const name = core.name(req.conn, p.toString('latin1', 0, nul));
  if (!name.startsWith('/')) return name as XsdError;
  if (!req.conn.privileged && p.length - nul - 1 > core.domains.quotas.valueSize) return 'ENOSPC';
  const value = valueFromBytes(p, nul + 1);
  const v = core.view(req);
  const n = core.getNode(req, name, XS_PERM_WRITE);
  if (typeof n === 'string') {
    if (n !== 'ENOENT') return n;
    const err = core.create(req, name, value);
    if (err) return err;
  } else {
    v.setValue(name, value);
  }
  core.fire(req, name, false, { node: v.get(name)!.perms });
  return OK;
}

function doMkdir(core: XenstoreCore, req: Req): Result {
  const name = core.name(req.conn, onearg(req.frame.payload));
  if (!name.startsWith('/')) return name as XsdError;
  const n = core.getNode(req, name, XS_PERM_WRITE);
  if (typeof n !== 'string') return OK; // already there: fine
  if (n !== 'ENOENT') return n;
  const err = core.create(req, name, EMPTY);
  if (err) return err;
  core.fire(req, name, false, { node: core.view(req).get(name)!.perms });
  return OK;
}

function doRm(core: XenstoreCore, req: Req): Result {
  const name = core.name(req.conn, onearg(req.frame.payload));
  if (!name.startsWith('/')) return name as XsdError;
  const n = core.getNode(req, name, XS_PERM_WRITE);
  if (typeof n === 'string') {
    // Removing what is not there is fine if its parent is.
    if (n === 'ENOENT' && core.view(req).get(parentOf(name))) return OK;
    return n;
  }
  if (name === '/') return 'EINVAL';
  // Xen's delnode_sub: every node removed, deepest first, with its own perms
  // and its parent's; exact below the removed node, the node itself last.
  const v = core.view(req);
  const fires = req.tx || core.watches.size ? postOrder(v, name) : [];
  v.removeSubtree(name);
  for (const [path, node, parent] of fires) core.fire(req, path, path !== name, { node, parent });
  return OK;
}

function doSetPerms(core: XenstoreCore, req: Req): Result {
  const args = strings(req.frame.payload);
  if (!args || args.length < 2) return 'EINVAL';
  if (!req.conn.privileged && args.length - 1 > core.domains.quotas.perms) return 'ENOSPC';
  const perms = parsePerms(args.slice(1));
  if (!perms) return 'EINVAL';
  // @introduceDomain and @releaseDomain: who hears of those events (Xen's
  // set_perms_special); at once, inside a transaction or not.
  if (isSpecial(args[0]!)) {
    const cur = core.watches.specialPerms.get(args[0]!);
    if (!cur) return 'EINVAL';
    const need = XS_PERM_WRITE | XS_PERM_OWNER;
    if ((permFor(cur, req.conn.domid, req.conn.privileged, req.conn.target) & need) !== need) return 'EACCES';
    core.watches.specialPerms.set(args[0]!, perms);
    core.events.specialPerms(args[0]!, perms);
    return OK;
  }
  const name = core.name(req.conn, args[0]);
  if (!name.startsWith('/')) return name as XsdError;
  const n = core.getNode(req, name, XS_PERM_WRITE | XS_PERM_OWNER);
  if (typeof n === 'string') return n;
  // Unprivileged domains may not give their nodes away.
  if (!req.conn.privileged && perms[0]!.id !== n.perms[0]!.id) return 'EPERM';
  if (perms[0]!.id !== n.perms[0]!.id && core.domains.nodesOwned(perms[0]!.id) >= core.domains.quotas.nodes
      && !req.conn.privileged) return 'ENOSPC';
  const before = n.perms;
  core.view(req).setPerms(name, perms);
  core.fire(req, name, false, { before, node: perms });
  return OK;
}

function doWatch(core: XenstoreCore, req: Req): Result {
  const args = strings(req.frame.payload);
  if (!args || args.length !== 2) return 'EINVAL';
  const [path, token] = args as [string, string];
  let abs: string;
  let relative = false;
  if (isSpecial(path)) {
    if (path.length > 2048) return 'EINVAL';
    abs = path;
  } else {
    relative = !path.startsWith('/');
    const name = core.name(req.conn, path);
    if (!name.startsWith('/')) return name as XsdError;
    abs = name;
  }
  const conn = req.conn;
  if (core.watches.find(conn, abs, token)) return 'EEXIST';
  if (!conn.privileged && conn.watchCount >= core.domains.quotas.watches) return 'E2BIG';
  const w = { conn, path: abs, token, relative };
  core.watches.add(w);
  conn.watchCount++;
  // "We fire once up front: simplifies clients and restart."
  req.after = () => core.watches.fireOne(w);
  return OK;
}

function doUnwatch(core: XenstoreCore, req: Req): Result {
  const args = strings(req.frame.payload);
  if (!args || args.length !== 2) return 'EINVAL';
  const [path, token] = args as [string, string];
  const abs = isSpecial(path) ? path : canonicalize(req.conn.domid, path);
  const w = core.watches.find(req.conn, abs, token);
  if (!w) return 'ENOENT';
  core.watches.remove(w);
  req.conn.watchCount--;
  return OK;
}

function doResetWatches(core: XenstoreCore, req: Req): Result {
  core.dropConnectionState(req.conn, true);
  return OK;
}

/** Xen's do_transaction_start reads no argument: libxenstore sends "", others send nothing. */
function doTransactionStart(core: XenstoreCore, req: Req): Result {
  if (req.tx) return 'EBUSY';
  return core.startTransaction(req.conn);
}

/** The argument is checked first: "T" or "F", else EINVAL, even outside a transaction (then ENOENT). */
function doTransactionEnd(core: XenstoreCore, req: Req): Result {
  const arg = onearg(req.frame.payload);
  if (arg !== 'T' && arg !== 'F') return 'EINVAL';
  if (!req.tx) return 'ENOENT';
  return core.endTransaction(req.conn, req.tx, arg === 'T');
}

function doIntroduce(core: XenstoreCore, req: Req): Result {
  const args = strings(req.frame.payload);
  if (!args || args.length < 3) return 'EINVAL';
  const domid = domidArg(args[0]);
  if (domid === undefined || !/^\d+$/.test(args[1]!) || !/^\d+$/.test(args[2]!)) return 'EINVAL';
  return core.events.introduce(domid, Number(args[1]), Number(args[2])) ?? OK;
}

/** Domain-0 cannot be released or resumed: EINVAL, as Xen's onearg_domain. */
function doRelease(core: XenstoreCore, req: Req): Result {
  const domid = domidArg(onearg(req.frame.payload));
  if (domid === undefined || domid === 0) return 'EINVAL';
  return core.events.release(domid) ?? OK;
}

/** Xen reads the domid with atoi: no digits is domain 0. */
function doIsDomainIntroduced(core: XenstoreCore, req: Req): Result {
  const arg = onearg(req.frame.payload);
  if (arg === undefined) return 'EINVAL';
  const domid = atoiU32(arg);
  return Buffer.from(domid === 0 || domid === DOMID_SELF || core.domains.introduced.has(domid) ? 'T\0' : 'F\0');
}

function doGetDomainPath(_core: XenstoreCore, req: Req): Result {
  const arg = onearg(req.frame.payload);
  if (arg === undefined) return 'EINVAL';
  return Buffer.from(domainPath(atoiU32(arg)) + '\0');
}

function doResume(core: XenstoreCore, req: Req): Result {
  const domid = domidArg(onearg(req.frame.payload));
  if (domid === undefined || domid === 0) return 'EINVAL';
  const d = core.domains.introduced.get(domid);
  if (!d) return 'ENOENT';
  d.shutdown = false;
  return OK;
}

function doSetTarget(core: XenstoreCore, req: Req): Result {
  const args = strings(req.frame.payload);
  if (!args || args.length !== 2) return 'EINVAL';
  const domid = domidArg(args[0]);
  const target = domidArg(args[1]);
  if (domid === undefined || target === undefined) return 'EINVAL';
  return core.events.setTarget(domid, target) ?? OK;
}

function doControl(core: XenstoreCore, req: Req): Result {
  const args = strings(req.frame.payload);
  if (!args) return 'EINVAL';
  return core.events.control(args);
}

const WIRE_FUNCS: WireFunc[] = [];
WIRE_FUNCS[XS_CONTROL] = { name: 'CONTROL', fn: doControl, flags: F_PRIV };
WIRE_FUNCS[XS_DIRECTORY] = { name: 'DIRECTORY', fn: doDirectory, flags: 0 };
WIRE_FUNCS[XS_READ] = { name: 'READ', fn: doRead, flags: 0 };
WIRE_FUNCS[XS_GET_PERMS] = { name: 'GET_PERMS', fn: doGetPerms, flags: 0 };
WIRE_FUNCS[XS_WATCH] = { name: 'WATCH', fn: doWatch, flags: F_NOTID };
WIRE_FUNCS[XS_UNWATCH] = { name: 'UNWATCH', fn: doUnwatch, flags: F_NOTID };
WIRE_FUNCS[XS_TRANSACTION_START] = { name: 'TRANSACTION_START', fn: doTransactionStart, flags: 0 };
WIRE_FUNCS[XS_TRANSACTION_END] = { name: 'TRANSACTION_END', fn: doTransactionEnd, flags: 0 };
WIRE_FUNCS[XS_INTRODUCE] = { name: 'INTRODUCE', fn: doIntroduce, flags: F_PRIV };
WIRE_FUNCS[XS_RELEASE] = { name: 'RELEASE', fn: doRelease, flags: F_PRIV };
WIRE_FUNCS[XS_GET_DOMAIN_PATH] = { name: 'GET_DOMAIN_PATH', fn: doGetDomainPath, flags: 0 };
WIRE_FUNCS[XS_WRITE] = { name: 'WRITE', fn: doWrite, flags: 0 };
WIRE_FUNCS[XS_MKDIR] = { name: 'MKDIR', fn: doMkdir, flags: 0 };
WIRE_FUNCS[XS_RM] = { name: 'RM', fn: doRm, flags: 0 };
WIRE_FUNCS[XS_SET_PERMS] = { name: 'SET_PERMS', fn: doSetPerms, flags: 0 };
WIRE_FUNCS[XS_IS_DOMAIN_INTRODUCED] = { name: 'IS_DOMAIN_INTRODUCED', fn: doIsDomainIntroduced, flags: F_PRIV };
WIRE_FUNCS[XS_RESUME] = { name: 'RESUME', fn: doResume, flags: F_PRIV };
WIRE_FUNCS[XS_SET_TARGET] = { name: 'SET_TARGET', fn: doSetTarget, flags: F_PRIV };
WIRE_FUNCS[XS_RESET_WATCHES] = { name: 'RESET_WATCHES', fn: doResetWatches, flags: 0 };
WIRE_FUNCS[XS_DIRECTORY_PART] = { name: 'DIRECTORY_PART', fn: doDirectoryPart, flags: 0 };
