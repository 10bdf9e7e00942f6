// A device model's device state as data, for a save and a restore into a
// fresh device model built from the same arguments (QEMU's vmstate, without
// a description per device: the devices of shared/hw keep their state in
// plain fields, and this walks them).
//
//   snapshot(device, skip)   every own field that is data: numbers, strings,
//                            booleans, null, typed arrays (copied), arrays,
//                            Maps of data, and objects reached from the
//                            device (recursively, each once), but not what
//                            `skip` holds (the machine's memory, interrupt
//                            lines, clock, address spaces, disk back ends:
//                            the new process has its own), nor functions,
//                            nor typed arrays over shared memory (guest RAM,
//                            the HVM segment), nor timer handles (fields
//                            named *Timer: a handle means nothing in another
//                            process; the saver fires what is due first)
//   restore(device, snap)    the same walk on the new device, writing each
//                            field back; an object the new device does not
//                            have (null there) is made again only when it
//                            was a plain object of data (no methods)
//
// What a field's value means beyond the device (a BAR's place in the
// address space, an interrupt line's level in the HVM segment) is the
// caller's to re-establish (processes/qemu-dm/dm_state.ts replays PCI
// configuration writes; the vCPU's context carries the lines).

/** A snapshot value: JSON-able, with byte buffers set apart (`bufs`) by index. */
export type Snap =
  | null | boolean | number | string
  | { $u: true }
  | { $n: string }
  | { $t: string; $b: number }
  | { $a: Snap[] }
  | { $m: Array<[Snap, Snap]> }
  | { $o: { [k: string]: Snap }; $plain: boolean };

const TYPED: Record<string, new (b: ArrayBuffer) => ArrayBufferView> = {
  Uint8Array, Int8Array, Uint16Array, Int16Array, Uint32Array, Int32Array, Float32Array, Float64Array, Uint8ClampedArray,
  BigInt64Array, BigUint64Array,
};

const isTimerField = (k: string) => /Timer$/.test(k);

export interface SnapshotContext {
  /** Objects never saved nor restored (shared infrastructure). */
  skip: ReadonlySet<object>;
  /** Field names of the root never walked (its caller saves them otherwise). */
  skipFields?: ReadonlySet<string>;
}

/** Byte buffers a snapshot refers to, by index. */
export class SnapBuffers {
  readonly list: Uint8Array[] = [];
  add(b: Uint8Array): number { this.list.push(b); return this.list.length - 1; }
}

export function snapshot(root: object, ctx: SnapshotContext, bufs: SnapBuffers): Snap {
  const seen = new Set<object>();
  const walk = (v: unknown, depth: number): Snap | undefined => {
    if (v === null) return null;
    if (v === undefined) return { $u: true };
    switch (typeof v) {
      case 'boolean': case 'string': return v;
      case 'number': return Number.isFinite(v) ? v : { $n: String(v) };
      case 'bigint': return { $n: `${v}n` };
      case 'function': case 'symbol': return undefined;
    }
    const o = v as object;
    if (ctx.skip.has(o) || seen.has(o) || depth > 12) return undefined;
    seen.add(o);
    if (ArrayBuffer.isView(o)) {
      if (o.buffer instanceof SharedArrayBuffer || o instanceof DataView) return undefined;
      const name = o.constructor.name;
      if (!TYPED[name]) return undefined;
      return { $t: name, $b: bufs.add(new Uint8Array(o.buffer, o.byteOffset, o.byteLength).slice()) };
    }
    if (o instanceof ArrayBuffer || o instanceof SharedArrayBuffer) return undefined;
    if (Array.isArray(o)) return { $a: o.map((x) => walk(x, depth + 1) ?? { $u: true }) };
    if (o instanceof Map) {
      const entries: Array<[Snap, Snap]> = [];
      for (const [k, x] of o) {
        const ks = walk(k, depth + 1);
        const xs = walk(x, depth + 1);
        if (ks !== undefined && xs !== undefined) entries.push([ks, xs]);
      }
      return { $m: entries };
    }
    if (o instanceof Set || o instanceof WeakMap || o instanceof WeakSet || o instanceof Promise) return undefined;
    const fields: { [k: string]: Snap } = {};
    let data = Object.getPrototypeOf(o) === Object.prototype;
    for (const [k, x] of Object.entries(o)) {
      if (typeof x === 'function') data = false;
      if (depth === 0 && ctx.skipFields?.has(k)) continue;
      if (isTimerField(k)) continue;
      const s = walk(x, depth + 1);
      if (s !== undefined) fields[k] = s;
    }
    // Only pure data is made again where the new device has nothing: an
    // object with methods (a registered region, a handler) is the new
    // process's to make.
    return { $o: fields, $plain: data };
  };
  return walk(root, 0) ?? null;
}

/** Makes a value from its snapshot where the live object has nothing to write into. */
function make(s: Snap, bufs: readonly Uint8Array[]): unknown {
  if (s === null || typeof s !== 'object') return s;
  if ('$u' in s) return undefined;
  if ('$n' in s) return s.$n.endsWith('n') ? BigInt(s.$n.slice(0, -1)) : Number(s.$n);
  if ('$t' in s) {
    const T = TYPED[s.$t];
    const b = bufs[s.$b];
    if (!T || !b) throw new Error(`snapshot: bad buffer ${s.$t} #${s.$b}`);
    return new T(b.slice().buffer);
  }
  if ('$a' in s) return s.$a.map((x) => make(x, bufs));
  if ('$m' in s) return new Map(s.$m.map(([k, x]) => [make(k, bufs), make(x, bufs)]));
  if (!s.$plain) return undefined;
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(s.$o)) o[k] = make(x, bufs);
  return o;
}

/** Whether `obj[k] = v` would store a value (not a getter without a setter, nor a read-only field). */
function assignable(obj: object, k: string): boolean {
  for (let o: object | null = obj; o; o = Object.getPrototypeOf(o) as object | null) {
    const d = Object.getOwnPropertyDescriptor(o, k);
    if (!d) continue;
    if (d.get || d.set) return d.set !== undefined;
    return d.writable !== false;
  }
  return Object.isExtensible(obj);
}

/** Writes snapshot `s` back into `live` (the same device in a new device model). */
export function restore(live: object, s: Snap, ctx: SnapshotContext, bufs: readonly Uint8Array[]): void {
  const into = (obj: Record<string, unknown>, snap: { [k: string]: Snap }, depth: number) => {
    for (const [k, x] of Object.entries(snap)) {
      if (depth === 0 && ctx.skipFields?.has(k)) continue;
      if (!assignable(obj, k)) continue;
      const cur = obj[k];
      if (typeof cur === 'function') continue;
      if (cur !== null && typeof cur === 'object') {
        if (ctx.skip.has(cur)) continue;
        if (x !== null && typeof x === 'object' && '$o' in x && !Array.isArray(cur) && !(cur instanceof Map) && !ArrayBuffer.isView(cur)) {
          into(cur as Record<string, unknown>, x.$o, depth + 1);
          continue;
        }
        if (x !== null && typeof x === 'object' && '$t' in x && ArrayBuffer.isView(cur) && !(cur instanceof DataView)) {
          const b = bufs[x.$b];
          if (b && cur.constructor.name === x.$t && b.byteLength === cur.byteLength) {
            new Uint8Array(cur.buffer, cur.byteOffset, cur.byteLength).set(b);
            continue;
          }
        }
        if (x !== null && typeof x === 'object' && '$a' in x && Array.isArray(cur) &&
            cur.length === x.$a.length && cur.some((e) => e !== null && typeof e === 'object')) {
          // An array of objects the device made at build (registers, channels): into each.
          x.$a.forEach((e, i) => {
            const c = cur[i];
            if (c !== null && typeof c === 'object' && e !== null && typeof e === 'object' && '$o' in e) into(c as Record<string, unknown>, e.$o, depth + 1);
            else if (c === null || typeof c !== 'object') cur[i] = make(e, bufs);
          });
          continue;
        }
      }
      const v = make(x, bufs);
      if (v === undefined && x !== null && typeof x === 'object' && '$o' in x) continue; // a class instance it cannot make
      obj[k] = v;
    }
  };
  if (s !== null && typeof s === 'object' && '$o' in s) into(live as Record<string, unknown>, s.$o, 0);
}
