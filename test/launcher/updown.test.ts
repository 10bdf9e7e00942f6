// xenemu up/down/status with two hosts side by side, real Dom0.
import t from 'tap';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHost, waitFor, hostGone } from '../helpers/host.js';
import { shmList, shmPrefix, shmCreate } from '../../shared/shm.js';
import { PAGE_SIZE } from '../../shared/abi/xen.js';

t.test('two hosts side by side', async (t) => {
  const a = await startHost(t, { memory: 1024, pcpus: 2 });
  const b = await startHost(t, { memory: 512, pcpus: 1 });
  t.ok(existsSync(join(a.rundir, 'ready')) && existsSync(join(b.rundir, 'ready')), 'both ready');
  t.ok(existsSync(join(a.rundir, 'xenstored.sock')), 'Dom0 services created their sockets');
  t.not(a.hypervisorPid, b.hypervisorPid);

  const sa = (await a.xenemu('status')).stdout;
  t.match(sa, new RegExp(`${a.name}\\s+${a.hypervisorPid}\\s+1024\\s+2\\s+1\\s+ready`), 'status row of host a');
  const sb = (await b.xenemu('status')).stdout;
  t.match(sb, new RegExp(`${b.name}\\s+${b.hypervisorPid}\\s+512\\s+1\\s+1\\s+ready`), 'status row of host b');

  const again = await a.xenemu('up', '--name', a.name).catch((e: { stderr: string; code: number }) => e);
  t.match((again as { stderr: string }).stderr, /already running/, 'a second up of the same name is refused');

  const pidsA = a.pids();
  await a.down();
  t.ok(hostGone(a.rundir, a.name, pidsA), 'host a: no process, no segment');
  t.notOk(existsSync(a.rundir), 'host a: run dir removed');
  t.ok(b.pids().length >= 2, 'host b still runs');
  t.ok(shmList(shmPrefix(b.name)).length > 0, 'host b keeps its segments');
  const pidsB = b.pids();
  await b.down();
  await waitFor(() => hostGone(b.rundir, b.name, pidsB), 5000, 'host b gone');
  t.same(shmList(shmPrefix(b.name)), []);
});

t.test('status cleans up after a dead host', async (t) => {
  const h = await startHost(t, { memory: 256, pcpus: 1 });
  const pids = h.pids();
  process.kill(h.hypervisorPid, 'SIGKILL');
  await waitFor(() => hostGone(h.rundir, h.name, pids), 4000, 'processes gone');
  // Leftovers as a crash could leave them: a stale record and a segment.
  mkdirSync(join(h.rundir, 'logs'), { recursive: true });
  writeFileSync(join(h.rundir, 'hypervisor.pid'), `${h.hypervisorPid}\n`);
  shmCreate(`${shmPrefix(h.name)}dom9.mem`, PAGE_SIZE);
  const out = (await h.xenemu('status')).stdout;
  t.match(out, new RegExp(`cleaned up dead host ${h.name}`));
  t.notOk(existsSync(h.rundir), 'stale run dir removed');
  t.same(shmList(shmPrefix(h.name)), [], 'segments swept');
});
