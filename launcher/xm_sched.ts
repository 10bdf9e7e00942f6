// The scheduling commands of `xm`/`xl` (tools/xl/xl_sched.c, xl_vcpu.c,
// xentop): sched-credit, vcpu-list, vcpu-pin and top. Output in xl's
// formats so that scripts written for Xen read it:
//
//   xl sched-credit                      Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us
//                                        Name                                ID Weight  Cap
//   xl vcpu-list                         Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)
//   xm top                               xentop's header and columns, refreshed until `q`
import type { XmlRpcValue } from '../shared/xmlrpc.js';
import { XEND_METHODS, type DomainRecord, type NodeInfo } from '../shared/toolstack/xend_api.js';
import {
  XEND_SCHED_METHODS, formatCpuList, type SchedCreditGlobals, type SchedCreditRecord, type VcpuRecord,
} from '../shared/toolstack/xend_sched.js';

export interface SchedCmdContext {
  call(method: string, params?: XmlRpcValue[]): Promise<XmlRpcValue>;
  /** A call naming a domain (an unknown one reads as xl says it). */
  callDom(method: string, dom: string, params?: XmlRpcValue[]): Promise<XmlRpcValue>;
  out(s: string): void;
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  isTTY: boolean;
  usage(msg: string): Error;
  getopt(args: string[], known: string, cmd: string): { flags: Set<string>; values: Map<string, string>; rest: string[] };
}

export const SCHED_USAGE: Record<string, string> = {
  'sched-credit': 'sched-credit [-d <Domain> [-w <Weight>] [-c <Cap>]] [-s [-t <tslice>] [-r <ratelimit>]]',
  'vcpu-list': 'vcpu-list [Domain ...]',
  'vcpu-pin': 'vcpu-pin <Domain> <VCPU|all> <CPUs|all>',
  top: 'top [-d <delay>] [-b] [-i <iterations>]',
};

function int(ctx: SchedCmdContext, v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) throw ctx.usage(`invalid ${what}: ${v}`);
  return Number(v);
}

/** sched_credit_domain_output: printf("%-33s %4d %6d %4d\n"). */
export function formatSchedCreditLine(r: Pick<SchedCreditRecord, 'name' | 'domid' | 'weight' | 'cap'>): string {
  return `${r.name.padEnd(33)} ${String(r.domid).padStart(4)} ${String(r.weight).padStart(6)} ${String(r.cap).padStart(4)}`;
}
export const SCHED_CREDIT_HEADER = `${'Name'.padEnd(33)} ${'ID'.padStart(4)} ${'Weight'.padStart(6)} ${'Cap'.padStart(4)}`;

export async function schedCredit(ctx: SchedCmdContext, args: string[]): Promise<number> {
  const o = ctx.getopt(args, 'd:w:c:t:r:sp:', 'sched-credit');
  if (o.rest.length) throw ctx.usage(`unexpected argument '${o.rest[0]}'`);
  const dom = o.values.get('d');
  const weight = int(ctx, o.values.get('w'), 'weight');
  const cap = int(ctx, o.values.get('c'), 'cap');
  const tslice = int(ctx, o.values.get('t'), 'tslice');
  const ratelimit = int(ctx, o.values.get('r'), 'ratelimit');
  const sys = o.flags.has('s') || tslice !== undefined || ratelimit !== undefined;
  if (sys && (dom !== undefined || weight !== undefined || cap !== undefined)) {
    throw ctx.usage('-s (with -t/-r) and -d (with -w/-c) are mutually exclusive');
  }
  if ((weight !== undefined || cap !== undefined) && dom === undefined) throw ctx.usage('-w and -c need a domain (-d)');
  if (sys) {
    if (tslice !== undefined || ratelimit !== undefined) {
      await ctx.call(XEND_SCHED_METHODS.setNodeSchedCredit, [tslice ?? -1, ratelimit ?? -1]);
      return 0;
    }
    ctx.out(`${poolLine((await ctx.call(XEND_SCHED_METHODS.nodeSchedCredit)) as unknown as SchedCreditGlobals)}\n`);
    return 0;
  }
  if (dom !== undefined) {
    if (weight !== undefined || cap !== undefined) {
      await ctx.callDom(XEND_SCHED_METHODS.setSchedCredit, dom, [weight ?? -1, cap ?? -1]);
      return 0;
    }
    const r = (await ctx.callDom(XEND_SCHED_METHODS.schedCredit, dom)) as unknown as SchedCreditRecord;
    ctx.out(`${SCHED_CREDIT_HEADER}\n${formatSchedCreditLine(r)}\n`);
    return 0;
  }
  const g = (await ctx.call(XEND_SCHED_METHODS.nodeSchedCredit)) as unknown as SchedCreditGlobals;
  const doms = (await ctx.call(XEND_METHODS.domains, [true])) as unknown as DomainRecord[];
  ctx.out(`${poolLine(g)}\n${SCHED_CREDIT_HEADER}\n`);
  for (const d of doms) {
    const r = (await ctx.callDom(XEND_SCHED_METHODS.schedCredit, String(d.domid)).catch(() => null)) as unknown as SchedCreditRecord | null;
    if (r) ctx.out(`${formatSchedCreditLine(r)}\n`);
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

export async function vcpuList(ctx: SchedCmdContext, args: string[]): Promise<number> {
  const o = ctx.getopt(args, '', 'vcpu-list');
  const names = o.rest.length ? o.rest
    : ((await ctx.call(XEND_METHODS.domains, [true])) as unknown as DomainRecord[]).map((d) => String(d.domid));
  ctx.out(`${VCPU_LIST_HEADER}\n`);
  for (const n of names) {
    const vs = (await ctx.callDom(XEND_SCHED_METHODS.vcpus, n)) as unknown as VcpuRecord[];
    for (const v of vs) ctx.out(`${formatVcpuLine(v)}\n`);
  }
  return 0;
}

export async function vcpuPin(ctx: SchedCmdContext, args: string[]): Promise<number> {
  const o = ctx.getopt(args, 'f', 'vcpu-pin');
  if (o.rest.length < 3 || o.rest.length > 4) throw ctx.usage(`'vcpu-pin' requires a domain, a vCPU (or all) and a CPU list`);
  const [dom, vcpu, hard] = o.rest as [string, string, string];
  if (vcpu !== 'all' && !/^[0-9]+$/.test(vcpu)) throw ctx.usage(`invalid vCPU '${vcpu}'`);
  if (hard === '-') return 0; // only soft affinity given: xenemu keeps soft affinity at all
  await ctx.callDom(XEND_SCHED_METHODS.pinVcpu, dom, [vcpu === 'all' ? -1 : Number(vcpu), hard]);
  return 0;
}

// ---- top ----------------------------------------------------------------------

interface Sample { t: number; cpu: Map<number, number> }

/** xentop's screen: a header and one line per domain, CPU(%) from the cpu_time deltas since the last sample. */
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
    lines.push(`${d.name.slice(0, 10).padStart(10)} ${d.state.padStart(7)} ${Math.floor(d.cpu_time).toString().padStart(10)} ${pct.toFixed(1).padStart(6)} ` +
               `${String(memK).padStart(10)} ${share(memK)} ${String(maxK).padStart(10)} ${share(maxK).padStart(9)} ${String(d.vcpus).padStart(5)}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function top(ctx: SchedCmdContext, args: string[]): Promise<number> {
  const o = ctx.getopt(args, 'd:bi:', 'top');
  const delay = Number(o.values.get('d') ?? 1);
  if (!(delay > 0)) throw ctx.usage(`invalid delay: ${o.values.get('d')}`);
  const batch = o.flags.has('b') || !ctx.isTTY;
  const iterations = o.values.has('i') ? int(ctx, o.values.get('i'), 'iterations')! : batch ? 1 : Infinity;
  const stdin = ctx.stdin;
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
      const [doms, info] = await Promise.all([
        ctx.call(XEND_METHODS.domains, [true]) as unknown as Promise<DomainRecord[]>,
        ctx.call(XEND_METHODS.nodeInfo) as unknown as Promise<NodeInfo>,
      ]);
      const now: Sample = { t: Date.now(), cpu: new Map(doms.map((d) => [d.domid, d.cpu_time])) };
      const screen = renderTop(doms, info, prev, now);
      // Clear and home the cursor in a terminal; batch mode appends screens like xentop -b.
      ctx.out(batch ? screen : `\x1b[H\x1b[2J${screen}\nq: quit`);
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
      ctx.out('\n');
    }
  }
  return 0;
}
