// Node names (docs/misc/xenstore.txt "Paths"; xenstored_core.c
// is_valid_nodename/canonicalize). A relative path is relative to the
// caller's home, /local/domain/<domid>. Paths starting with '@' name special
// watch events (@introduceDomain, @releaseDomain) and are never nodes.
import { XENSTORE_REL_PATH_MAX } from '../../../shared/abi/io/xs_wire.js';

const VALID = /^[A-Za-z0-9\-/_@]*$/;
const LOCAL = /^\/local\/domain\/(\d{1,5})\//;

export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** Absolute form of a client's path (no validation). */
export function canonicalize(domid: number, path: string): string {
  if (path.startsWith('/') || path.startsWith('@')) return path;
  return `${domainPath(domid)}/${path}`;
}

/**
 * Xen's rules: starts with '/', no trailing '/' (except "/"), no "//", only
 * [A-Za-z0-9-/_@], and at most XENSTORE_REL_PATH_MAX bytes past a
 * /local/domain/<id>/ prefix (which bounds absolute paths below
 * XENSTORE_ABS_PATH_MAX).
 */
export function isValidNodename(path: string): boolean {
  if (!path.startsWith('/')) return false;
  if (path.length > 1 && path.endsWith('/')) return false;
  if (path.includes('//')) return false;
  const m = LOCAL.exec(path);
  const localOff = m ? m[0].length : 0;
  if (path.length - localOff > XENSTORE_REL_PATH_MAX) return false;
  return VALID.test(path);
}

export function isSpecial(path: string): boolean {
  return path.startsWith('@');
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** How a watch on a relative path reports an absolute node name. */
export function relativeTo(domid: number, path: string): string {
  const home = domainPath(domid) + '/';
  return path.startsWith(home) ? path.slice(home.length) : path;
}
