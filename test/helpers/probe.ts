// Talks to test/fixtures/probe_domain.js instances of a test host.
import * as zmq from 'zeromq';
import { join } from 'node:path';
import { encode, decode } from '../../shared/wire/codec.js';
import { DIST, startHost, type TestHost } from './host.js';

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

interface Tap { teardown(fn: () => unknown): void }

/** A test host whose Domain-0 is a probe, and Domain-0's probe (closed at teardown). */
export async function probeHost(t: Tap, memory: number): Promise<{ h: TestHost; d0: Probe }> {
  const h = await startHost(t, { memory, dom0: PROBE });
  const d0 = probe(h.rundir, 0);
  t.teardown(() => d0.close());
  return { h, d0 };
}

/**
 * Domain-0's probe creates a probe DomU (`args` go to createProbe: memory_kb,
 * max_memkb); returns its domid, createProbe's reply and its probe (closed at
 * teardown).
 */
export async function probeDomU(t: Tap, h: TestHost, d0: Probe, args: Record<string, unknown> = {}):
  Promise<{ domid: number; ret: number; p: Probe }> {
  const { domid, ret } = await d0.call('createProbe', args);
  const p = probe(h.rundir, domid);
  t.teardown(() => p.close());
  return { domid, ret, p };
}
