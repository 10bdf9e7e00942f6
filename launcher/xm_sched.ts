// The scheduling commands of `xm`/`xl` (tools/xl/xl_sched.c, xl_vcpu.c,
// xentop): sched-credit, vcpu-list, vcpu-pin and top, handlers of the
// command table (launcher/xm_cmdtable.ts). Output in xl's formats so that
// scripts written for Xen read it:
//
//   xl sched-credit                      Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us
//                                        Name                                ID Weight  Cap
//   xl vcpu-list                         Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)
//   xm top                               xentop's header and columns, refreshed until `q`
import type { DomainRecord, NodeInfo } from '../shared/toolstack/xend_api.js';
import { formatCpuList, type SchedCreditGlobals, type SchedCreditRecord, type VcpuRecord } from '../shared/toolstack/xend_sched.js';
import { UsageError, type Opts, type XmContext } from './xm_context.js';

function int(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) throw new UsageError(`invalid ${what}: ${v}`);
  return Number(v);
}

/** sched_credit_domain_output: printf("%-33s %4d %6d %4d\n"). */
export function formatSchedCreditLine(r: Pick<SchedCreditRecord, 'name' | 'domid' | 'weight' | 'cap'>): string {
  return `${r.name.padEnd(33)} ${String(r.domid).padStart(4)} ${String(r.weight).padStart(6)} ${String(r.cap).padStart(4)}`;
}
export const SCHED_CREDIT_HEADER = `${'Name'.padEnd(33)} ${'ID'.padStart(4)} ${'Weight'.padStart(6)} ${'Cap'.padStart(4)}`;

export async function schedCredit(x: XmContext, o: Opts): Promise<number> {
  if (o.rest.length) throw new UsageError(`unexpected argument '${o.rest[0]}'`);
  const dom = o.values.get('d');
  const weight = int(o.values.get('w'), 'weight');
  const cap = int(o.values.get('c'), 'cap');
  const tslice = int(o.values.get('t'), 'tslice');
  const ratelimit = int(o.values.get('r'), 'ratelimit');
  const sys = o.flags.has('s') || tslice !== undefined || ratelimit !== undefined;
  if (sys && (dom !== undefined || weight !== undefined || cap !== undefined)) {
    throw new UsageError('-s (with -t/-r) and -d (with -w/-c) are mutually exclusive');
  }
  if ((weight !== undefined || cap !== undefined) && dom === undefined) throw new UsageError('-w and -c need a domain (-d)');
  if (sys) {
    if (tslice !== undefined || ratelimit !== undefined) {
      await x.call('xend.node.setSchedCredit', tslice ?? -1, ratelimit ?? -1);
      return 0;
    }
    x.out(`${poolLine(await x.call('xend.node.schedCredit'))}\n`);
    return 0;
  }
  if (dom !== undefined) {
    if (weight !== undefined || cap !== undefined) {
      await x.call('xend.domain.setSchedCredit', dom, weight ?? -1, cap ?? -1);
      return 0;
    }
    const r = await x.call('xend.domain.schedCredit', dom);
    x.out(`${SCHED_CREDIT_HEADER}\n${formatSchedCreditLine(r)}\n`);
    return 0;
  }
  const g = await x.call('xend.node.schedCredit');
  const doms = await x.domains();
  x.out(`${poolLine(g)}\n${SCHED_CREDIT_HEADER}\n`);
  for (const d of doms) {
    // A domain that went since the list is left out.
    const r = await x.call('xend.domain.schedCredit', d.domid).catch(() => null);
    if (r) x.out(`${formatSchedCreditLine(r)}\n`);
  }
  return 0;
}

function poolLine(g: SchedCreditGlobals): string {
  return `Cpupool Pool-0: tslice=${g.tslice_ms}ms ratelimit=${g.ratelimit_us}us migration-delay=0us`;
}

export const VCPU_LIST_HEADER = `${'Name'.padEnd(32)} ${'ID'.padStart(5)} ${'VCPU'.padStart(5)} ${'CPU'.padStart(5)} ${'State'.padStart(5)} ${'Time(s)'.padStart(9)} Affinity (Hard / Soft)`;

/** xl's print_vcpuinfo. */
export function formatVcpuLine(v: VcpuRecord): string {
  const head = `${v.name.padEnd(32)} ${String(v.domid).padStart(5)} ${String(v.vcpu).padStart(5)}`;
  const cpuSta = v.online
    ? `${String(v.cpu).padStart(5)} ${(v.running ? 'r' : '-').padStart(3)}${v.blocked ? 'b' : '-'}- `
    : `${'-'.padStart(5)} ${'-'.padStart(3)}-p `;
  return `${head}${cpuSta}${v.cpu_time.toFixed(1).padStart(9)}  ${formatCpuList(v.hard, v.pcpus)} / ${formatCpuList(v.soft, v.pcpus)}`;
}

export async function vcpuList(x: XmContext, o: Opts): Promise<number> {
  const names = o.rest.length ? o.rest : (await x.domains()).map((d) => d.domid);
  x.out(`${VCPU_LIST_HEADER}\n`);
  for (const n of names) {
    for (const v of await x.call('xend.domain.vcpus', n)) x.out(`${formatVcpuLine(v)}\n`);
  }
  return 0;
}

export async function vcpuPin(x: XmContext, o: Opts): Promise<number> {
  if (o.rest.length > 4) throw new UsageError(`unexpected argument '${o.rest[4]}'`);
  const [dom, vcpu, hard] = o.rest as [string, string, string];
  if (vcpu !== 'all' && !/^[0-9]+$/.test(vcpu)) throw new UsageError(`invalid vCPU '${vcpu}'`);
  if (hard === '-') return 0; // only soft affinity given: xenemu keeps soft affinity at all
  await x.call('xend.domain.pinVcpu', dom, vcpu === 'all' ? -1 : Number(vcpu), hard);
  return 0;
}

// ---- top ----------------------------------------------------------------------

interface Sample { t: number; cpu: Map<number, number> }

/** xentop's screen: a header and one line per domain, CPU(%) from the cpu_time deltas since the last sample. */
/**
 * xentop's STATE (tools/xentop/xentop.c state_funcs): dying, shutdown (for
 * any reason but a crash), blocked, crashed, paused, running, from xl list's
 * letters (r b p s <reason> d).
 */
export function xentopState(state: string): string {
  const crashed = state[3] === 's' && state[4] === 'c';
  return (state[5] === 'd' ? 'd' : '-') + (state[3] === 's' && !crashed ? 's' : '-') + (state[1] === 'b' ? 'b' : '-') +
    (crashed ? 'c' : '-') + (state[2] === 'p' ? 'p' : '-') + (state[0] === 'r' ? 'r' : '-');
}

/** One screen of `xl top`, as xentop prints it: VCPUS counts every vCPU, online or not (max_vcpu_id + 1). */
export function renderTop(doms: DomainRecord[], info: NodeInfo, prev: Sample | null, now: Sample): string {
  const totalK = Number(info.total_memory ?? 0) * 1024;
  const freeK = Number(info.free_memory ?? 0) * 1024;
  const count = (f: (d: DomainRecord) => boolean) => doms.filter(f).length;
  const time = new Date().toTimeString().slice(0, 8);
  const lines = [
    `xentop - ${time}   Xen ${info.xen_version ?? ''}`,
    `${doms.length} domains: ${count((d) => d.state[0] === 'r')} running, ${count((d) => d.state[1] === 'b')} blocked, ` +
      `${count((d) => d.state[2] === 'p')} paused, ${count((d) => d.state[4] === 'c')} crashed, ${count((d) => d.state[5] === 'd')} dying, ` +
      `${count((d) => d.state[3] === 's')} shutdown`,
    `Mem: ${totalK}k total, ${totalK - freeK}k used, ${freeK}k free    CPUs: ${info.nr_cpus ?? '?'} @ ${Math.round(Number(info.cpu_mhz ?? 0))}MHz`,
    `${'NAME'.padStart(10)}  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS`,
  ];
  for (const d of doms) {
    const p = prev?.cpu.get(d.domid);
    const dt = prev ? (now.t - prev.t) / 1000 : 0;
    const pct = p !== undefined && dt > 0 ? Math.max(0, ((now.cpu.get(d.domid)! - p) / dt) * 100) : 0;
    const memK = Math.round(d.memory * 1024);
    const maxK = Math.round(d.maxmem * 1024);
    const share = (k: number) => (totalK ? (k / totalK) * 100 : 0).toFixed(1).padStart(6);
    lines.push(`${d.name.slice(0, 10).padStart(10)} ${xentopState(d.state).padStart(7)} ${Math.floor(d.cpu_time).toString().padStart(10)} ${pct.toFixed(1).padStart(6)} ` +
               `${String(memK).padStart(10)} ${share(memK)} ${String(maxK).padStart(10)} ${share(maxK).padStart(9)} ${String(d.maxvcpus).padStart(5)}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function top(x: XmContext, o: Opts): Promise<number> {
  const delay = Number(o.values.get('d') ?? 1);
  if (!(delay > 0)) throw new UsageError(`invalid delay: ${o.values.get('d')}`);
  const batch = o.flags.has('b') || !x.isTTY;
  const iterations = o.values.has('i') ? int(o.values.get('i'), 'iterations')! : batch ? 1 : Infinity;
  const stdin = x.io.stdin;
  const raw = !batch && !!(stdin?.isTTY && stdin.setRawMode);
  let quit: (() => void) | null = null;
  let stop = false;
  const onKey = (chunk: Buffer | string) => {
    const s = chunk.toString();
    if (/[qQ\x03]/.test(s)) { stop = true; quit?.(); }
  };
  if (!batch && stdin) {
    if (raw) stdin.setRawMode!(true);
    stdin.on('data', onKey);
    stdin.resume();
  }
  let prev: Sample | null = null;
  try {
    for (let i = 0; i < iterations && !stop; i++) {
      const [doms, info] = await Promise.all([x.domains(), x.call('xend.node.info')]);
      const now: Sample = { t: Date.now(), cpu: new Map(doms.map((d) => [d.domid, d.cpu_time])) };
      const screen = renderTop(doms, info, prev, now);
      // Clear and home the cursor in a terminal; batch mode appends screens like xentop -b.
      x.out(batch ? screen : `\x1b[H\x1b[2J${screen}\nq: quit`);
      prev = now;
      if (i + 1 >= iterations || stop) break;
      await new Promise<void>((res) => {
        const timer = setTimeout(() => { quit = null; res(); }, delay * 1000);
        quit = () => { clearTimeout(timer); quit = null; res(); };
      });
    }
  } finally {
    if (!batch && stdin) {
      stdin.off('data', onKey);
      stdin.pause();
      if (raw) stdin.setRawMode!(false);
      x.out('\n');
    }
  }
  return 0;
}
