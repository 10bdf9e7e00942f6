// The probe channel: how a test or a benchmark drives a fixture domain
// (test/fixtures/*_domain.js, spawned by path as a domain's program). One
// ZeroMQ REQ/REP pair per domain in the host's run directory,
// ipc://<rundir>/probe-d<domid>.ipc: `{op, ...args}` in, `{result}` out; a
// failing op answers `{result: {error}}` instead of ending the fixture.
import * as zmq from 'zeromq';
import { join } from 'node:path';
import { encode, decode } from './codec.js';

const endpoint = (rundir: string, domid: number) => `ipc://${join(rundir, `probe-d${domid}.ipc`)}`;

// ---------------------------------------------------------------- the driver's end

export interface Probe {
  // A fixture's reply is whatever its op returns: callers read the fields they asked for.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call<T = any>(op: string, args?: Record<string, unknown>): Promise<T>;
  close(): void;
}

/** Connects to the probe of `domid` (connecting before it binds is fine with ZeroMQ); calls are serialised. */
export function probe(rundir: string, domid: number, timeoutMs = 10_000): Probe {
  const sock = new zmq.Request({ linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs });
  sock.connect(endpoint(rundir, domid));
  let busy: Promise<unknown> = Promise.resolve();
  return {
    call(op, args = {}) {
      const p = busy.then(async () => {
        await sock.send(encode({ op, ...args }));
        const [reply] = await sock.receive();
        return decode<{ result: unknown }>(reply as Buffer).result;
      });
      busy = p.catch(() => undefined);
      return p as Promise<never>;
    },
    close() { sock.close(); },
  };
}

// ---------------------------------------------------------------- the fixture's end

export type ProbeReq = Record<string, any> & { op: string }; // eslint-disable-line @typescript-eslint/no-explicit-any
export type ProbeOps = Record<string, (r: ProbeReq) => Promise<unknown> | unknown>;

/** Binds the probe socket of domain `domid` in `rundir`. */
export async function bindProbe(rundir: string, domid: number): Promise<zmq.Reply> {
  const sock = new zmq.Reply({ linger: 0 });
  await sock.bind(endpoint(rundir, domid));
  return sock;
}

/** Answers requests with `ops` until the socket closes. */
export async function serveProbe(sock: zmq.Reply, ops: ProbeOps): Promise<void> {
  for await (const [msg] of sock) {
    const r = decode<ProbeReq>(msg as Buffer);
    let out: unknown;
    try { out = await (ops[r.op] ?? (() => ({ error: `no op ${r.op}` })))(r); } catch (e) { out = { error: String(e) }; }
    await sock.send(encode({ result: out ?? null }));
  }
}
