// Compile-time tests of the typed xend boundary (shared/toolstack/xend_api.ts):
// `tsc` in `npm test` fails if any line marked @ts-expect-error compiles,
// that is if the method map stops catching a wrong call or a wrong handler.
// Nothing here runs.
import { xendCall } from '../../shared/toolstack/xend_api.js';
import type { MethodTable } from '../../processes/dom0/xend/methods.js';

const ep = { socketPath: '/nonexistent' };

export async function clientCalls(): Promise<void> {
  const rec = await xendCall(ep, 'xend.domain', 'guest1');
  const domid: number = rec.domid;
  const text: string = await xendCall(ep, 'xend.node.dmesg', true);
  await xendCall(ep, 'xend.domain.setMemoryTarget', domid, 256);
  void text;
  // @ts-expect-error a method xend does not have
  await xendCall(ep, 'xend.domain.frobnicate', 'guest1');
  // @ts-expect-error a parameter missing
  await xendCall(ep, 'xend.domain.setMemoryTarget', 'guest1');
  // @ts-expect-error a parameter of the wrong type
  await xendCall(ep, 'xend.node.dmesg', 'yes');
  // @ts-expect-error a parameter too many
  await xendCall(ep, 'xend.domain.pause', 'guest1', 1);
  // @ts-expect-error the result is a record, not a string
  const wrong: string = await xendCall(ep, 'xend.domain', 'guest1');
  void wrong;
}

export const handlers: MethodTable<'xend.node.dmesg' | 'xend.domain.setVCpuCount'> = {
  'xend.node.dmesg': {
    params: () => [true],
    // @ts-expect-error a handler that returns something else than its method's result
    run: async () => 42,
  },
  'xend.domain.setVCpuCount': {
    // @ts-expect-error a check that types a parameter wrongly
    params: async (p, dom) => [await dom(p[0]), String(p[1])],
    run: async () => true,
  },
};

// @ts-expect-error a table without an entry for one of its methods
export const missing: MethodTable<'xend.node.dmesg' | 'xend.node.info'> = {
  'xend.node.dmesg': { params: () => [false], run: async () => '' },
};
