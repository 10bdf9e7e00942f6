// xend's scheduler methods (shared/toolstack/xend_sched.ts), merged into
// the method table of server.ts: same shape, same fault rules.
import { XmlRpcFault, XMLRPC_ERROR_GENERIC, type XmlRpcValue } from '../../../shared/xmlrpc.js';
import { XEND_SCHED_METHODS } from '../../../shared/toolstack/xend_sched.js';
import type { DomainInfo, Toolstack } from './toolstack.js';
import type { SchedControl } from './sched_control.js';

type Params = XmlRpcValue[];
interface Entry {
  domainArgs: 0 | 1;
  handler: (ts: Toolstack, dom: DomainInfo | undefined, params: Params) => Promise<XmlRpcValue>;
}

const generic = (msg: string) => new XmlRpcFault(XMLRPC_ERROR_GENERIC, msg);

function sched(ts: Toolstack): SchedControl {
  if (!ts.sched) throw generic('this toolstack has no scheduler controls');
  return ts.sched;
}

/** An integer parameter; -1 (or absent) means "leave unchanged". */
function optInt(v: XmlRpcValue | undefined, what: string): number | undefined {
  if (v === undefined || v === -1) return undefined;
  const n = typeof v === 'string' && /^-?[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw generic(`invalid ${what}: ${JSON.stringify(v)}`);
  return n;
}

export const SCHED_METHODS: Record<string, Entry> = {
  [XEND_SCHED_METHODS.schedCredit]: {
    domainArgs: 1,
    handler: async (ts, d) => ({ domid: d!.domid, name: d!.name, ...(await sched(ts).credit(d!.domid)) }),
  },
  [XEND_SCHED_METHODS.setSchedCredit]: {
    domainArgs: 1,
    handler: async (ts, d, [w, c]) => {
      await sched(ts).setCredit(d!.domid, { weight: optInt(w, 'weight'), cap: optInt(c, 'cap') });
      return true;
    },
  },
  [XEND_SCHED_METHODS.nodeSchedCredit]: {
    domainArgs: 0,
    handler: async (ts) => (await sched(ts).globals()) as unknown as XmlRpcValue,
  },
  [XEND_SCHED_METHODS.setNodeSchedCredit]: {
    domainArgs: 0,
    handler: async (ts, _d, [t, r]) => {
      await sched(ts).setGlobals({ tslice_ms: optInt(t, 'tslice'), ratelimit_us: optInt(r, 'ratelimit') });
      return true;
    },
  },
  [XEND_SCHED_METHODS.vcpus]: {
    domainArgs: 1,
    handler: async (ts, d) => (await sched(ts).vcpus(d!.domid, d!.name)) as unknown as XmlRpcValue,
  },
  [XEND_SCHED_METHODS.pinVcpu]: {
    domainArgs: 1,
    handler: async (ts, d, [v, cpus]) => {
      const vcpu = v === -1 || v === 'all' ? -1 : optInt(v, 'vcpu');
      if (vcpu === undefined || typeof cpus !== 'string') throw generic('vcpu-pin needs a vCPU (or all) and a CPU list');
      await sched(ts).pin(d!.domid, vcpu, cpus);
      return true;
    },
  },
};
