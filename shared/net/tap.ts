// A Linux TAP device (/dev/net/tun, IFF_TAP | IFF_NO_PI: each read and write
// is one Ethernet frame, no packet-information header), through the
// xenemu_net addon (shared/native/tap.cc). Reads are a libuv poll on the
// descriptor in Node's own event loop: no thread of the pool is held.
//
//   const tap = openTap('xenbr0');
//   tap.onFrame((frame) => ...);
//   tap.write(frame);
//   tap.close();
//
// The device is not persistent: it goes with its descriptor (close, or the
// process's exit), so a process killed by SIGKILL leaves no TAP behind.
import { netAddon } from './addon.js';

export interface TapDevice {
  /** The interface's name (the kernel's, when `name` had a %d). */
  readonly name: string;
  readonly fd: number;
  readonly stats: { rx: number; tx: number; txErrors: number };
  /** Starts reading: `fn` gets each frame the kernel sends out of the interface. */
  onFrame(fn: (frame: Buffer) => void): void;
  /** Called once if reading fails (the device went away): errno, negative. */
  onError(fn: (errno: number) => void): void;
  /** One frame into the kernel (as if received on the interface); false when it was not taken. */
  write(frame: Uint8Array): boolean;
  close(): void;
}

export class TapError extends Error {
  constructor(message: string, readonly code: string) { super(message); }
}

/** Opens (creates) TAP `name` in this thread's network namespace. */
export function openTap(name: string): TapDevice {
  let fd: number;
  let ifname: string;
  try {
    [fd, ifname] = netAddon().tapOpen(name);
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'EIO';
    const why = code === 'ENOENT' || code === 'ENODEV'
      ? 'no /dev/net/tun (the tun driver is not there: modprobe tun, or give the container the device)'
      : code === 'EPERM' || code === 'EACCES'
        ? 'not permitted: creating a TAP needs CAP_NET_ADMIN (run as root)'
        : code === 'EBUSY' ? 'the interface exists and is in use' : (e as Error).message;
    throw new TapError(`tap ${name}: ${why}`, code);
  }
  let poll: unknown = null;
  let closed = false;
  let onErr: ((errno: number) => void) | null = null;
  const stats = { rx: 0, tx: 0, txErrors: 0 };
  return {
    name: ifname, fd, stats,
    onFrame(fn) {
      if (closed || poll) throw new Error(`tap ${ifname}: already reading or closed`);
      poll = netAddon().pollStart(fd, (frame: Buffer | null, errno?: number) => {
        if (frame) { stats.rx++; fn(frame); return; }
        poll = null;
        onErr?.(errno ?? -5);
      });
    },
    onError(fn) { onErr = fn; },
    write(frame) {
      if (closed) return false;
      const n = netAddon().write(fd, frame);
      if (n === frame.length) { stats.tx++; return true; }
      stats.txErrors++;
      return false;
    },
    close() {
      if (closed) return;
      closed = true;
      if (poll) { netAddon().pollStop(poll); poll = null; }
      netAddon().close(fd);
    },
  };
}
