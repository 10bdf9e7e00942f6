// The toolstack's scheduler controls, done with Xen's hypercalls the way
// libxl does them (libxl_sched.c, libxl_domain.c):
//
//   weight/cap      XEN_DOMCTL_scheduler_op (XEN_SCHEDULER_CREDIT, getinfo/putinfo)
//   tslice/ratelimit XEN_SYSCTL_scheduler_op (cpupool 0)
//   vcpu-list       XEN_DOMCTL_getvcpuinfo + XEN_DOMCTL_getvcpuaffinity per vCPU
//   vcpu-pin        XEN_DOMCTL_setvcpuaffinity (hard)
//   create          cpu_weight, cap and cpus of xl.cfg, applied while the domain is still paused
import {
  XEN_DOMCTL_SCHEDOP_getinfo, XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_getvcpuaffinity, XEN_DOMCTL_getvcpuinfo,
  XEN_DOMCTL_scheduler_op, XEN_DOMCTL_setvcpuaffinity, XEN_SCHEDULER_CREDIT, XEN_VCPUAFFINITY_HARD,
  XEN_VCPUAFFINITY_SOFT, bitmapToCpumask, cpumaskToBitmap, type xenctl_bitmap,
} from '../../../shared/abi/domctl.js';
import {
  XEN_SYSCTL_SCHEDOP_getinfo, XEN_SYSCTL_SCHEDOP_putinfo, XEN_SYSCTL_physinfo, XEN_SYSCTL_scheduler_op,
} from '../../../shared/abi/sysctl.js';
import { XEN_EINVAL, XEN_ESRCH, errnoName } from '../../../shared/abi/errno.js';
import type { XenDomain } from '../../../shared/xen/index.js';
import type { DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import { parseCpuList, type SchedCreditGlobals, type VcpuRecord } from '../../../shared/toolstack/xend_sched.js';
import { ToolstackError } from './toolstack.js';

/** What xend asks of a toolstack about scheduling (Toolstack.sched). */
export interface SchedControl {
  credit(domid: number): Promise<{ weight: number; cap: number }>;
  setCredit(domid: number, p: { weight?: number; cap?: number }): Promise<void>;
  globals(): Promise<SchedCreditGlobals>;
  setGlobals(p: { tslice_ms?: number; ratelimit_us?: number }): Promise<void>;
  vcpus(domid: number, name: string): Promise<VcpuRecord[]>;
  /** vcpu -1: every vCPU. */
  pin(domid: number, vcpu: number, cpus: string): Promise<void>;
}

const maskOf = (b: xenctl_bitmap | undefined) => bitmapToCpumask(b);
const cpusOf = (m: bigint, n: number) => [...Array(n).keys()].filter((i) => (m >> BigInt(i)) & 1n);

export class XenSchedControl implements SchedControl {
  private nrCpus = 0;
  constructor(private readonly dom0: XenDomain) {}

  private fail(rc: number, what: string, domid?: number): never {
    if (rc === -XEN_ESRCH && domid !== undefined) throw new ToolstackError('ESRCH', `Domain ${domid} does not exist.`);
    throw new ToolstackError(rc === -XEN_EINVAL ? 'EINVAL' : 'EIO', `libxl: error: ${what}: ${errnoName(rc)}`);
  }

  private async pcpus(): Promise<number> {
    if (!this.nrCpus) {
      const r = await this.dom0.hv.sysctl<{ nr_cpus: number }>(XEN_SYSCTL_physinfo);
      this.nrCpus = r.data?.nr_cpus ?? 1;
    }
    return this.nrCpus;
  }

  async credit(domid: number): Promise<{ weight: number; cap: number }> {
    const r = await this.dom0.hv.domctl<{ u: { credit: { weight: number; cap: number } } }>(XEN_DOMCTL_scheduler_op,
      { domain: domid, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_DOMCTL_SCHEDOP_getinfo });
    if (r.ret < 0 || !r.data) this.fail(r.ret, `getting domain sched credit of ${domid}`, domid);
    return r.data.u.credit;
  }

  async setCredit(domid: number, p: { weight?: number; cap?: number }): Promise<void> {
    if (p.weight !== undefined && (p.weight < 1 || p.weight > 65535)) {
      throw new ToolstackError('EINVAL', `libxl: error: Cpu weight out of range, valid values are within range from 1 to 65535`);
    }
    if (p.cap !== undefined && (p.cap < 0 || p.cap > 65535)) {
      throw new ToolstackError('EINVAL', `libxl: error: Cpu cap out of range, valid range is from 0 to 65535`);
    }
    const r = await this.dom0.hv.domctl(XEN_DOMCTL_scheduler_op,
      { domain: domid, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_DOMCTL_SCHEDOP_putinfo, u: { credit: { weight: p.weight ?? 0, cap: p.cap } } });
    if (r.ret < 0) this.fail(r.ret, `setting domain sched credit of ${domid}`, domid);
  }

  async globals(): Promise<SchedCreditGlobals> {
    const r = await this.dom0.hv.sysctl<{ u: { sched_credit: { tslice_ms: number; ratelimit_us: number } } }>(XEN_SYSCTL_scheduler_op,
      { cpupool_id: 0, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_SYSCTL_SCHEDOP_getinfo });
    if (r.ret < 0 || !r.data) this.fail(r.ret, 'getting sched credit parameters');
    return { ...r.data.u.sched_credit, pcpus: await this.pcpus() };
  }

  async setGlobals(p: { tslice_ms?: number; ratelimit_us?: number }): Promise<void> {
    const r = await this.dom0.hv.sysctl(XEN_SYSCTL_scheduler_op,
      { cpupool_id: 0, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_SYSCTL_SCHEDOP_putinfo, u: { sched_credit: p } });
    if (r.ret < 0) this.fail(r.ret, `setting sched credit parameters (tslice 1..1000 ms, ratelimit 0 or 100..500000 us and not above the slice)`);
  }

  async vcpus(domid: number, name: string): Promise<VcpuRecord[]> {
    const n = await this.pcpus();
    const out: VcpuRecord[] = [];
    for (let v = 0; ; v++) {
      const r = await this.dom0.hv.domctl<{ online: number; running: number; blocked: number; cpu_time: number; cpu: number; max_vcpus: number }>(
        XEN_DOMCTL_getvcpuinfo, { domain: domid, vcpu: v });
      if (r.ret < 0 || !r.data) { if (v === 0) this.fail(r.ret, `getting vcpu info of ${domid}`, domid); break; }
      const a = await this.dom0.hv.domctl<{ cpumap_hard: xenctl_bitmap; cpumap_soft: xenctl_bitmap }>(XEN_DOMCTL_getvcpuaffinity,
        { domain: domid, vcpu: v, flags: XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT });
      const all = (1n << BigInt(n)) - 1n;
      const d = r.data;
      out.push({
        domid, name, vcpu: v, cpu: d.cpu, online: !!d.online, running: !!d.running, blocked: !!d.blocked,
        cpu_time: d.cpu_time / 1e9, hard: cpusOf(a.ret < 0 ? all : maskOf(a.data?.cpumap_hard), n),
        soft: cpusOf(a.ret < 0 ? all : maskOf(a.data?.cpumap_soft), n), pcpus: n,
      });
      if (v + 1 >= (d.max_vcpus ?? 1)) break;
    }
    return out;
  }

  async pin(domid: number, vcpu: number, cpus: string): Promise<void> {
    const n = await this.pcpus();
    const list = parseCpuList(cpus, n);
    if (!list || list.length === 0) throw new ToolstackError('EINVAL', `Invalid hard affinity "${cpus}" (this host has CPUs 0-${n - 1})`);
    const mask = list.reduce((m, c) => m | (1n << BigInt(c)), 0n);
    const targets = vcpu >= 0 ? [vcpu] : (await this.vcpus(domid, '')).map((v) => v.vcpu);
    for (const v of targets) {
      const r = await this.dom0.hv.domctl(XEN_DOMCTL_setvcpuaffinity,
        { domain: domid, vcpu: v, flags: XEN_VCPUAFFINITY_HARD, cpumap_hard: cpumaskToBitmap(mask, n) });
      if (r.ret < 0) this.fail(r.ret, `setting vcpu affinity of d${domid} vcpu ${v}`, domid);
    }
  }

  /** xl.cfg cpu_weight, cap and cpus (libxl__build_pre / libxl_domain_sched_params_set), before the first unpause. */
  async applyConfig(domid: number, cfg: DomainConfig): Promise<void> {
    if (cfg.cpu_weight !== undefined || cfg.cap !== undefined) await this.setCredit(domid, { weight: cfg.cpu_weight, cap: cfg.cap });
    if (cfg.cpus !== undefined && cfg.cpus !== 'all') await this.pin(domid, -1, cfg.cpus);
  }
}
