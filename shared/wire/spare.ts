// The hypervisor -> spare domain process channel (processes/hypervisor/spare.ts).
//
// A spare is a guest process started ahead of need: Node is up and the guest
// kernel's modules are loaded, but it is no domain yet. When a domain is
// unpaused for the first time, the hypervisor hands it a spare instead of
// starting a process, by writing one line on the spare's stdin:
//
//   {"type":"assign","domid":7,"hypercall":"ipc://<rundir>/dom7.hypercall"}\n
//
// and closing it. The spare then sets XENEMU_DOMID and XENEMU_HYPERCALL and
// starts as any domain process does (startDomain, shared/xen/domain.ts).
// A stdin that closes without an assignment means: not needed, exit.
import { watchParent } from '../runtime/lifeline.js';

export interface SpareAssign {
  type: 'assign';
  domid: number;
  hypercall: string;
}

/** argv flag that marks a spare (instead of `--domid <id>`). */
export const SPARE_FLAG = '--spare';

export function encodeAssign(a: Omit<SpareAssign, 'type'>): string {
  return `${JSON.stringify({ type: 'assign', ...a })}\n`;
}

/** Validates one line from the hypervisor; null if it is not an assignment. */
export function decodeAssign(line: string): SpareAssign | null {
  let m: unknown;
  try { m = JSON.parse(line); } catch { return null; }
  const a = m as Partial<SpareAssign> | null;
  if (!a || a.type !== 'assign' || !Number.isInteger(a.domid) || typeof a.hypercall !== 'string' ||
      !a.hypercall.startsWith('ipc://')) return null;
  return a as SpareAssign;
}

/**
 * In the spare: waits for the assignment on stdin and puts it into the
 * environment startDomain() reads. Resolves false when stdin closes without one.
 */
export function awaitAssignment(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  return new Promise((resolve) => {
    let buf = '';
    let settled = false;
    // A hypervisor that dies while we wait closes the lifeline even if
    // something else still holds the other end of stdin.
    watchParent(() => { if (!settled) process.exit(0); });
    const done = (ok: boolean) => {
      settled = true;
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.destroy(); // it must not keep the domain alive
      resolve(ok);
    };
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const a = decodeAssign(buf.slice(0, nl));
      if (a) { env.XENEMU_DOMID = String(a.domid); env.XENEMU_HYPERCALL = a.hypercall; }
      done(a !== null);
    };
    const onEnd = () => done(false);
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
  });
}
