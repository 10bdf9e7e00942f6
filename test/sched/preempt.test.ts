// A guest that ignores revocation is SIGSTOPped and charged; the other
// domain still gets the pCPU; the rogue resumes when scheduled again.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { startSchedHost, processState } from './vcpu_host.js';
import { waitFor } from '../helpers/host.js';

t.test('a vCPU that keeps its pCPU after revocation is stopped and charged', async (t) => {
  const s = await startSchedHost(t, 1);
  const rogue = await s.domain();
  const good = await s.domain();
  const g0 = await good.p.call('stats');
  const jr = await rogue.p.call('rogueStart', { ms: 2500 });
  await waitFor(async () => (await s.vcpuinfo(rogue.domid, 0)).running === 1, 10_000, 'rogue running');
  const jg = await good.p.call('burnStart', { seconds: 0.5 });
  // The rogue's slice ends, it ignores the revocation: stopped.
  await waitFor(() => processState(rogue.pid) === 'T', 10_000, 'rogue SIGSTOPped');
  // Stopped and off the pCPU at one moment: the rogue is resumed in its
  // turns (credit), so a loaded machine may see it running again by the
  // time vcpuinfo answers; a stop seen on both sides of the hypercall
  // brackets the answer.
  const stoppedOff = await waitFor(async () => {
    if (processState(rogue.pid) !== 'T') return false;
    const info = await s.vcpuinfo(rogue.domid, 0);
    return processState(rogue.pid) === 'T' && info.running === 0 ? info : false;
  }, 10_000, 'the stopped rogue off its pCPU').catch(() => null);
  t.ok(stoppedOff, 'its vCPU lost the pCPU while its process was stopped');
  const r = await good.p.call('wait', { job: jg });
  t.ok(r.cpuMs >= 490, `the honest domain got its work done (${r.wallMs} ms wall)`);
  const g1 = await good.p.call('stats');
  t.equal(g1.vcpus[0].preempts, 0, 'the honest domain was never stopped');
  if (g1.vcpus[0].preempts) t.comment(require_log(s.h.rundir));
  t.ok(g1.vcpus[0].running_ns - g0.vcpus[0].running_ns >= 490e6, 'and ran its time');
  // The rogue is resumed in its turns and finishes; its stops are on record.
  const done = await rogue.p.call('wait', { job: jr });
  t.notOk(done?.error, 'the rogue work completes once resumed');
  const st = await rogue.p.call('stats');
  t.ok(st.vcpus[0].preempts >= 1, `preempted ${st.vcpus[0].preempts} times`);
  t.ok(st.vcpus[0].stolen_ns > 0, `charged ${(st.vcpus[0].stolen_ns / 1e6).toFixed(1)} ms past its revocations`);
  t.ok(st.vcpus[0].running_ns >= 2000e6 * 0.5, `rogue accounted running ${(st.vcpus[0].running_ns / 1e6).toFixed(0)} ms`);
  t.equal(processState(rogue.pid) === 'T', false, 'not left stopped');
});

function require_log(rundir: string): string {
  return readFileSync(`${rundir}/logs/hypervisor.log`, 'utf8').split('\n').filter((l) => /kept|slices/.test(l)).join('\n');
}
