// xenstore-read/-write/-rm/-ls/-list/-exists as xenstore-utils
// (tools/xenstore/xenstore_client.c) print them. Paths go to xenstored as
// typed: a relative path is relative to the guest's home
// (/local/domain/<id>), and every access is checked by xenstored against
// the node's permissions.
import { XsError } from '../../../shared/xenstore/client.js';
import type { Command, CommandIo, KernelServices } from '../services.js';

/** strerror() of the xs_wire error names, for err(3)-style messages. */
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory', EACCES: 'Permission denied', EINVAL: 'Invalid argument',
  EEXIST: 'File exists', EISDIR: 'Is a directory', ENOSPC: 'No space left on device', EIO: 'Input/output error',
  ENOTEMPTY: 'Directory not empty', ENOSYS: 'Function not implemented', EROFS: 'Read-only file system',
  EBUSY: 'Device or resource busy', EAGAIN: 'Resource temporarily unavailable', EISCONN: 'Transport endpoint is already connected',
  E2BIG: 'Argument list too long', EPERM: 'Operation not permitted', EQUOTA: 'Disk quota exceeded',
};

function strerror(e: unknown): string {
  return e instanceof XsError ? STRERROR[e.code] ?? e.code : (e as Error).message;
}

function usage(io: CommandIo, name: string, args: string): number {
  io.out(`Usage: ${name} [-h] ${args}\n`);
  return 2;
}

async function ls(io: CommandIo, k: KernelServices, path: string, depth: number, perms: boolean): Promise<void> {
  const names = await k.xs.directory(path);
  for (const n of names) {
    if (io.signal.aborted) return;
    const child = path === '/' ? `/${n}` : `${path}/${n}`;
    let line = `${' '.repeat(depth)}${n}`;
    try {
      line += ` = "${(await k.xs.readString(child)).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    } catch {
      line += ':'; // unreadable (EACCES): xenstore-ls prints the name alone
    }
    if (perms) {
      try { line += `  (${(await k.xs.getPerms(child)).join(',')})`; } catch { /* none visible */ }
    }
    io.out(`${line}\n`);
    try { await ls(io, k, child, depth + 1, perms); } catch { /* a child we may not list */ }
  }
}

export const xenstoreCommands: Command[] = [
  {
    name: 'xenstore-read', help: 'xenstore-read PATH...: print values',
    async run(argv, io, k) {
      const paths = argv.slice(1);
      if (paths.length === 0) return usage(io, argv[0]!, 'key [...]');
      for (const p of paths) {
        try { io.out(`${await k.xs.readString(p)}\n`); } catch { io.out(`xenstore-read: couldn't read path ${p}\n`); return 1; }
      }
      return 0;
    },
  },
  {
    name: 'xenstore-write', help: 'xenstore-write PATH VALUE...: write values',
    async run(argv, io, k) {
      const a = argv.slice(1);
      if (a.length === 0 || a.length % 2 !== 0) return usage(io, argv[0]!, 'key value [...]');
      for (let i = 0; i < a.length; i += 2) {
        try { await k.xs.write(a[i]!, a[i + 1]!); } catch { io.out(`xenstore-write: could not write path ${a[i]}\n`); return 1; }
      }
      return 0;
    },
  },
  {
    name: 'xenstore-rm', help: 'xenstore-rm PATH...: remove nodes',
    async run(argv, io, k) {
      const paths = argv.slice(1);
      if (paths.length === 0) return usage(io, argv[0]!, 'key [...]');
      for (const p of paths) {
        try { await k.xs.rm(p); } catch { io.out(`xenstore-rm: could not remove path ${p}\n`); return 1; }
      }
      return 0;
    },
  },
  {
    name: 'xenstore-list', help: 'xenstore-list PATH: child names',
    async run(argv, io, k) {
      const paths = argv.slice(1);
      if (paths.length === 0) return usage(io, argv[0]!, 'key [...]');
      for (const p of paths) {
        try { for (const n of await k.xs.directory(p)) io.out(`${n}\n`); } catch {
          io.out(`xenstore-list: could not list path ${p}\n`);
          return 1;
        }
      }
      return 0;
    },
  },
  {
    name: 'xenstore-exists', help: 'xenstore-exists PATH: exit status 0 if it exists',
    async run(argv, io, k) {
      const paths = argv.slice(1);
      if (paths.length === 0) return usage(io, argv[0]!, 'key [...]');
      for (const p of paths) { try { await k.xs.read(p); } catch { return 1; } }
      return 0;
    },
  },
  {
    name: 'xenstore-ls', help: 'xenstore-ls [-p] [PATH]: the tree below PATH (default: home)',
    async run(argv, io, k) {
      const args = argv.slice(1);
      const perms = args.includes('-p');
      const rest = args.filter((a) => a !== '-p');
      const path = rest[0] ?? `/local/domain/${k.domid}`;
      try { await k.xs.directory(path); } catch (e) {
        io.out(`xenstore-ls: xs_directory (${path}): ${strerror(e)}\n`);
        return 1;
      }
      await ls(io, k, path, 0, perms);
      return 0;
    },
  },
];
