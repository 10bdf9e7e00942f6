// Direct, non-blocking I/O on a connected socket's descriptor, and a short
// spin that waits for a request (shared/native/sock.cc says why). libuv keeps owning the
// descriptor: a caller reads here only while the socket flows with nothing
// buffered in its stream, and writes here only while nothing is queued in it,
// so the byte order on the wire is the one the stream would have made.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

interface SockAddon {
  spinRecv(fds: Int32Array, buf: Buffer, budgetUs: number, yieldCpu: boolean, out: Int32Array, frame: Int32Array): number;
  send(fd: number, buf: Buffer): number;
}

const here = dirname(fileURLToPath(import.meta.url));
const addon = createRequire(import.meta.url)(
  join(here, '..', '..', 'shared', 'native', 'build', 'Release', 'xenemu_sock.node'),
) as SockAddon;

/** -EAGAIN as recv/send return it (Linux). */
export const EAGAIN = -11;

/** The descriptor under a connected net.Socket (Unix or TCP), or -1. */
export function socketFd(sock: Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/**
 * How a stream is cut into frames, for spinRecv: a header of `headerSize`
 * bytes holding the payload length (32-bit little-endian) at `lenOffset`,
 * payloads of at most `maxLen`, and how long to wait for the rest of a frame
 * once its first bytes came (`waitUs`, 0 for not at all).
 */
export function frameSpec(headerSize: number, lenOffset: number, maxLen: number, waitUs: number): Int32Array {
  return Int32Array.of(headerSize, lenOffset, maxLen, waitUs);
}

const NO_FRAMES = frameSpec(4, 0, 0, 0);

/**
 * Waits up to `budgetUs` without sleeping for one of `fds` to have data:
 * recv(MSG_DONTWAIT) on each in turn until one returns something, with
 * sched_yield between rounds when `yieldCpu` (a peer runnable on this CPU
 * runs at once). out[0] is its index; the result is bytes read (> 0), 0 at
 * its end of file, -errno, or EAGAIN when `budgetUs` ran out. With `frame`,
 * data that stops inside a frame is completed from the same descriptor
 * (within frame's waitUs): the data must begin on a frame boundary.
 */
export function spinRecv(fds: Int32Array, buf: Buffer, budgetUs: number, yieldCpu: boolean, out: Int32Array, frame = NO_FRAMES): number {
  return addon.spinRecv(fds, buf, budgetUs, yieldCpu, out, frame);
}

/** send(MSG_DONTWAIT | MSG_NOSIGNAL): bytes written, -errno. */
export function sendNow(fd: number, buf: Buffer): number {
  return addon.send(fd, buf);
}
