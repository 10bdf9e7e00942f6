// Reads what V8 writes about a process and says where its time and memory
// went. A CPU profile (node --cpu-prof, .cpuprofile): self time and
// inclusive time per function, and a split between our code, Node's own
// JavaScript, the garbage collector and native code (system calls show up as
// the native function that makes them, e.g. writeBuffer); idle time is left
// out of the percentages, which are shares of the time the process was busy.
// V8 samples by the clock, not by CPU use: a system call's share includes any
// time the thread waited in it to be scheduled again, and libuv's own reads
// and epoll waits between callbacks count as idle.
// A heap snapshot (--heapsnapshot-signal, .heapsnapshot): live bytes per
// kind of object, as DevTools' "Summary" view groups them.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface FunctionShare { fn: string; ms: number; pct: number }

export interface ProfileSummary {
  busyMs: number;
  idleMs: number;
  self: FunctionShare[];
  inclusive: FunctionShare[];
  categories: FunctionShare[];
}

/** The newest file with this extension in dir (node names them by time and pid). */
export function newestProfile(dir: string, ext = '.cpuprofile'): string | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(ext)).sort();
  } catch {
    return undefined;
  }
  return files.length ? join(dir, files[files.length - 1]!) : undefined;
}

function label(cf: CallFrame, root: string): string {
  const name = cf.functionName || '(anonymous)';
  if (!cf.url) return name;
  let file = cf.url.replace(/^file:\/\//, '');
  if (file.startsWith(root + '/')) file = file.slice(root.length + 1);
  return `${name} ${file}:${cf.lineNumber + 1}`;
}

function category(cf: CallFrame): string {
  if (cf.functionName === '(garbage collector)') return 'garbage collector';
  if (cf.functionName === '(program)') return 'native (V8/libuv, not JS)';
  if (!cf.url) return 'native (V8/libuv, not JS)';
  if (cf.url.startsWith('node:')) return 'Node.js library (node:*)';
  if (cf.url.includes('/node_modules/')) return 'npm dependencies';
  return 'xenemu code';
}

/** Which samples count: from the first inside `from`, up to the first inside `until` (function names). */
export interface ProfileWindow {
  /** e.g. 'onStreamRead': start-up ends where the first request is read. */
  from?: string;
  /** e.g. 'writeHeapSnapshot': what the profiling itself costs at the end. */
  until?: string;
}

export function summarizeProfile(path: string, root: string, top = 20, window: ProfileWindow = {}): ProfileSummary {
  const prof = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of prof.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const inside = (id: number | undefined, fn: string): boolean => {
    for (; id !== undefined; id = parent.get(id)) if (byId.get(id)!.callFrame.functionName === fn) return true;
    return false;
  };
  const find = (fn: string | undefined, start: number): number => {
    if (!fn) return -1;
    for (let i = start; i < prof.samples.length; i++) if (inside(prof.samples[i], fn)) return i;
    return -1;
  };
  const first = Math.max(0, find(window.from, 0));
  const end = find(window.until, first);
  const last = end < 0 ? prof.samples.length : end;

  // Time per node: each sample stands for the interval until the next one.
  const selfUs = new Map<number, number>();
  for (let i = first; i < last; i++) {
    const dt = prof.timeDeltas[i + 1] ?? 0;
    const id = prof.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }

  let idleUs = 0;
  let busyUs = 0;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const cats = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number): void => { m.set(k, (m.get(k) ?? 0) + v); };

  // Depth-first from the root, with the labels on the current stack, so a
  // recursive function's inclusive time is counted once per sample.
  const rootNode = prof.nodes[0]!;
  const stack: Array<{ node: ProfileNode; enter: boolean }> = [{ node: rootNode, enter: true }];
  const onPath = new Map<string, number>();
  while (stack.length) {
    const { node, enter } = stack.pop()!;
    const key = label(node.callFrame, root);
    if (!enter) {
      const c = onPath.get(key)! - 1;
      if (c === 0) onPath.delete(key); else onPath.set(key, c);
      continue;
    }
    onPath.set(key, (onPath.get(key) ?? 0) + 1);
    stack.push({ node, enter: false });
    const us = selfUs.get(node.id) ?? 0;
    if (us > 0) {
      if (node.callFrame.functionName === '(idle)') {
        idleUs += us;
      } else {
        busyUs += us;
        add(self, key, us);
        add(cats, category(node.callFrame), us);
        for (const k of onPath.keys()) if (k !== '(root)') add(incl, k, us);
      }
    }
    for (const c of node.children ?? []) stack.push({ node: byId.get(c)!, enter: true });
  }

  const rank = (m: Map<string, number>, n: number): FunctionShare[] =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
      .map(([fn, us]) => ({ fn, ms: us / 1000, pct: busyUs ? (100 * us) / busyUs : 0 }));
  return {
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    self: rank(self, top),
    inclusive: rank(incl, top),
    categories: rank(cats, 10),
  };
}

export function formatProfile(title: string, s: ProfileSummary): string {
  const rows = (xs: FunctionShare[]): string =>
    xs.map((x) => `  ${x.pct.toFixed(1).padStart(5)}%  ${x.ms.toFixed(0).padStart(6)} ms  ${x.fn}`).join('\n');
  return [
    `${title}: ${s.busyMs.toFixed(0)} ms busy, ${s.idleMs.toFixed(0)} ms idle`,
    'by kind:',
    rows(s.categories),
    'self time (top functions):',
    rows(s.self),
    'inclusive time (function and what it calls):',
    rows(s.inclusive),
  ].join('\n');
}

// ---- heap snapshots -----------------------------------------------------------

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapShare { kind: string; count: number; bytes: number }
export interface HeapSummary { liveBytes: number; objects: number; kinds: HeapShare[] }

/** Live bytes per (type, constructor): strings and code grouped whole. */
export function summarizeHeapSnapshot(path: string, top = 15): HeapSummary {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as HeapSnapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const nf = fields.length;
  const ti = fields.indexOf('type');
  const ni = fields.indexOf('name');
  const si = fields.indexOf('self_size');
  const kinds = new Map<string, HeapShare>();
  let live = 0;
  for (let i = 0; i < snap.nodes.length; i += nf) {
    const type = types[snap.nodes[i + ti]!]!;
    const named = type === 'object' || type === 'native' || type === 'closure' || type === 'hidden';
    const kind = named ? `${type} ${snap.strings[snap.nodes[i + ni]!]!.slice(0, 60)}` : type;
    const bytes = snap.nodes[i + si]!;
    live += bytes;
    const k = kinds.get(kind) ?? { kind, count: 0, bytes: 0 };
    k.count++;
    k.bytes += bytes;
    kinds.set(kind, k);
  }
  return {
    liveBytes: live,
    objects: snap.nodes.length / nf,
    kinds: [...kinds.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top),
  };
}

export function formatHeap(title: string, h: HeapSummary): string {
  return [
    `${title}: ${(h.liveBytes / 1e6).toFixed(1)} MB live in ${h.objects} heap objects (after a full GC)`,
    ...h.kinds.map((k) => `  ${(k.bytes / 1e6).toFixed(2).padStart(7)} MB  ${String(k.count).padStart(8)} x  ${k.kind}`),
  ].join('\n');
}
