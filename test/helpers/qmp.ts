// A QMP client for the tests: connects to a qemu-dm's QMP socket, negotiates
// capabilities, runs one command, closes.
import { connect } from 'node:net';

export async function qmp<T = unknown>(path: string, execute: string, args?: Record<string, unknown>): Promise<T> {
  const sock = connect(path);
  sock.setEncoding('utf8');
  const lines: string[] = [];
  let buf = '';
  let wake: (() => void) | null = null;
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
    wake?.();
  });
  const next = async (): Promise<Record<string, unknown>> => {
    while (!lines.length) await new Promise<void>((res, rej) => { wake = res; sock.once('error', rej); sock.once('close', () => rej(new Error('QMP closed'))); });
    return JSON.parse(lines.shift()!) as Record<string, unknown>;
  };
  try {
    await new Promise<void>((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
    await next(); // the greeting
    sock.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
    await next();
    sock.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}) })}\n`);
    const r = await next();
    if ('error' in r) throw new Error(`QMP ${execute}: ${JSON.stringify(r.error)}`);
    return r.return as T;
  } finally {
    sock.destroy();
  }
}
