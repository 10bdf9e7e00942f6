// The xenbus handshake, over any XsClient (a guest's ring connection or
// Domain-0's socket): states from xen/include/public/io/xenbus.h and the
// helpers Linux's xenbus_client.c / xenbus_probe.c give split drivers.
//
// A split device lives in two xenstore directories written by the toolstack
// (libxl__device_generic_add):
//
//   frontend  /local/domain/<domid>/device/<type>/<devid>
//               backend, backend-id, state, + the front end's keys
//   backend   /local/domain/<be>/backend/<type>/<domid>/<devid>
//               frontend, frontend-id, online, state, + the back end's keys
//
// and each side moves its own `state`, watching the other's:
//
//   frontend              backend
//   Initialising(1)       Initialising(1)      toolstack wrote both dirs
//                         InitWait(2)          features written
//   Initialised(3)                             ring-ref, event-channel written
//                         Connected(4)         ring mapped, port bound
//   Connected(4)                               device usable
//   ...                   Closing(5)           toolstack: online=0 (detach)
//   Closing(5)/Closed(6)                       in-flight I/O finished
//                         Closed(6)            unmapped, unbound; toolstack removes dirs
import type { XsClient } from '../xenstore/client.js';

/** enum xenbus_state (io/xenbus.h). */
export enum XenbusState {
  Unknown = 0,
  Initialising = 1,
  InitWait = 2,
  Initialised = 3,
  Connected = 4,
  Closing = 5,
  Closed = 6,
  Reconfiguring = 7,
  Reconfigured = 8,
}
// Xen's spellings, so grep finds them in both trees.
export const XenbusStateUnknown = XenbusState.Unknown;
export const XenbusStateInitialising = XenbusState.Initialising;
export const XenbusStateInitWait = XenbusState.InitWait;
export const XenbusStateInitialised = XenbusState.Initialised;
export const XenbusStateConnected = XenbusState.Connected;
export const XenbusStateClosing = XenbusState.Closing;
export const XenbusStateClosed = XenbusState.Closed;
export const XenbusStateReconfiguring = XenbusState.Reconfiguring;
export const XenbusStateReconfigured = XenbusState.Reconfigured;

/** xenbus_strstate */
export function xenbusStateName(s: number): string {
  return XenbusState[s] ?? `Unknown(${s})`;
}

/** /local/domain/<domid>/device/<type>/<devid> */
export function frontendPath(domid: number, type: string, devid: number | string): string {
  return `/local/domain/${domid}/device/${type}/${devid}`;
}

/** /local/domain/<backendDomid>/backend/<type>/<domid>/<devid> */
export function backendPath(backendDomid: number, type: string, domid: number, devid: number | string): string {
  return `/local/domain/${backendDomid}/backend/${type}/${domid}/${devid}`;
}

/** Reads <dir>/state; Unknown when missing or not a number (xenbus_read_driver_state). */
export async function xenbusReadState(xs: XsClient, dir: string): Promise<XenbusState> {
  const v = await xs.tryRead(`${dir}/state`).catch(() => null);
  const n = v === null ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 8 ? (n as XenbusState) : XenbusState.Unknown;
}

/**
 * xenbus_switch_state: writes <dir>/state in a transaction, and, as Linux
 * does, never creates it: a device whose directory the toolstack already
 * removed stays removed. False when there was no state node.
 */
export async function xenbusSwitchState(xs: XsClient, dir: string, state: XenbusState): Promise<boolean> {
  return xs.transaction(async (tx) => {
    const cur = await xs.tryRead(`${dir}/state`, tx);
    if (cur === null) return false;
    if (cur !== String(state)) await xs.write(`${dir}/state`, String(state), tx);
    return true;
  });
}

let tokenSeq = 0;
/** A watch token unique in this process (XsClient routes events by token). */
export function xenbusToken(what: string): string {
  tokenSeq = (tokenSeq + 1) >>> 0;
  return `xenbus:${what}:${process.pid}:${tokenSeq}`;
}

export interface XenbusWatch {
  readonly path: string;
  readonly token: string;
  close(): Promise<void>;
}

/**
 * register_xenbus_watch: `cb(path)` for every change under `path` (and once
 * when set, as xenstored fires a new watch). Callbacks for one watch never
 * overlap: the paths that change during a running callback are each given
 * to it once afterwards (a path that changes twice meanwhile, once). Keeping
 * only the last one lost devices: three vbds written together, and the
 * second one's events replaced by the third's while the first was set up.
 */
export async function xenbusWatch(xs: XsClient, path: string, cb: (changed: string) => void | Promise<void>,
                                  what = 'watch'): Promise<XenbusWatch> {
  const token = xenbusToken(what);
  let running: Promise<void> | null = null;
  const pending = new Set<string>();
  let closed = false;
  const fire = (changed: string): void => {
    if (closed) return;
    if (running) { pending.add(changed); return; }
    running = (async () => {
      let next: string | undefined = changed;
      while (next !== undefined && !closed) {
        try { await cb(next); } catch { /* the callback reports its own errors */ }
        next = pending.values().next().value;
        if (next !== undefined) pending.delete(next);
      }
    })().finally(() => { running = null; });
  };
  await xs.watch(path, token, (p) => fire(p));
  return {
    path, token,
    async close() {
      if (closed) return;
      closed = true;
      await xs.unwatch(path, token).catch(() => undefined);
    },
  };
}

/** xenbus_watch_otherend's callback: `cb(state)` whenever <dir>/state changes. */
export async function xenbusWatchState(xs: XsClient, dir: string, cb: (state: XenbusState) => void | Promise<void>):
    Promise<XenbusWatch> {
  return xenbusWatch(xs, `${dir}/state`, async () => cb(await xenbusReadState(xs, dir)), 'state');
}

export class XenbusTimeout extends Error {
  constructor(readonly dir: string, readonly last: XenbusState, ms: number) {
    super(`${dir}/state stayed ${xenbusStateName(last)} for ${ms} ms`);
    this.name = 'XenbusTimeout';
  }
}

/**
 * Waits, through a watch on <dir>/state, until `accept(state)` holds; resolves
 * with that state. `timeoutMs` is a safety net (rejects with XenbusTimeout);
 * an abort signal rejects with its reason.
 */
export async function xenbusWaitState(xs: XsClient, dir: string, accept: XenbusState[] | ((s: XenbusState) => boolean),
                                      opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<XenbusState> {
  const ok = typeof accept === 'function' ? accept : (s: XenbusState) => accept.includes(s);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let last = XenbusState.Unknown;
  let registering: Promise<XenbusWatch | undefined> = Promise.resolve(undefined);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<XenbusState>((resolve, reject) => {
      timer = setTimeout(() => reject(new XenbusTimeout(dir, last, timeoutMs)), timeoutMs);
      if (opts.signal) {
        if (opts.signal.aborted) { reject(opts.signal.reason); return; }
        onAbort = () => reject(opts.signal!.reason);
        opts.signal.addEventListener('abort', onAbort, { once: true });
      }
      registering = xenbusWatchState(xs, dir, (s) => { last = s; if (ok(s)) resolve(s); })
        .catch((e: Error) => { reject(e); return undefined; });
    });
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    // The watch may still be registering when the state was already there.
    await (await registering)?.close();
  }
}

/** xenbus_gather: reads <dir>/<key> for each key (null when missing). */
export async function xenbusGather<K extends string>(xs: XsClient, dir: string, keys: readonly K[], tx = 0):
    Promise<Record<K, string | null>> {
  const vals = await Promise.all(keys.map((k) => xs.tryRead(`${dir}/${k}`, tx).catch(() => null)));
  const out = {} as Record<K, string | null>;
  keys.forEach((k, i) => { out[k] = vals[i]!; });
  return out;
}

/** xenbus_scanf of one unsigned integer; null when missing or not a number. */
export async function xenbusReadInt(xs: XsClient, dir: string, key: string, tx = 0): Promise<number | null> {
  const v = await xs.tryRead(`${dir}/${key}`, tx).catch(() => null);
  if (v === null || !/^\s*\d+\s*$/.test(v)) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

/** xenbus_printf for several keys: writes <dir>/<key> = value, in one transaction unless `tx` is given. */
export async function xenbusWriteKeys(xs: XsClient, dir: string, kv: Record<string, string | number>, tx?: number):
    Promise<void> {
  const write = async (t: number) => {
    for (const [k, v] of Object.entries(kv)) await xs.write(`${dir}/${k}`, String(v), t);
  };
  if (tx !== undefined) await write(tx);
  else await xs.transaction(write);
}
