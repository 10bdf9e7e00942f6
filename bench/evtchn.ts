// Event channels between two guests (docs/benchmarks.md):
//
//   round trip   A notify ──► hypervisor ──upcall──► B handler: notify ──► hypervisor ──upcall──► A handler
//   stream       A notify x N (fire and forget) ──► hypervisor ──upcalls (coalesced)──► B
//
// A and B are bench/evtchn_domain.js instances created by a Domain-0 of the
// same program (no xenstore, no console: only the event path). They bind an
// interdomain channel the Xen way (B allocates unbound for A, A binds).
// The measurement runs inside A; the bench only gives orders.
//
// Baseline: a raw ZeroMQ round trip between two Node processes with the
// hypervisor channel's socket type (PAIR over ipc) and codec
// (bench/zmq_rt.ts), sampled alternately with the evtchn round trips. An
// evtchn round trip crosses the hypervisor twice, so 2x is the floor.
import * as zmq from 'zeromq';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { newestProfile, summarizeProfile, formatProfile } from './profile.js';
import { encode, decode } from '../shared/wire/codec.js';
import { median, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost } from './xen_host.js';
import { controlEndpoint } from './evtchn_domain.js';

/** The targets. */
const TARGET_RT_RATIO = 2.5;
const TARGET_STREAM_PER_S = 50_000;

interface Timing { sampleMs: number; samples: number; streamCount: number; streams: number }
const FULL: Timing = { sampleMs: 500, samples: 5, streamCount: 50_000, streams: 3 };
const QUICK: Timing = { sampleMs: 150, samples: 1, streamCount: 20_000, streams: 1 };

interface Orders {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call<T = any>(op: string, args?: Record<string, number>): Promise<T>;
  close(): void;
}

function orders(rundir: string, domid: number): Orders {
  const sock = new zmq.Request({ linger: 0, receiveTimeout: 60_000, sendTimeout: 10_000 });
  sock.connect(controlEndpoint(rundir, domid));
  return {
    async call(op, args = {}) {
      await sock.send(encode({ op, ...args }));
      const [reply] = await sock.receive();
      const r = decode<{ result: { error?: string } }>(reply as Buffer).result;
      if (r && typeof r === 'object' && 'error' in r) throw new Error(`evtchn_domain d${domid} ${op}: ${r.error}`);
      return r as never;
    },
    close() { sock.close(); },
  };
}

interface Rt { roundTrips: number; ms: number }
const usPerRt = (r: Rt) => (r.ms * 1000) / r.roundTrips;

export const evtchn: Suite = {
  name: 'evtchn',
  description: 'event-channel round trips and one-way notifications between two guests',
  baseline: 'a raw ZeroMQ round trip between two Node processes (PAIR over ipc, the hypervisor\'s codec)',
  async run(ctx: SuiteContext) {
    const tm = ctx.opts.quick ? QUICK : FULL;
    const program = join(ctx.dist, 'bench', 'evtchn_domain.js');
    // With --profile: where the hypervisor's time goes on the event path.
    const profDir = ctx.opts.profile ? join(ctx.opts.profileDir, 'evtchn-hypervisor') : undefined;
    if (profDir) mkdirSync(profDir, { recursive: true });
    const h = await startBenchHost(ctx, { memoryMB: 1024, dom0: program,
                                          nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] });
    const all: Orders[] = [];
    try {
      const d0 = orders(h.rundir, 0);
      all.push(d0);
      const created: Array<{ ret: number; domid: number }> = [await d0.call('create'), await d0.call('create')];
      for (const c of created) if (c.ret < 0) throw new Error(`createdomain: ${c.ret}`);
      const [a, b] = created.map((c) => orders(h.rundir, c.domid));
      all.push(a!, b!);
      const bPort = await b!.call<number>('alloc', { remoteDom: created[0]!.domid });
      const aPort = await a!.call<number>('bind', { remoteDom: created[1]!.domid, remotePort: bPort });
      await b!.call('pong', { port: bPort });

      const endpoint = `ipc://${join(h.root, 'zmq_rt.ipc')}`;
      const rtProg = join(ctx.dist, 'bench', 'zmq_rt.js');
      const server = ctx.scope.spawn('zmq_rt server', process.execPath, [rtProg, 'server', endpoint], { lifeline: true });
      await server.waitForOutput('listening', 10_000);
      const raw = async (ms: number): Promise<Rt> =>
        JSON.parse(await ctx.scope.run('zmq_rt client', process.execPath, [rtProg, 'client', endpoint, String(ms)],
                                       { lifeline: true })) as Rt;

      // Warm-up of both paths (JIT, socket buffers).
      await a!.call('ping', { port: aPort, ms: 200 });
      await raw(200);
      const evUs: number[] = [];
      const rawUs: number[] = [];
      for (let i = 0; i < tm.samples; i++) {
        rawUs.push(usPerRt(await raw(tm.sampleMs)));
        evUs.push(usPerRt(await a!.call<Rt>('ping', { port: aPort, ms: tm.sampleMs })));
        ctx.log(`evtchn: round trip ${evUs[i]!.toFixed(1)} us, raw ZeroMQ ${rawUs[i]!.toFixed(1)} us`);
      }

      await b!.call('reset');
      const rates: number[] = [];
      let sent = 0;
      for (let i = 0; i < tm.streams; i++) {
        const s = await a!.call<{ count: number; ms: number }>('stream', { port: aPort, count: tm.streamCount });
        rates.push(s.count / (s.ms / 1000));
        sent += s.count;
        ctx.log(`evtchn: stream of ${s.count}: ${rates[i]!.toFixed(0)} notifications/s`);
      }
      const bc = await b!.call<{ events: number; upcalls: number }>('counters');

      const rtUs = median(evUs);
      const metrics: Metric[] = [
        { name: 'raw ZeroMQ round trip (baseline)', value: median(rawUs), unit: 'us', samples: rawUs },
        { name: 'evtchn round trip', value: rtUs, unit: 'us', baseline: median(rawUs),
          target: { cmp: '<=', value: TARGET_RT_RATIO, ratio: true }, samples: evUs,
          details: { roundTripsPerS: Math.round(1e6 / rtUs) } },
        { name: 'evtchn notifications one way', value: median(rates), unit: 'ops/s',
          target: { cmp: '>=', value: TARGET_STREAM_PER_S }, samples: rates,
          // Xen coalesces: a notification to a port still pending is one event.
          details: { sent, handlerRuns: bc.events, upcalls: bc.upcalls } },
      ];
      return metrics;
    } finally {
      for (const o of all) o.close();
      const left = await h.stop();
      if (left.pids.length || left.segments.length) {
        ctx.note(`evtchn: LEAK after host down: pids ${left.pids.join(' ')}; segments ${left.segments.join(' ')}`);
      }
      const prof = profDir ? newestProfile(profDir) : undefined;
      if (prof) {
        ctx.note(`${formatProfile('hypervisor CPU profile (evtchn suite)', summarizeProfile(prof, ctx.root, 20))}\n  (full profile: ${prof})`);
      }
    }
  },
};
