// pcpus=1: two busy single-vCPU domains share the pCPU; a paused domain makes
// no progress and accrues no running time.
import t from 'tap';
import { startSchedHost } from './vcpu_host.js';
import { waitFor } from '../helpers/host.js';

t.test('pcpus=1: two busy domains each get a fair share', async (t) => {
  const s = await startSchedHost(t, 1);
  const a = await s.domain();
  const b = await s.domain();
  const a00 = await a.p.call('stats');
  const ja = await a.p.call('burnStart', { seconds: 1.5 });
  const jb = await b.p.call('burnStart', { seconds: 1.5 });
  // A vCPU's thread starts with its first work: on a loaded host that can take
  // a while. Measure from when both vCPUs compete (neither blocked).
  let a0 = a00;
  let b0 = a00;
  await waitFor(async () => {
    [a0, b0] = [await a.p.call('stats'), await b.p.call('stats')];
    return a0.vcpus[0].state !== 'blocked' && b0.vcpus[0].state !== 'blocked';
  }, 10_000, 'both vCPUs runnable');
  // Watch while both are busy: sample after ~1 s of contention.
  await new Promise((r) => setTimeout(r, 1000)); // a measurement window, not an event wait
  const a1 = await a.p.call('stats');
  const b1 = await b.p.call('stats');
  const ra = a1.vcpus[0].running_ns - a0.vcpus[0].running_ns;
  const rb = b1.vcpus[0].running_ns - b0.vcpus[0].running_ns;
  const share = ra / (ra + rb);
  t.ok(share > 0.3 && share < 0.7, `share of A ${(share * 100).toFixed(0)}% (A ${(ra / 1e6).toFixed(0)} ms, B ${(rb / 1e6).toFixed(0)} ms)`);
  t.ok(a1.vcpus[0].runnable_ns > a0.vcpus[0].runnable_ns, 'A waited runnable while B ran');
  const [wa, wb] = [await a.p.call('wait', { job: ja }), await b.p.call('wait', { job: jb })];
  t.ok(wa.cpuMs >= 1490 && wb.cpuMs >= 1490, 'both burns completed');
  t.ok(wa.wallMs > 2000 && wb.wallMs > 2000, `they shared one pCPU (walls ${wa.wallMs}, ${wb.wallMs} ms)`);
  const fin = await a.p.call('stats');
  const slices = fin.vcpus[0].slices - a0.vcpus[0].slices;
  t.ok(slices >= 10, `A ran in ${slices} slices of ~30 ms`);
  // An honest vCPU releases within the grace; only a host starving this
  // process for longer than 40 ms (other work on the 2 cores) can get it stopped.
  t.ok(fin.vcpus[0].preempts <= 2, `honest vCPU stopped ${fin.vcpus[0].preempts} times (0 unless the host starves it)`);
});

t.test('a paused domain makes no progress and accrues no running time', async (t) => {
  const s = await startSchedHost(t, 1);
  const a = await s.domain();
  const job = await a.p.call('burnStart', { seconds: 0.8 });
  await new Promise((r) => setTimeout(r, 150));
  t.equal(await s.pause(a.domid), 0, 'paused');
  const i0 = await s.vcpuinfo(a.domid, 0);
  t.equal(i0.running, 0, 'not running while paused');
  await new Promise((r) => setTimeout(r, 600)); // a measurement window
  const i1 = await s.vcpuinfo(a.domid, 0);
  t.ok(i1.cpu_time - i0.cpu_time < 1e6, `no running time accrued (${(i1.cpu_time - i0.cpu_time) / 1e6} ms)`);
  t.equal(i1.runstate.state, 3, 'runstate offline while paused (Xen: not runnable)');
  t.equal(await s.unpause(a.domid), 0, 'unpaused');
  const r = await a.p.call('wait', { job });
  t.ok(r.cpuMs >= 790, 'the burn finishes after unpause');
  t.ok(r.wallMs >= 1300, `its wall time includes the pause (${r.wallMs} ms)`);
});
