// The shape of xend's method table, typed against the method map XendApi
// (shared/toolstack/xend_api.ts), and the checks that turn XML-RPC's
// untyped parameters into a method's typed ones at the edge.
//
// An entry has two halves: `params` checks what arrived and returns the
// method's parameters as XendApi declares them (a domain resolved to its
// DomainInfo), `run` does the work with them and returns the declared
// result. A table typed MethodTable<XendMethod> fails to compile if a
// method has no entry, an entry checks a parameter into the wrong type, or
// a handler returns something else than its method's result.
import { XmlRpcFault, XMLRPC_ERROR_GENERIC, type XmlRpcValue } from '../../../shared/xmlrpc.js';
import { domainConfigFromStruct, XlCfgError, type DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import type { XendApi, XendMethod, XendResult } from '../../../shared/toolstack/xend_api.js';
import type { DomainInfo, Toolstack } from './toolstack.js';

/** What a handler gets: the method's parameters, its domain (when it names one) first. */
export type Args<M extends XendMethod> =
  XendApi[M] extends { dom: true } ? [dom: DomainInfo, ...XendApi[M]['params']] : XendApi[M]['params'];

/** Looks up the domain a parameter names (ERROR_INVALID_DOMAIN when there is none). */
export type ResolveDomain = (v: XmlRpcValue | undefined) => Promise<DomainInfo>;

export interface MethodEntry<M extends XendMethod> {
  /** Checks the parameters as they arrived and types them; throws a fault naming the bad one. */
  params(p: XmlRpcValue[], dom: ResolveDomain): Args<M> | Promise<Args<M>>;
  run(ts: Toolstack, args: Args<M>): Promise<XendResult<M>>;
}

export type MethodTable<K extends XendMethod> = { [M in K]: MethodEntry<M> };

export const generic = (msg: string): XmlRpcFault => new XmlRpcFault(XMLRPC_ERROR_GENERIC, msg);

function show(v: XmlRpcValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v instanceof Uint8Array) return `${v.byteLength} bytes of base64`;
  return JSON.stringify(v);
}

const invalid = (what: string, v: XmlRpcValue | undefined) => generic(`invalid ${what}: ${show(v)}`);

/** An integer >= min (XML-RPC int, or a decimal string as xm sends on its command line). */
export function int(v: XmlRpcValue | undefined, what: string, min: number): number {
  const n = typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) throw invalid(what, v);
  return n;
}

/** An integer >= 0, or -1 (or nothing) for "leave it unchanged". */
export function intOrKeep(v: XmlRpcValue | undefined, what: string): number {
  if (v === undefined || v === -1 || v === '-1') return -1;
  return int(v, what, 0);
}

/** An XML-RPC boolean (1/0 from peers without one); `dflt` when absent. */
export function bool(v: XmlRpcValue | undefined, what: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (v === true || v === 1) return true;
  if (v === false || v === 0) return false;
  throw invalid(what, v);
}

export function str(v: XmlRpcValue | undefined, what: string): string {
  if (typeof v !== 'string') throw invalid(what, v);
  return v;
}

/** A device named by its number or its name (vdev, MAC). */
export function devName(v: XmlRpcValue | undefined, what: string): string {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  if (typeof v === 'string' && v.length > 0) return v;
  throw invalid(what, v);
}

/** One of `values`; `dflt` when absent. */
export function oneOf<T extends string>(v: XmlRpcValue | undefined, what: string, values: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  const found = values.find((x) => x === v);
  if (found === undefined) throw invalid(what, v);
  return found;
}

/** A domain configuration, checked by xl.cfg's own rules. */
export function config(v: XmlRpcValue | undefined): DomainConfig {
  try {
    return domainConfigFromStruct(v);
  } catch (e) {
    if (e instanceof XlCfgError) throw generic(e.message);
    throw e;
  }
}
