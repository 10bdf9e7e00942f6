// Shared setup of the scheduler tests: a host whose Dom0 is the probe, and
// DomUs running test/fixtures/vcpu_domain.js (a VcpuPool under test control).
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startHost, DIST, type TestHost } from '../helpers/host.js';
import { probe, PROBE, type Probe } from '../helpers/probe.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import {
  XEN_DOMCTL_createdomain, XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_getvcpuinfo, XEN_DOMCTL_pausedomain,
  XEN_DOMCTL_unpausedomain,
} from '../../shared/abi/domctl.js';

export const VCPU_DOMAIN = join(DIST, 'test', 'fixtures', 'vcpu_domain.js');

interface Tap { teardown(fn: () => unknown): void }

export interface SchedHost {
  h: TestHost;
  d0: Probe;
  /** Creates and starts a vcpu_domain with max_vcpus and a started pool of `vcpus`. */
  domain(opts?: { maxVcpus?: number; vcpus?: number }): Promise<{ domid: number; p: Probe; pid: number }>;
  domctl(cmd: number, arg: object): Promise<{ ret: number; data: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  vcpuinfo(domid: number, vcpu: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  pause(domid: number): Promise<number>;
  unpause(domid: number): Promise<number>;
}

export async function startSchedHost(t: Tap, pcpus: number): Promise<SchedHost> {
  const h = await startHost(t, { memory: 512, pcpus, dom0: PROBE });
  const d0 = probe(h.rundir, 0, 30_000);
  t.teardown(() => d0.close());
  const domctl = (cmd: number, arg: object) => d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd, arg });
  return {
    h, d0, domctl,
    async domain(opts = {}) {
      const c = await domctl(XEN_DOMCTL_createdomain, {
        max_vcpus: opts.maxVcpus ?? 1, memory_kb: 8192, xenemu: { program: VCPU_DOMAIN } });
      if (c.ret < 0) throw new Error(`createdomain: ${c.ret}`);
      const domid = c.data.domain as number;
      const u = await domctl(XEN_DOMCTL_unpausedomain, { domain: domid });
      if (u.ret < 0) throw new Error(`unpausedomain: ${u.ret}`);
      const p = probe(h.rundir, domid, 30_000);
      t.teardown(() => p.close());
      const started = await p.call('start', { vcpus: opts.vcpus ?? 1 });
      if (typeof started !== 'number') throw new Error(`pool start: ${JSON.stringify(started)}`);
      const pid = (await domctl(XEN_DOMCTL_getdomaininfo, { domain: domid })).data.pid as number;
      return { domid, p, pid };
    },
    async vcpuinfo(domid, vcpu) { return (await domctl(XEN_DOMCTL_getvcpuinfo, { domain: domid, vcpu })).data; },
    async pause(domid) { return (await domctl(XEN_DOMCTL_pausedomain, { domain: domid })).ret; },
    async unpause(domid) { return (await domctl(XEN_DOMCTL_unpausedomain, { domain: domid })).ret; },
  };
}

/** utime + stime of a process, ms (/proc/<pid>/stat, clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** The process state letter (R, S, T, Z, ...). */
export function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}
