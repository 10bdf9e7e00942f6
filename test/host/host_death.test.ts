// SIGKILL of Domain-0 or of the hypervisor, with a guest running: the whole
// host goes within 2 s and leaves nothing (no process, no /dev/shm segment,
// no socket, no PTY holder).
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startHost, waitFor, hostGone, readHostRecord, processAlive } from '../helpers/host.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import type { TestHost } from '../helpers/host.js';
import { xlOk, writeCfg } from './xl.js';

async function hostWithGuest(t: Parameters<typeof startHost>[0]): Promise<{ h: TestHost; pids: number[] }> {
  const h = await startHost(t, { memory: 512, pcpus: 1 });
  await xlOk(h, 'create', writeCfg(h, 'g.cfg', 'name = "g"\nmemory = 32\n'));
  // The guest's process is spawned on its first unpause: wait for its record.
  await waitFor(() => Object.keys(readHostRecord(h.rundir)?.pids.domains ?? {}).length === 2, 5000, 'guest pid recorded');
  const pids = h.pids();
  return { h, pids };
}

const noLeftovers = (h: TestHost, pids: number[]) =>
  hostGone(h.rundir, h.name, pids) && !existsSync(join(h.rundir, 'xend.sock')) && !existsSync(join(h.rundir, 'xenstored.sock'));

for (const victim of ['Domain-0', 'hypervisor'] as const) {
  t.test(`SIGKILL of ${victim} takes the host down within 2 s`, async (t) => {
    const { h, pids } = await hostWithGuest(t);
    t.ok(pids.length >= 3, `hypervisor, Domain-0 and the guest run (${pids.join(' ')})`);
    const rec = readHostRecord(h.rundir)!;
    const pid = victim === 'hypervisor' ? rec.pids.hypervisor : rec.pids.domains['0']!;
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    // Not our children: nothing signals their exit to us, so poll (20 ms).
    await waitFor(() => noLeftovers(h, pids), 2000, 'host gone');
    t.comment(`gone in ${(performance.now() - t0).toFixed(0)} ms`);
    t.same(pids.filter(processAlive), [], 'no process left');
    t.same(shmList(shmPrefix(h.name)), [], 'no segment left');
  });
}
