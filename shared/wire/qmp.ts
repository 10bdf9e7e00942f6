// QMP, QEMU's management protocol (docs/interop/qmp-spec in QEMU), on the
// Unix socket libxl talks to qemu-xen through, <rundir>/qmp-libxl-<domid>:
// where it is, and the client side the toolstack uses (libxl_qmp.c's part):
// read the greeting, negotiate capabilities, run one command, close.
import { connect } from 'node:net';

export function qmpSocketPath(rundir: string, domid: number): string {
  return `${rundir}/qmp-libxl-${domid}`;
}

/** An error QMP answered ({error: {class, desc}}), or a connection that failed. */
export class QmpError extends Error {
  constructor(readonly errorClass: string, readonly desc: string) { super(desc); this.name = 'QmpError'; }
}

/** Runs `execute` with `args` on the QMP socket at `path`; its `return`. */
export async function qmpCommand<T = unknown>(path: string, execute: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
  const sock = connect(path);
  sock.setEncoding('utf8');
  const lines: string[] = [];
  let buf = '';
  let failed: Error | null = null;
  let wake: (() => void) | null = null;
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
    wake?.();
  });
  const fail = (e: Error) => { failed ??= e; wake?.(); };
  sock.on('error', (e: NodeJS.ErrnoException) => fail(new QmpError('ConnectionFailed', `cannot talk to the device model at ${path}: ${e.code ?? e.message}`)));
  sock.on('close', () => fail(new QmpError('ConnectionClosed', `the device model closed its QMP socket ${path}`)));
  const timer = setTimeout(() => fail(new QmpError('Timeout', `the device model did not answer ${execute} within ${timeoutMs / 1000} s`)), timeoutMs);
  const next = async (): Promise<Record<string, unknown>> => {
    while (!lines.length) {
      if (failed) throw failed;
      await new Promise<void>((res) => { wake = res; });
      wake = null;
    }
    return JSON.parse(lines.shift()!) as Record<string, unknown>;
  };
  const answer = async (): Promise<unknown> => {
    const r = await next();
    if ('error' in r) {
      const e = r.error as { class?: string; desc?: string };
      throw new QmpError(e.class ?? 'GenericError', e.desc ?? 'error');
    }
    return r.return;
  };
  try {
    await next(); // the greeting
    sock.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
    await answer();
    sock.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}) })}\n`);
    return await answer() as T;
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}
