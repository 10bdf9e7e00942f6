// The PV domain builder (processes/dom0/toolstack): what it puts in the
// guest's memory, grant table and xenstore (libxl's layout and permissions),
// its refusals, vCPU hotplug through cpu/<n>/availability, and destroy.
import t from 'tap';
import { startGuestHost } from '../helpers/guest.js';
import { waitFor } from '../helpers/host.js';
import { XEN_DOMINF_paused } from '../../shared/abi/domctl.js';
import { GTF_permit_access } from '../../shared/abi/grant_table.js';

t.test('the builder', async (t) => {
  const gh = await startGuestHost(t, { memory: 512 });
  const { d0 } = gh;
  const uuid = '6c3a1a6e-0c47-4b7e-9f65-0123456789ab';

  await t.test('a paused build: start_info, grants, xenstore layout and permissions', async (t) => {
    const d = await gh.build({ name: 'paused1', memoryMB: 16, maxmemMB: 32, vcpus: 1, maxVcpus: 2, uuid,
                               cmdline: 'root=/dev/xvda1', paused: true });
    const id = d.domid;
    const info = (await d0.call('info', { domid: id })).data;
    t.ok(info.flags & XEN_DOMINF_paused, 'left paused');
    t.equal(info.tot_pages, 16 * 256);
    t.equal(info.max_pages, 32 * 256, 'max_mem from maxmem');

    const si = await d0.call('startInfo', { domid: id, pfn: d.startInfoPfn });
    t.match(si, { magic: 'xen-3.0-x86_64', nr_pages: 4096, flags: 0, store_mfn: d.storeMfn, store_evtchn: d.storePort,
                  console_mfn: d.consoleMfn, console_evtchn: d.consolePort, cmd_line: 'root=/dev/xvda1' });
    t.same(await d0.call('grantEntries', { domid: id }), [
      { flags: GTF_permit_access, domid: 0, frame: d.consoleMfn },
      { flags: GTF_permit_access, domid: 0, frame: d.storeMfn },
    ], 'GNTTAB_RESERVED_CONSOLE and _XENSTORE seeded for Dom0');
    t.ok(await d0.call('introduced', { domid: id }), 'introduced to xenstored');

    const home = `/local/domain/${id}`;
    const rd = (p: string) => d0.call('xsRead', { path: p });
    const perms = (p: string) => d0.call('xsPerms', { path: p });
    t.equal(await rd(`${home}/name`), 'paused1');
    t.equal(await rd(`${home}/domid`), String(id));
    t.equal(await rd(`${home}/vm`), `/vm/${uuid}`);
    t.equal(await rd(`${home}/memory/target`), String(16 * 1024));
    t.equal(await rd(`${home}/memory/static-max`), String(32 * 1024));
    t.equal(await rd(`${home}/cpu/0/availability`), 'online');
    t.equal(await rd(`${home}/cpu/1/availability`), 'offline');
    t.equal(await rd(`${home}/store/port`), String(d.storePort));
    t.equal(await rd(`${home}/store/ring-ref`), String(d.storeMfn));
    t.equal(await rd(`${home}/console/port`), String(d.consolePort));
    t.equal(await rd(`${home}/console/ring-ref`), String(d.consoleMfn));
    t.equal(await rd(`${home}/console/type`), 'xenconsoled');
    t.equal(await rd(`${home}/control/shutdown`), '');
    t.equal(await rd(`/vm/${uuid}/name`), 'paused1');
    t.equal(await rd(`/vm/${uuid}/uuid`), uuid);
    t.equal(await rd(`/local/domain/0/backend/console/${id}/0/frontend-id`), String(id));

    t.same(await perms(home), ['n0', `r${id}`], 'home: Dom0 owns, the guest reads');
    t.same(await perms(`${home}/name`), ['n0', `r${id}`]);
    t.same(await perms(`${home}/control`), ['n0', `r${id}`]);
    t.same(await perms(`${home}/control/shutdown`), [`n${id}`], 'control/shutdown: the guest\'s');
    t.same(await perms(`${home}/control/feature-poweroff`), [`n${id}`]);
    t.same(await perms(`${home}/data`), [`n${id}`]);
    t.same(await perms(`${home}/device`), [`n${id}`]);
    t.same(await perms(`${home}/console`), [`n${id}`, 'r0']);
    t.same(await perms(`${home}/console/ring-ref`), ['n0', `r${id}`]);
    t.same(await perms(`/vm/${uuid}`), ['n0', `r${id}`]);
    t.same(await perms(`/libxl/${id}`), ['n0']);

    // Unpaused later, it boots as any other.
    t.equal(await d0.call('unpause', { domid: id }), 0);
    const g = gh.guest(id, 'paused1');
    await g.expect(g.prompt, 20_000);
    t.equal(await g.run('xenstore-write control/feature-s3 1'), '', 'the guest may write a pre-created feature node');
    t.equal(await g.run('xenstore-write control/feature-bogus 1'), 'xenstore-write: could not write path control/feature-bogus\n',
            'but not add its own under control/');
    t.equal(await rd(`${home}/control/feature-poweroff`), '1', 'the guest advertised feature-poweroff');

    await d0.call('destroy', { domid: id });
    t.equal(await d0.call('xsDir', { path: home }), null, 'home removed');
    t.equal(await d0.call('xsDir', { path: `/vm/${uuid}` }), null, '/vm/<uuid> removed');
    t.equal(await d0.call('xsDir', { path: `/libxl/${id}` }), null, '/libxl/<id> removed');
  });

  await t.test('vcpu-set: cpu/<n>/availability reaches the guest', async (t) => {
    const d = await gh.build({ name: 'smp1', memoryMB: 16, vcpus: 2, maxVcpus: 3 });
    const g = gh.guest(d.domid, 'smp1');
    await g.expect(g.prompt, 20_000);
    t.match(await g.run('ps'), /vcpu\/1\n/);
    await d0.call('vcpus', { domid: d.domid, count: 1 });
    await waitFor(async () => !/vcpu\/1/.test(await g.run('ps')), 5000, 'vCPU 1 offline');
    await d0.call('vcpus', { domid: d.domid, count: 3 });
    await waitFor(async () => /vcpu\/2/.test(await g.run('ps')), 5000, 'vCPUs 1 and 2 online');
    t.pass('the guest followed');
    await d0.call('destroy', { domid: d.domid });
  });

  await t.test('refusals leave nothing behind', async (t) => {
    const before = (await d0.call('domains')).num_domains;
    t.match(await d0.call('buildError', { cfg: { name: 'bad name!', memoryMB: 16, vcpus: 1 } }), { code: 'EINVAL' });
    t.match(await d0.call('buildError', { cfg: { name: 'x', memoryMB: 32, maxmemMB: 16, vcpus: 1 } }), { code: 'EINVAL' });
    t.match(await d0.call('buildError', { cfg: { name: 'x', memoryMB: 16, vcpus: 0 } }), { code: 'EINVAL' });
    t.match(await d0.call('buildError', { cfg: { name: 'huge', memoryMB: 4096, vcpus: 1 } }), { code: 'ENOMEM' });
    t.equal((await d0.call('domains')).num_domains, before, 'no half-built domain');
    t.same(await d0.call('xsDir', { path: '/vm' }), [], 'no /vm entries');
  });
});
