// Guests for tests: a host whose Domain-0 is test/fixtures/toolstack_dom0.js
// (xenstored + the PV builder + a console backend), and a small driver for
// a guest's console: boot, type a command, get its output up to the next
// prompt.
import { join } from 'node:path';
import { startHost, DIST, type TestHost } from './host.js';
import { probe, type Probe } from './probe.js';

export const TOOLSTACK_DOM0 = join(DIST, 'test', 'fixtures', 'toolstack_dom0.js');

interface Tap { teardown(fn: () => unknown): void }

export interface GuestHost {
  host: TestHost;
  d0: Probe;
  /** buildPvDomain in Dom0; resolves with the PvDomain (plus t0). */
  build(cfg: Record<string, unknown>): Promise<{ domid: number; [k: string]: unknown }>;
  guest(domid: number, name: string): Guest;
}

export interface Guest {
  domid: number;
  name: string;
  /** Waits for `re` in the console output after the mark; moves the mark past it. */
  expect(re: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Types a command line and returns its output (between the echo and the next prompt). */
  run(line: string, timeoutMs?: number): Promise<string>;
  type(text: string): Promise<void>;
  prompt: string;
}

export async function startGuestHost(t: Tap, opts: { memory?: number; pcpus?: number } = {}): Promise<GuestHost> {
  const host = await startHost(t, { memory: opts.memory ?? 1024, pcpus: opts.pcpus ?? 2, dom0: TOOLSTACK_DOM0 });
  const d0 = probe(host.rundir, 0, 60_000);
  t.teardown(() => d0.close());
  const call = async <T>(op: string, args: Record<string, unknown> = {}): Promise<T> => {
    const r = await d0.call(op, args);
    if (r && typeof r === 'object' && 'error' in r) throw new Error(`${op}: ${(r as { error: string }).error}`);
    return r as T;
  };
  return {
    host, d0,
    build: (cfg) => call('build', { cfg }),
    guest(domid, name) {
      let mark = 0;
      const prompt = `root@${name}:~# `;
      const g: Guest = {
        domid, name, prompt,
        async expect(re, timeoutMs = 10_000) {
          const src = typeof re === 'string' ? re.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : re.source;
          const r = await call<{ ok: boolean; text: string; end: number }>('expect', { domid, re: src, from: mark, timeoutMs });
          if (!r.ok) throw new Error(`d${domid}: timed out waiting for ${String(re)}; console after mark:\n${r.text}`);
          const text = r.text.slice(0, r.end - mark);
          mark = r.end;
          return text;
        },
        async type(text) { await call('type', { domid, text }); },
        async run(line, timeoutMs = 10_000) {
          await g.type(`${line}\r`);
          const out = await g.expect(prompt, timeoutMs);
          // Drop the echoed line and the prompt; normalise CR LF.
          const body = out.slice(0, out.length - prompt.length).replace(/\r\n/g, '\n');
          const nl = body.indexOf('\n');
          return nl < 0 ? '' : body.slice(nl + 1);
        },
      };
      return g;
    },
  };
}
