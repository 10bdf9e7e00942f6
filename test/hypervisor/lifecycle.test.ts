// Death of a DomU (crashed within 1 s, VIRQ_DOM_EXC), of Dom0 and of the
// hypervisor (host gone within 2 s: no process, no segment).
import t from 'tap';
import { waitFor, hostGone, readHostRecord } from '../helpers/host.js';
import { probeDomU, probeHost } from '../helpers/probe.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import { XEN_DOMCTL_getdomaininfo, XEN_DOMINF_shutdown, dominfShutdownReason, XEN_DOMCTL_destroydomain } from '../../shared/abi/domctl.js';
import { SHUTDOWN_crash, SHUTDOWN_poweroff } from '../../shared/abi/sched.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import { XEN_ESRCH } from '../../shared/abi/errno.js';
import { procCmdline } from '../../shared/host.js';

t.test('SIGKILL of a DomU: crashed within a second, VIRQ_DOM_EXC to Dom0', async (t) => {
  const { h, d0 } = await probeHost(t, 512);
  const { domid, p: du } = await probeDomU(t, h, d0);
  const hello = await du.call('hello');
  const info = async (d: number) => d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd: XEN_DOMCTL_getdomaininfo, arg: { domain: d } });
  const pid = (await info(domid)).data.pid as number;
  t.ok(pid > 0, 'the domain is a process');
  const virqPort = 1; // the probe's first binding as Dom0 is VIRQ_DOM_EXC
  const exc0 = (await d0.call('events')).events[virqPort] ?? 0;

  const t0 = Date.now();
  process.kill(pid, 'SIGKILL');
  const crashed = await waitFor(async () => {
    const r = await info(domid);
    return r.data.flags & XEN_DOMINF_shutdown ? r.data : null;
  }, 5000, 'crash');
  t.ok(Date.now() - t0 < 1000, `marked within 1 s (${Date.now() - t0} ms)`);
  t.equal(dominfShutdownReason(crashed.flags), SHUTDOWN_crash, 'reason SHUTDOWN_crash');
  await waitFor(async () => ((await d0.call('events')).events[virqPort] ?? 0) > exc0, 5000, 'VIRQ_DOM_EXC');

  t.equal((await d0.call('hypercall', { hop: __HYPERVISOR_domctl, cmd: XEN_DOMCTL_destroydomain, arg: { domain: domid } })).ret, 0);
  t.equal((await info(domid)).ret, -XEN_ESRCH, 'destroyed');
  t.notOk(shmList(shmPrefix(h.name)).includes(hello.mem), 'its memory segment is gone');

  // An orderly SCHEDOP_shutdown is not a crash.
  const { domid: second, p: d2 } = await probeDomU(t, h, d0);
  await d2.call('shutdown', { reason: SHUTDOWN_poweroff });
  const off = await waitFor(async () => {
    const r = await info(second);
    return r.data.flags & XEN_DOMINF_shutdown && r.data.pid === 0 ? r.data : null;
  }, 5000, 'poweroff');
  t.equal(dominfShutdownReason(off.flags), SHUTDOWN_poweroff);
});

for (const victim of ['Dom0', 'hypervisor'] as const) {
  t.test(`SIGKILL of the ${victim}: the host is gone within 2 s`, async (t) => {
    const { h, d0 } = await probeHost(t, 512);
    await d0.call('createProbe');
    await d0.call('createProbe');
    // The hypervisor, Dom0 and two probes (h.pids() also has the spare guest process).
    await waitFor(() => Object.keys(readHostRecord(h.rundir)?.pids.domains ?? {}).length === 3, 5000, 'three domain processes');
    const pids = h.pids();
    t.ok(pids.length >= 4, `${pids.length} processes`);
    t.ok(shmList(shmPrefix(h.name)).length >= 9, 'segments exist');
    const target = victim === 'hypervisor' ? h.hypervisorPid : (await d0.call('hello'), pids.find((p) => p !== h.hypervisorPid && isDom0(p))!);
    const t0 = Date.now();
    process.kill(target, 'SIGKILL');
    await waitFor(() => hostGone(h.rundir, h.name, pids), 4000, 'host gone');
    t.ok(Date.now() - t0 < 2000, `gone in ${Date.now() - t0} ms`);
    t.same(shmList(shmPrefix(h.name)), [], `no /dev/shm/xenemu.${h.name}.* left`);
  });
}

/** Dom0 by its title (argv[0] as the hypervisor spawns it; the probe Dom0 keeps its --domid 0). */
function isDom0(pid: number): boolean {
  const argv = procCmdline(pid);
  return /^xenemu-dom0 /.test(argv[0] ?? '') || argv[argv.indexOf('--domid') + 1] === '0';
}
