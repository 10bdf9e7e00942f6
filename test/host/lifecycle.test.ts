// Domains' lives as xl users see them: shutdown -w, reboot (a new domid, as
// xl gives), and crashes (a SIGKILLed guest process) handled by on_crash =
// restart and preserve. Waits are on events: xend's waitForShutdown (long
// poll driven by VIRQ_DOM_EXC) and xenstore's @introduceDomain/@releaseDomain.
import t from 'tap';
import { startHost, waitFor, readHostRecord, processAlive } from '../helpers/host.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import { XmlRpcFault, XMLRPC_ERROR_INVALID_DOMAIN } from '../../shared/xmlrpc.js';
import type { TestHost } from '../helpers/host.js';
import { list, onWatch, xend, xenstore, xl, xlOk, writeCfg } from './xl.js';

async function domid(h: TestHost, name: string): Promise<number | undefined> {
  return (await list(h)).find((r) => r.name === name)?.id;
}

/** The guest's process, once the hypervisor has recorded it. */
async function guestPid(h: TestHost, id: number): Promise<number> {
  return waitFor(() => readHostRecord(h.rundir)?.pids.domains[String(id)], 5000, `pid of d${id}`) as Promise<number>;
}

/** xend's long poll: true once the domain shut down or is gone (unknown to xend: gone already). */
async function waitForShutdown(h: TestHost, id: number, seconds: number): Promise<boolean> {
  try {
    return (await xend(h, 'xend.domain.waitForShutdown', String(id), seconds)) === true;
  } catch (e) {
    if (e instanceof XmlRpcFault && e.faultCode === XMLRPC_ERROR_INVALID_DOMAIN) return true;
    throw e;
  }
}

t.test('lifecycle', async (t) => {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const xs = await xenstore(t, h);
  const base = 'memory = 32\non_poweroff = "destroy"\non_reboot = "restart"\n';
  const cfg = writeCfg(h, 'l.cfg', base);

  await t.test('shutdown -w: the guest powers off and is destroyed', async (t) => {
    await xlOk(h, 'create', cfg, 'name=s1');
    const id = (await domid(h, 's1'))!;
    const r = await xl(h, ['shutdown', '-w', 's1']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, `Shutting down domain ${id}`);
    t.match(r.stderr, `Domain ${id} has been shut down`);
    await waitFor(async () => (await domid(h, 's1')) === undefined, 5000, 's1 destroyed');
    t.equal(await xs.tryRead(`/local/domain/${id}`), null, 'xenstore home removed');
    await waitFor(() => !shmList(shmPrefix(h.name)).some((s) => s.includes(`.dom${id}.`)), 5000, 'segments gone');
  });

  await t.test('reboot: restarted with a new domid, as xl does', async (t) => {
    await xlOk(h, 'create', cfg, 'name=r1');
    const id = (await domid(h, 'r1'))!;
    const back = onWatch(xs, '@introduceDomain', async () => {
      const n = await domid(h, 'r1');
      return n !== undefined && n !== id ? n : undefined;
    });
    const r = await xl(h, ['reboot', '-w', 'r1']);
    t.equal(r.code, 0, r.stderr);
    const newId = await back;
    t.not(newId, id, `r1 came back as d${newId}`);
    t.equal(await xs.tryRead(`/local/domain/${id}`), null, 'the old home is gone');
    t.equal(await xs.readString(`/local/domain/${newId}/name`), 'r1');
    await xlOk(h, 'destroy', 'r1');
  });

  await t.test('on_crash=restart: a SIGKILLed guest shows as crashed within 1 s, then restarts', async (t) => {
    await xlOk(h, 'create', cfg, 'name=k1', 'on_crash=restart');
    const id = (await domid(h, 'k1'))!;
    const pid = await guestPid(h, id);
    const back = onWatch(xs, '@introduceDomain', async () => {
      const n = await domid(h, 'k1');
      return n !== undefined && n !== id ? n : undefined;
    });
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    t.equal(await waitForShutdown(h, id, 1), true, 'shut down (crashed) or gone within 1 s');
    t.ok(performance.now() - t0 < 1000, `noticed in ${(performance.now() - t0).toFixed(0)} ms`);
    const newId = await back;
    t.not(newId, id, `restarted as d${newId}`);
    t.notOk(processAlive(pid), 'the old process is gone');
    t.match(await xlOk(h, 'dmesg'), new RegExp(`d${id}: shutdown \\(crash\\)`), 'the hypervisor marked it crashed');
    t.match((await list(h)).find((r) => r.id === newId)!.state, /^[-r][-b]----$/, 'running again');
    await xlOk(h, 'destroy', 'k1');
  });

  await t.test('on_crash=preserve: the crashed domain stays, shown as crashed', async (t) => {
    await xlOk(h, 'create', cfg, 'name=p1', 'on_crash=preserve');
    const id = (await domid(h, 'p1'))!;
    const pid = await guestPid(h, id);
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    t.equal(await waitForShutdown(h, id, 1), true, 'crashed within 1 s');
    t.ok(performance.now() - t0 < 1000);
    const row = (await list(h)).find((r) => r.name === 'p1');
    t.match(row, { id, state: '---sc-' }, 'kept, flags s and c');
    t.equal(await xs.readString(`/local/domain/${id}/name`), 'p1', 'its xenstore home is kept');
    const released = onWatch(xs, '@releaseDomain', async () => !(await xs.isDomainIntroduced(id)));
    await xlOk(h, 'destroy', 'p1');
    await released;
    t.pass('destroy released it (@releaseDomain)');
    t.equal(await domid(h, 'p1'), undefined);
  });

  await t.test('on_crash=rename-restart: the crashed one renamed and kept, a new one started', async (t) => {
    await xlOk(h, 'create', cfg, 'name=n1', 'on_crash=rename-restart');
    const id = (await domid(h, 'n1'))!;
    const pid = await guestPid(h, id);
    const back = onWatch(xs, '@introduceDomain', async () => {
      const n = await domid(h, 'n1');
      return n !== undefined && n !== id ? n : undefined;
    });
    process.kill(pid, 'SIGKILL');
    const newId = await back;
    const rows = await list(h);
    const old = rows.find((r) => r.id === id);
    t.match(old, { name: /^n1--\d{8}T\d{4}Z$/, state: '---sc-' }, `the crashed one is kept as ${old?.name}`);
    t.match(rows.find((r) => r.id === newId), { name: 'n1' }, `a new n1 as d${newId}`);
    await xlOk(h, 'destroy', String(id));
    await xlOk(h, 'destroy', 'n1');
  });

  await t.test('on_crash=destroy (default): gone', async (t) => {
    await xlOk(h, 'create', cfg, 'name=d1');
    const id = (await domid(h, 'd1'))!;
    const pid = await guestPid(h, id);
    const released = onWatch(xs, '@releaseDomain', async () => !(await xs.isDomainIntroduced(id)));
    process.kill(pid, 'SIGKILL');
    await released;
    t.equal(await domid(h, 'd1'), undefined, 'destroyed');
    t.equal(await xs.tryRead(`/local/domain/${id}`), null);
  });
});
