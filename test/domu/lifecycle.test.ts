// A guest obeys control/shutdown (poweroff, reboot and suspend reach the
// hypervisor as shutdown reasons; docs/saverestore.md for suspend), its shell's poweroff/reboot/
// crash do too, it follows memory/target with the hypervisor's accounting,
// and nothing is left once the host is down.
import t from 'tap';
import { startGuestHost, type GuestHost } from '../helpers/guest.js';
import { waitFor, hostGone } from '../helpers/host.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import { SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend } from '../../shared/abi/sched.js';

async function boot(gh: GuestHost, name: string, extra: Record<string, unknown> = {}) {
  const d = await gh.build({ name, memoryMB: 32, vcpus: 1, ...extra });
  const g = gh.guest(d.domid, name);
  await g.expect(g.prompt, 20_000);
  return g;
}

t.test('shutdown requests, shell shutdowns, ballooning, teardown', async (t) => {
  const gh = await startGuestHost(t, { memory: 1024 });
  const { d0, host } = gh;
  const segs = (domid: number) => shmList(shmPrefix(host.name)).filter((s) => s.includes(`.dom${domid}.`));

  const [a, b, c, e, f, m, s] = await Promise.all(['off1', 'rb1', 'crash1', 'sh-off', 'sh-rb', 'balloon1', 'susp1'].map((n) =>
    boot(gh, n, n === 'balloon1' ? { memoryMB: 64, maxmemMB: 128 } : {})));

  await t.test('control/shutdown poweroff -> SHUTDOWN_poweroff, node cleared', async (t) => {
    await d0.call('shutdown', { domid: a.domid, reason: 'poweroff' });
    t.same(await d0.call('wait', { domid: a.domid, timeoutMs: 10_000 }), { state: 'shutdown', reason: SHUTDOWN_poweroff });
    t.equal(await d0.call('xsRead', { path: `/local/domain/${a.domid}/control/shutdown` }), '', 'the guest cleared it');
    await a.expect('reboot: Power down');
  });

  await t.test('control/shutdown reboot -> SHUTDOWN_reboot', async (t) => {
    await d0.call('shutdown', { domid: b.domid, reason: 'reboot' });
    t.same(await d0.call('wait', { domid: b.domid, timeoutMs: 10_000 }), { state: 'shutdown', reason: SHUTDOWN_reboot });
    await b.expect('reboot: Restarting system');
  });

  await t.test('control/shutdown suspend -> SHUTDOWN_suspend, node cleared, the record in its pages', async (t) => {
    await d0.call('shutdown', { domid: s.domid, reason: 'suspend' });
    t.same(await d0.call('wait', { domid: s.domid, timeoutMs: 10_000 }), { state: 'shutdown', reason: SHUTDOWN_suspend });
    t.equal(await d0.call('xsRead', { path: `/local/domain/${s.domid}/control/shutdown` }), '', 'the guest cleared it');
    await s.expect('suspending (xl save or migration)');
  });

  await t.test('shell crash -> SHUTDOWN_crash', async (t) => {
    await c.type('crash\r');
    t.same(await d0.call('wait', { domid: c.domid, timeoutMs: 10_000 }), { state: 'shutdown', reason: SHUTDOWN_crash });
    await c.expect('Kernel panic');
  });

  await t.test('shell poweroff and reboot', async (t) => {
    await e.type('poweroff\r');
    await f.type('reboot\r');
    t.same(await d0.call('wait', { domid: e.domid, timeoutMs: 10_000 }), { state: 'shutdown', reason: SHUTDOWN_poweroff });
    t.same(await d0.call('wait', { domid: f.domid, timeoutMs: 10_000 }), { state: 'shutdown', reason: SHUTDOWN_reboot });
  });

  await t.test('memory/target: the balloon moves and the hypervisor accounting follows', async (t) => {
    const info = async () => (await d0.call('info', { domid: m.domid })).data;
    const free0 = (await d0.call('physinfo')).free_pages as number;
    t.equal((await info()).tot_pages, 64 * 256, 'starts at 64 MB');
    t.match(await m.run('free'), /Mem:\s+65536 /);

    await d0.call('memTarget', { domid: m.domid, mb: 32 });
    await waitFor(async () => (await info()).tot_pages === 32 * 256, 10_000, 'balloon down to 32 MB');
    t.equal((await d0.call('physinfo')).free_pages, free0 + 32 * 256, 'the host got 32 MB back');
    t.match(await m.run('free'), /Mem:\s+32768 /, 'free follows');

    await d0.call('memTarget', { domid: m.domid, mb: 128 });
    await waitFor(async () => (await info()).tot_pages === 128 * 256, 10_000, 'balloon up to 128 MB (static-max)');
    t.match(await m.run('free -m'), /Mem:\s+128 /);
    t.equal((await d0.call('physinfo')).free_pages, free0 - 64 * 256, 'the host lent 64 MB more');
    t.equal(await m.run('xenstore-read memory/target'), `${128 * 1024}\n`);
  });

  await t.test('destroy frees everything of each guest', async (t) => {
    for (const g of [a, b, c, e, f, m, s]) {
      const pid = (await d0.call('info', { domid: g.domid })).data.pid as number;
      await d0.call('destroy', { domid: g.domid });
      t.equal((await d0.call('info', { domid: g.domid })).ret, -3, `d${g.domid} is gone`);
      t.same(segs(g.domid), [], `d${g.domid}: no segments`);
      t.equal(await d0.call('xsDir', { path: `/local/domain/${g.domid}` }), null, `d${g.domid}: no xenstore home`);
      t.notOk(await d0.call('introduced', { domid: g.domid }), `d${g.domid}: released from xenstored`);
      if (pid) await waitFor(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 5000, `pid ${pid} gone`);
    }
  });

  const pids = host.pids();
  await host.down();
  await waitFor(() => hostGone(host.rundir, host.name, pids), 5000, 'host gone');
  t.pass('no process and no segment left');
});
