// What the scheduler methods of xend (XendApi in xend_api.ts:
// xend.domain.schedCredit, .vcpus, .pinVcpu, ...) return, and xl's CPU
// lists. `type` aliases, as every record that crosses XML-RPC.

export type SchedCreditRecord = { domid: number; name: string; weight: number; cap: number };
export type SchedCreditGlobals = { tslice_ms: number; ratelimit_us: number; pcpus: number };

/** One vCPU as `xl vcpu-list` shows it (libxl_vcpuinfo). */
export type VcpuRecord = {
  domid: number;
  name: string;
  vcpu: number;
  cpu: number;
  online: boolean;
  running: boolean;
  blocked: boolean;
  /** Seconds of running time. */
  cpu_time: number;
  /** CPU indexes of the hard affinity. */
  hard: number[];
  soft: number[];
  pcpus: number;
};

/**
 * An xl cpu list ("all", "0-3,^1", "2") as CPU indexes below `nrCpus`
 * (xl's parse_cpurange without nodes); undefined when malformed.
 */
export function parseCpuList(text: string, nrCpus: number): number[] | undefined {
  const set = new Set<number>();
  const t = text.trim();
  if (t === 'all') return [...Array(nrCpus).keys()];
  for (const part of t.split(',')) {
    const m = /^(\^?)([0-9]+)(?:-([0-9]+))?$/.exec(part.trim());
    if (!m) return undefined;
    const a = Number(m[2]);
    const b = m[3] === undefined ? a : Number(m[3]);
    if (b < a) return undefined;
    for (let i = a; i <= b; i++) if (m[1]) set.delete(i); else set.add(i);
  }
  return [...set].filter((c) => c < nrCpus).sort((x, y) => x - y);
}

/** xl's print_bitmap: "all" when every CPU is in, else ranges ("0-1,3"), "none" when empty. */
export function formatCpuList(cpus: number[], nrCpus: number): string {
  const s = [...new Set(cpus)].filter((c) => c < nrCpus).sort((a, b) => a - b);
  if (s.length === nrCpus && nrCpus > 0) return 'all';
  if (s.length === 0) return 'none';
  const parts: string[] = [];
  for (let i = 0; i < s.length; i++) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j;
  }
  return parts.join(',');
}
