// Test hosts whose domains are test/fixtures/probe_domain.js, driven over
// the probe channel (shared/wire/probe.ts).
import { join } from 'node:path';
import { probe, type Probe } from '../../shared/wire/probe.js';
import { DIST, startHost, type HostOptions, type TestHost } from './host.js';

export { probe, type Probe };

export const PROBE = join(DIST, 'test', 'fixtures', 'probe_domain.js');

interface Tap { teardown(fn: () => unknown): void }

/** A test host whose Domain-0 is a probe, and Domain-0's probe (closed at teardown). */
export async function probeHost(t: Tap, memory: number, opts: HostOptions = {}): Promise<{ h: TestHost; d0: Probe }> {
  const h = await startHost(t, { memory, ...opts, dom0: PROBE });
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
