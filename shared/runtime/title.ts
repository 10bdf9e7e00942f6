// What each process of a host says it is in `ps` (docs/design.md §1):
//
//   xenemu-hypervisor host=H
//   xenemu-dom0 host=H
//   xenemu-domU <name> domid=<id> host=H      a guest (its name once it read it from xenstore)
//   xenemu-domU domid=<id> host=H             a guest before that
//   xenemu-domU spare host=H                  a process started ahead of need, no domain yet
//   xenemu-qemu-dm <name> domid=<id> host=H   an HVM guest's device model, started by Domain-0
//   xenemu-pcidev <model> bdf=<bdf> host=H     a host PCI device (processes/pcidev), started by the hypervisor
//   xenemu-xenstored socket=<path>            `xenemu xenstored`, not part of a host
//
// Three steps make it true from exec to exit on Linux:
//
// - The spawner passes the title as argv[0] (child_process.spawn's `argv0`),
//   so /proc/<pid>/cmdline starts with it from the first instant; the rest
//   of the command line follows it.
// - and node's `--title=<title>` (nodeTitleArgs), which Node applies while
//   it parses its options, before it loads any module: from then on the
//   command line is the title alone. Worker threads (a guest's vCPUs)
//   inherit it, which Node accepts; a Worker given `execArgv:
//   process.execArgv` explicitly would be refused (ERR_WORKER_INVALID_EXEC_ARGV:
//   --title is a per-process option), so pools leave execArgv unset.
// - The process sets process.title when it knows more (a guest's domid,
//   then its name). libuv writes the new title over the
//   memory of the original argv strings and zeroes the rest, so `ps` shows
//   only the title; but it cannot grow that memory: a title longer than the
//   original command line is cut. The original argv (the node binary, its
//   flags, the script's path, `--host H`, ...) is far longer than any title
//   but one with a very long domain name; setProcessTitle then shortens the
//   name (ending it with `~`) so that `domid=` and `host=` always stay whole,
//   which is what reapHost's scan of /proc reads (shared/host.ts).
import { readFileSync } from 'node:fs';

export const TITLE_PREFIX = 'xenemu-';

export const hypervisorTitle = (host: string): string => `${TITLE_PREFIX}hypervisor host=${host}`;
export const dom0Title = (host: string): string => `${TITLE_PREFIX}dom0 host=${host}`;
export const spareTitle = (host: string): string => `${TITLE_PREFIX}domU spare host=${host}`;
export const xenstoredTitle = (socket: string | undefined): string =>
  `${TITLE_PREFIX}xenstored${socket ? ` socket=${socket}` : ''}`;

/** What a spawner puts first among node's arguments (with `argv0: title` in the spawn options). */
export function nodeTitleArgs(title: string): string[] {
  return [`--title=${title}`];
}

/** A host PCI device process (processes/pcidev, docs/passthrough.md). */
export function pcidevTitle(host: string, model: string, bdf: string): string {
  return `${TITLE_PREFIX}pcidev ${model} bdf=${bdf} host=${host}`;
}

/** An HVM guest's device model (processes/qemu-dm), as Domain-0's toolstack starts it. */
export function qemuDmTitle(host: string, domid: number, name: string): string {
  return `${TITLE_PREFIX}qemu-dm ${name} domid=${domid} host=${host}`;
}

/** A guest's title; `name` once known (xenstore's /local/domain/<id>/name). */
export function domUTitle(host: string, domid: number, name?: string): string {
  return `${TITLE_PREFIX}domU ${name ? `${name} ` : ''}domid=${domid} host=${host}`;
}

/** The title of any domain process the hypervisor starts, before it says more. */
export function domainTitle(host: string, domid: number): string {
  return domid === 0 ? dom0Title(host) : domUTitle(host, domid);
}

// The word after `xenemu-` may have dashes (`qemu-dm`).
const TITLE_HOST_RE = /^xenemu-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)* (?:.* )?host=([A-Za-z0-9_-]{1,32})$/;

/** The host a title names (`... host=H` at its end), or null when argv0 is no xenemu title. */
export function titleHost(argv0: string): string | null {
  return TITLE_HOST_RE.exec(argv0)?.[1] ?? null;
}

/**
 * Bytes a title may take: the original argv's strings with their NULs, less
 * the title's own NUL. /proc/self/cmdline shows all of that memory as long
 * as its last byte is a NUL, which libuv keeps.
 */
function titleRoom(): number {
  try {
    return readFileSync('/proc/self/cmdline').length - 1;
  } catch {
    return Number.POSITIVE_INFINITY; // no /proc: nothing to measure, nothing to cut
  }
}

let room: number | undefined;

/**
 * Sets this process's title. `name`, when given, is the part that may be
 * shortened to fit (a guest's name): `make(name)` builds the title around it.
 */
export function setProcessTitle(title: string): void;
export function setProcessTitle(make: (name: string) => string, name: string): void;
export function setProcessTitle(t: string | ((name: string) => string), name = ''): void {
  // Measured once, before the first title changes what /proc shows.
  room ??= titleRoom();
  const make = typeof t === 'string' ? () => t : t;
  let n = name;
  let title = make(n);
  while (Buffer.byteLength(title) > room && n.length > 1) {
    n = `${[...n].slice(0, -2).join('')}~`;
    title = make(n);
  }
  process.title = title;
}
