// xend's scheduler methods (XendSchedMethod in shared/toolstack/xend_api.ts),
// merged into the method table of server.ts: same shape, same fault rules.
import type { XendSchedMethod } from '../../../shared/toolstack/xend_api.js';
import type { Toolstack } from './toolstack.js';
import type { SchedControl } from './sched_control.js';
import { generic, intOrKeep, str, type MethodTable } from './methods.js';

function sched(ts: Toolstack): SchedControl {
  if (!ts.sched) throw generic('this toolstack has no scheduler controls');
  return ts.sched;
}

/** -1 on the wire means "leave unchanged". */
const keep = (n: number): number | undefined => (n === -1 ? undefined : n);

export const SCHED_METHODS: MethodTable<XendSchedMethod> = {
  'xend.domain.schedCredit': {
    params: async (p, dom) => [await dom(p[0])],
    run: async (ts, [d]) => ({ domid: d.domid, name: d.name, ...(await sched(ts).credit(d.domid)) }),
  },
  'xend.domain.setSchedCredit': {
    params: async (p, dom) => [await dom(p[0]), intOrKeep(p[1], 'weight'), intOrKeep(p[2], 'cap')],
    run: async (ts, [d, weight, cap]) => {
      await sched(ts).setCredit(d.domid, { weight: keep(weight), cap: keep(cap) });
      return true;
    },
  },
  'xend.node.schedCredit': { params: () => [], run: async (ts) => sched(ts).globals() },
  'xend.node.setSchedCredit': {
    params: (p) => [intOrKeep(p[0], 'tslice'), intOrKeep(p[1], 'ratelimit')],
    run: async (ts, [tslice, ratelimit]) => {
      await sched(ts).setGlobals({ tslice_ms: keep(tslice), ratelimit_us: keep(ratelimit) });
      return true;
    },
  },
  'xend.domain.vcpus': {
    params: async (p, dom) => [await dom(p[0])],
    run: async (ts, [d]) => sched(ts).vcpus(d.domid, d.name),
  },
  'xend.domain.pinVcpu': {
    params: async (p, dom) => [await dom(p[0]), p[1] === 'all' ? -1 : intOrKeep(p[1], 'vcpu'), str(p[2], 'CPU list')],
    run: async (ts, [d, vcpu, cpus]) => { await sched(ts).pin(d.domid, vcpu, cpus); return true; },
  },
};
