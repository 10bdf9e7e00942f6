// POSIX shared memory segments as SharedArrayBuffers (docs/design.md §3).
//
// The native addon (shared/native/shm.cc) does shm_open + ftruncate + mmap and
// hands the mapping to V8 as a SharedArrayBuffer whose deleter unmaps it. It is
// context-aware, so worker threads (vCPUs) load it too.
//
// Segment names: one prefix per virtual host, `/xenemu.<host>.<what>`, so that
// `ls /dev/shm | grep xenemu` shows everything a host owns and cleanup can
// sweep a dead host's segments by prefix.
import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

interface ShmAddon {
  open(name: string, size: number, create: boolean, offset?: number): SharedArrayBuffer;
  unlink(name: string): boolean;
  mapFile?(fd: number, offset: number, length: number): SharedArrayBuffer;
  release?(sab: SharedArrayBuffer, offset: number, length: number, keepData?: boolean): boolean;
  punchHole?(fd: number, offset: number, length: number): boolean;
  mapInto(buf: ArrayBuffer, offset: number, name: string, length: number, segOffset?: number): true;
  futexWait(sab: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): FutexWaitResult;
  futexWake(sab: SharedArrayBuffer, byteOffset: number, count: number): number;
}

export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out';

const here = dirname(fileURLToPath(import.meta.url));
// dist/shared/shm.js -> <root>/shared/native/build/Release
const root = join(here, '..', '..');
const addon = createRequire(import.meta.url)(
  join(root, 'shared', 'native', 'build', 'Release', 'xenemu_shm.node'),
) as ShmAddon;

// Segments are mapped in whole pages of Xen's size (shared/abi/xen.ts),
// which callers sizing a mapping may take from here too.

/** Creates a new segment (fails with EEXIST if it is there already). */
export function shmCreate(name: string, size: number): SharedArrayBuffer {
  return addon.open(name, size, true);
}

/** Maps an existing segment, or a page-aligned window of it from `offset`. */
export function shmOpen(name: string, size: number, offset = 0): SharedArrayBuffer {
  return addon.open(name, size, false, offset);
}

/** Removes a segment's name; mappings stay valid until dropped. False if absent. */
export function shmUnlink(name: string): boolean {
  return addon.unlink(name);
}

/**
 * Gives the backing pages of [offset, offset+length) back to the host
 * (madvise MADV_REMOVE); the range reads as zeros afterwards. Page-aligned.
 * False when the range is invalid or the addon predates this call.
 */
export function shmRelease(sab: SharedArrayBuffer, offset: number, length: number): boolean {
  return addon.release ? addon.release(sab, offset, length) : false;
}

/**
 * fallocate(fd, PUNCH_HOLE|KEEP_SIZE, offset, length): frees a file range,
 * which then reads as zeros. False when the file system refuses or the addon
 * predates this call (callers then write zeros).
 */
export function punchHole(fd: number, offset: number, length: number): boolean {
  return addon.punchHole ? addon.punchHole(fd, offset, length) : false;
}

/**
 * Maps [offset, offset+length) of an open regular file (MAP_SHARED; offset a
 * page multiple): a store into it is in the file's page cache at once, as
 * after write(2), with no system call. Accessing it past the file's end is
 * SIGBUS: grow the file first (ftruncate), and drop the mapping before
 * shrinking it. Undefined when the addon predates this call.
 */
export function mapFile(fd: number, offset: number, length: number): SharedArrayBuffer | undefined {
  return addon.mapFile ? addon.mapFile(fd, offset, length) : undefined;
}

/**
 * Takes a mapFile mapping's pages out of this process's memory
 * (madvise MADV_DONTNEED; they no longer count in its RSS): the data stays
 * in the file, and a later access reads it back. The mapping itself goes
 * when the SharedArrayBuffer is collected.
 */
export function dropFilePages(sab: SharedArrayBuffer): boolean {
  return addon.release ? addon.release(sab, 0, sab.byteLength, true) : false;
}

/**
 * Maps [segOffset, segOffset+length) of segment `name` over [offset,
 * offset+length) of `buf`'s memory (MAP_FIXED|MAP_SHARED): from then on those
 * bytes of the buffer are the segment's, for this process and every other
 * one mapping it. This is how an HVM guest's RAM inside v86's
 * WebAssembly.Memory is the domain's segment (docs/hvm.md). Page-aligned.
 */
export function shmMapInto(buf: ArrayBuffer, offset: number, name: string, length: number, segOffset = 0): void {
  addon.mapInto(buf, offset, name, length, segOffset);
}

/**
 * FUTEX_WAIT on the 32-bit word at `byteOffset` of a shared segment: sleeps
 * while the word holds `expected`, until a futexWake from any process that
 * maps the segment, or `timeoutMs` (negative: no limit). Blocks the calling
 * thread: for worker threads, never for an event loop's thread.
 */
export function futexWait(sab: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): FutexWaitResult {
  return addon.futexWait(sab, byteOffset, expected, timeoutMs);
}

/** FUTEX_WAKE: wakes up to `count` waiters on the word, in any process. Returns how many. */
export function futexWake(sab: SharedArrayBuffer, byteOffset: number, count = 1): number {
  return addon.futexWake(sab, byteOffset, count);
}

/** The segment name prefix of one virtual host. */
export function shmPrefix(host: string): string {
  return `/xenemu.${host}.`;
}

/** Every segment under a prefix, as names usable with shmUnlink. */
export function shmList(prefix: string): string[] {
  const bare = prefix.replace(/^\//, '');
  try {
    return readdirSync('/dev/shm').filter((f) => f.startsWith(bare)).map((f) => `/${f}`);
  } catch {
    return [];
  }
}

/** Unlinks every segment under a prefix: what cleanup does after any death. */
export function shmSweep(prefix: string): number {
  let n = 0;
  for (const name of shmList(prefix)) if (shmUnlink(name)) n++;
  return n;
}
