// Talks to test/fixtures/probe_domain.js instances of a test host.
import * as zmq from 'zeromq';
import { join } from 'node:path';
import { encode, decode } from '../../shared/wire/codec.js';
import { DIST } from './host.js';

export const PROBE = join(DIST, 'test', 'fixtures', 'probe_domain.js');

export interface Probe {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call<T = any>(op: string, args?: Record<string, unknown>): Promise<T>;
  close(): void;
}

/** Connects to the probe of `domid` (connecting before it binds is fine with ZeroMQ). */
export function probe(rundir: string, domid: number, timeoutMs = 10_000): Probe {
  const sock = new zmq.Request({ linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs });
  sock.connect(`ipc://${join(rundir, `probe-d${domid}.ipc`)}`);
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
