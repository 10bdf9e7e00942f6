// xend's restart guard (processes/dom0/xend/xen_toolstack.ts, as xl's):
// a guest with on_crash = "restart" that crashes at every boot is restarted
// 5 times, then, the 6th crash within 10 s, left destroyed; without the
// guard it would be rebuilt forever and this test would time out waiting
// for the guard's message.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { list, xlOk, writeCfg } from './xl.js';

const CRASH_GUEST = join(DIST, 'test', 'fixtures', 'crash_guest.js');

t.test('more than 5 restarts of one name within 10 s stop the restarting', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const dom0Log = () => { try { return readFileSync(join(h.rundir, 'logs', 'dom0.log'), 'utf8'); } catch { return ''; } };
  const cfg = writeCfg(h, 'crash.cfg', `name = "crashy"\nmemory = 16\nkernel = "${CRASH_GUEST}"\non_crash = "restart"\n`);
  const t0 = performance.now();
  await xlOk(h, 'create', cfg);
  const stopped = /'crashy' restarted 5 times in 10 s: not restarting it again/;
  await waitFor(() => stopped.test(dom0Log()), 20_000, 'xend to stop restarting crashy');
  t.comment(`6 crashes and 5 restarts in ${(performance.now() - t0).toFixed(0)} ms`);
  const log = dom0Log();
  t.equal(log.match(/xend: d\d+ 'crashy' shut down \(crash\): restart/g)?.length, 6, 'six crashes acted upon');
  t.equal(log.match(/xend: 'crashy' restarted as d\d+/g)?.length, 5, 'five restarts');
  t.notOk((await list(h)).some((r) => r.name === 'crashy'), 'the last one is gone, not rebuilt');
  t.match(readFileSync(join(h.rundir, 'logs', 'hypervisor.log'), 'utf8'), /crash_guest: d\d+ panics at boot/, 'each boot ran the crashing kernel');
});
