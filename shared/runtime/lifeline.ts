// Parent-death watch without timers (docs/design.md §1: a lifeline,
// not a timer). The parent spawns a child with an extra pipe on fd 3 that it
// never writes to; the kernel closes it when the parent dies, however it dies
// (SIGKILL included), and the child sees end-of-file at once.
import { Socket } from 'node:net';
import type { StdioOptions } from 'node:child_process';

export const LIFELINE_FD = 3;

/** stdio for a child that should die with us: [stdin, stdout, stderr, lifeline]. */
export function lifelineStdio(out: 'inherit' | 'ignore' | 'pipe' | number = 'inherit',
                              err: 'inherit' | 'ignore' | 'pipe' | number = out): StdioOptions {
  return ['ignore', out, err, 'pipe'];
}

let watchers: Array<() => void> | undefined;

/**
 * In the child: call onDeath when the parent's end of the lifeline closes.
 * Several parts of a process may watch (a spare waiting for its domain, then
 * the domain itself): the latest watcher runs first, so the one that knows
 * most about what to clean up does it. Returns false when this process was
 * started without a lifeline (run by hand).
 */
export function watchParent(onDeath: () => void): boolean {
  if (process.env.XENEMU_LIFELINE !== '1') return false;
  if (!watchers) {
    let sock: Socket;
    try {
      sock = new Socket({ fd: LIFELINE_FD, readable: true, writable: false });
    } catch {
      return false;
    }
    const list: Array<() => void> = (watchers = []);
    let fired = false;
    const fire = () => {
      if (fired) return;
      fired = true;
      for (const w of [...list].reverse()) w();
    };
    sock.on('end', fire);
    sock.on('close', fire);
    sock.on('error', fire);
    sock.on('data', () => { /* nothing is ever sent */ });
    sock.unref(); // the lifeline alone must not keep the process alive
  }
  watchers.push(onDeath);
  return true;
}

/** Environment for a child spawned with lifelineStdio(). */
export function lifelineEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, XENEMU_LIFELINE: '1' };
}
