// Blocked vCPUs use no CPU; setOnline changes what the hypervisor sees.
import t from 'tap';
import { startSchedHost, processCpuMs } from './vcpu_host.js';
import { XEN_DOMCTL_getdomaininfo } from '../../shared/abi/domctl.js';

t.test('blocked vCPUs use no CPU', async (t) => {
  const s = await startSchedHost(t, 2);
  const a = await s.domain({ maxVcpus: 2, vcpus: 2 });
  await a.p.call('burn', { seconds: 0.2 }); // threads warm
  const c0 = processCpuMs(a.pid);
  const h0 = processCpuMs(s.h.hypervisorPid);
  await new Promise((r) => setTimeout(r, 1500)); // a measurement window
  const c1 = processCpuMs(a.pid);
  const h1 = processCpuMs(s.h.hypervisorPid);
  t.ok(c1 - c0 <= 60, `idle domain used ${c1 - c0} ms of CPU in 1.5 s`);
  t.ok(h1 - h0 <= 60, `the hypervisor used ${h1 - h0} ms meanwhile`);
  const st = await a.p.call('stats');
  t.same(st.vcpus.map((v: { state: string }) => v.state), ['blocked', 'blocked']);
});

t.test('setOnline: hot-unplug and plug are visible to the hypervisor', async (t) => {
  const s = await startSchedHost(t, 2);
  const a = await s.domain({ maxVcpus: 3, vcpus: 3 });
  const online = async () => (await s.domctl(XEN_DOMCTL_getdomaininfo, { domain: a.domid })).data.nr_online_vcpus;
  t.equal(await online(), 3, 'three online');
  t.equal(await a.p.call('setOnline', { n: 1 }), 1);
  t.equal(await online(), 1, 'one online after unplug');
  t.equal((await s.vcpuinfo(a.domid, 2)).online, 0, 'vCPU 2 offline');
  t.equal((await s.vcpuinfo(a.domid, 2)).runstate.state, 3, 'runstate offline');
  const r = await a.p.call('burn', { seconds: 0.2 });
  t.ok(r.cpuMs >= 190, 'work runs on the remaining vCPU');
  const st = await a.p.call('stats');
  t.equal(st.vcpus[1].tasks + st.vcpus[2].tasks, 0, 'nothing ran on offline vCPUs');
  t.equal(await a.p.call('setOnline', { n: 2 }), 2);
  t.equal(await online(), 2, 'two online after plug');
  const r2 = await a.p.call('burn', { seconds: 0.3 });
  t.ok(r2.cpuMs >= 290, 'burn over two vCPUs');
  const st2 = await a.p.call('stats');
  t.ok(st2.vcpus[1].tasks > 0, 'the plugged vCPU took work');
});
