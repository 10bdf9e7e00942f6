// The credit scheduler (processes/hypervisor/sched_credit.ts) measured on
// fixture domains (test/fixtures/vcpu_domain.js: a VcpuPool that burns CPU
// inside the slices the hypervisor grants), Dom0 being the probe fixture:
//
//   share   pcpus=1, two busy domains with weights 1:1, 1:2, 1:4: the first
//           one's share of running time vs its ideal (1/2, 1/3, 1/5), in
//           percentage points; then one busy domain alone with cap 10, 25,
//           50: its share of the pCPU vs the cap
//   fair    pcpus=2, 64 busy single-vCPU domains: Jain's index of their
//           running times over a window, and the hypervisor's own CPU use
//           as a share of the machine (2 pCPUs)
//   wake    pcpus=2, 8 busy domains and one idle one that wakes for 2 ms of
//           work again and again: time from its wake to its slice (runnable
//           time as the hypervisor accounted it), p50 and p99
import { join } from 'node:path';
import { __HYPERVISOR_domctl } from '../shared/abi/xen.js';
import {
  XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_createdomain, XEN_DOMCTL_pausedomain,
  XEN_DOMCTL_scheduler_op, XEN_DOMCTL_unpausedomain, XEN_SCHEDULER_CREDIT,
} from '../shared/abi/domctl.js';
import { probe, type Probe } from '../shared/wire/probe.js';
import { procCpuTimes } from './harness.js';
import { median, percentile, type Metric, type Suite, type SuiteContext } from './suite.js';
import { startBenchHost, type BenchHost } from './xen_host.js';

interface Dom { domid: number; p: Probe }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)); // measurement windows

class Host {
  readonly d0: Probe;
  readonly probes: Probe[] = [];
  constructor(readonly h: BenchHost) { this.d0 = probe(h.rundir, 0, 60_000); }
  async domctl(cmd: number, arg: object): Promise<{ ret: number; data: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return this.d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd, arg });
  }
  async domain(fixture: string): Promise<Dom> {
    const c = await this.domctl(XEN_DOMCTL_createdomain, { max_vcpus: 1, memory_kb: 8192, xenemu: { program: fixture } });
    if (c.ret < 0) throw new Error(`createdomain: ${c.ret}`);
    const domid = c.data.domain as number;
    if ((await this.domctl(XEN_DOMCTL_unpausedomain, { domain: domid })).ret < 0) throw new Error('unpause');
    const p = probe(this.h.rundir, domid, 60_000);
    this.probes.push(p);
    await p.call('start', { vcpus: 1 });
    return { domid, p };
  }
  credit(domid: number, credit: { weight?: number; cap?: number }) {
    return this.domctl(XEN_DOMCTL_scheduler_op, { domain: domid, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_DOMCTL_SCHEDOP_putinfo, u: { credit } });
  }
  async close(): Promise<void> {
    for (const p of this.probes) p.close();
    this.d0.close();
    await this.h.stop();
  }
}

async function running(d: Dom): Promise<number> {
  return (await d.p.call('stats')).vcpus[0].running_ns as number;
}

/** Running ns of each domain over `ms`, and the window's length in ns. */
async function window(doms: Dom[], ms: number): Promise<{ ran: number[]; wall: number }> {
  const r0 = await Promise.all(doms.map(running));
  const t0 = process.hrtime.bigint();
  await sleep(ms);
  const r1 = await Promise.all(doms.map(running));
  return { ran: r1.map((r, i) => r - r0[i]!), wall: Number(process.hrtime.bigint() - t0) };
}

function jain(xs: number[]): number {
  const s = xs.reduce((a, b) => a + b, 0);
  const q = xs.reduce((a, b) => a + b * b, 0);
  return q === 0 ? 0 : (s * s) / (xs.length * q);
}

export const scheduler: Suite = {
  name: 'scheduler',
  description: 'credit scheduler: weight and cap accuracy, fairness of 64 guests, wake-up latency',
  async run(ctx: SuiteContext): Promise<Metric[]> {
    const fixture = join(ctx.dist, 'test', 'fixtures', 'vcpu_domain.js');
    const dom0 = join(ctx.dist, 'test', 'fixtures', 'probe_domain.js');
    const quick = ctx.opts.quick;
    const metrics: Metric[] = [];
    const pp = (x: number) => Math.round(x * 1000) / 10;

    // ---- share accuracy, pcpus=1 -------------------------------------------------
    {
      const host = new Host(await startBenchHost(ctx, { memoryMB: 512, pcpus: 1, dom0 }));
      try {
        const a = await host.domain(fixture);
        const b = await host.domain(fixture);
        await a.p.call('burnStart', { seconds: 600 });
        await b.p.call('burnStart', { seconds: 600 });
        for (const k of [1, 2, 4]) {
          await host.credit(a.domid, { weight: 256 });
          await host.credit(b.domid, { weight: 256 * k });
          await sleep(quick ? 200 : 600);
          const { ran } = await window([a, b], quick ? 800 : 2500);
          const share = ran[0]! / (ran[0]! + ran[1]!);
          const ideal = 1 / (1 + k);
          ctx.log(`weights 1:${k}: A ${pp(share)}% (ideal ${pp(ideal)}%)`);
          metrics.push({ name: `weight 1:${k} share error`, value: Math.abs(pp(share) - pp(ideal)), unit: 'pp',
                         target: { cmp: '<=', value: 3 }, details: { measured_pct: pp(share), ideal_pct: pp(ideal) } });
        }
        await host.domctl(XEN_DOMCTL_pausedomain, { domain: b.domid });
        await host.credit(a.domid, { weight: 256 });
        for (const cap of [10, 25, 50]) {
          await host.credit(a.domid, { cap });
          await sleep(quick ? 200 : 600);
          const { ran, wall } = await window([a], quick ? 1000 : 3000);
          const share = ran[0]! / wall;
          ctx.log(`cap ${cap}: ${pp(share)}%`);
          metrics.push({ name: `cap ${cap} share error`, value: Math.abs(pp(share) - cap), unit: 'pp',
                         target: { cmp: '<=', value: 3 }, details: { measured_pct: pp(share), cap } });
        }
      } finally {
        await host.close();
      }
    }

    // ---- fairness of 64 busy guests and wake latency, pcpus=2 -----------------------
    {
      const n = quick ? 8 : 64;
      const host = new Host(await startBenchHost(ctx, { memoryMB: 2048, pcpus: 2, dom0 }));
      try {
        const doms: Dom[] = [];
        for (let i = 0; i < n; i += 8) {
          doms.push(...await Promise.all(Array.from({ length: Math.min(8, n - i) }, () => host.domain(fixture))));
        }
        ctx.log(`${n} domains up`);
        const idle = await host.domain(fixture);
        await idle.p.call('burn', { seconds: 0.01 });
        for (const d of doms) await d.p.call('burnStart', { seconds: 600 });
        await sleep(quick ? 300 : 1500);
        const hvPid = host.h.hypervisor.pid!;
        const c0 = procCpuTimes(hvPid);
        const { ran, wall } = await window(doms, quick ? 1500 : 12_000);
        const c1 = procCpuTimes(hvPid);
        const hvShare = ((c1.user + c1.sys - c0.user - c0.sys) / (wall / 1e9)) / 2;
        const j = jain(ran);
        const busy = ran.reduce((s, r) => s + r, 0) / wall / 2;
        ctx.log(`fairness: Jain ${j.toFixed(4)}, pCPUs busy ${pp(busy)}%, hypervisor ${pp(hvShare)}% of the machine`);
        metrics.push({ name: `Jain's index, ${n} busy guests on 2 pCPUs`, value: Math.round(j * 10000) / 10000, unit: '',
                       target: { cmp: '>=', value: 0.99 },
                       details: { min_ms: Math.min(...ran) / 1e6, max_ms: Math.max(...ran) / 1e6, pcpus_busy_pct: pp(busy) } });
        metrics.push({ name: `hypervisor CPU, ${n} busy guests`, value: pp(hvShare), unit: '% machine', target: { cmp: '<=', value: 5 } });

        // Wake-up latency: keep 8 busy, pause the rest.
        for (const d of doms.slice(8)) await host.domctl(XEN_DOMCTL_pausedomain, { domain: d.domid });
        await sleep(300);
        const lat: number[] = [];
        for (let i = 0; i < (quick ? 10 : 60); i++) {
          const s0 = (await idle.p.call('stats')).vcpus[0];
          await idle.p.call('burn', { seconds: 0.002 });
          const s1 = (await idle.p.call('stats')).vcpus[0];
          lat.push((s1.runnable_ns - s0.runnable_ns) / 1e6);
          await sleep(20 + (i % 7) * 5);
        }
        ctx.log(`wake latency p50 ${median(lat).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms`);
        metrics.push({ name: 'wake latency p50, 8 busy guests', value: Math.round(median(lat) * 100) / 100, unit: 'ms',
                       target: { cmp: '<=', value: 30 }, samples: lat });
        metrics.push({ name: 'wake latency p99, 8 busy guests', value: Math.round(percentile(lat, 99) * 100) / 100, unit: 'ms' });
      } finally {
        await host.close();
      }
    }
    return metrics;
  },
};
