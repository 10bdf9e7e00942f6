// The hypervisor's spare guest process (processes/hypervisor/spare.ts): a
// guest created once the host is up runs in the spare, which logs to
// dom<id>.log and boots to its prompt; a new spare is made for the next one;
// whatever is spare when the host goes down goes with it.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startHost, waitFor } from '../helpers/host.js';
import { isHostProcess, procCmdline } from '../../shared/host.js';
import { spareTitle } from '../../shared/runtime/title.js';
import { PtyClient, list, xenstore, xlOk, writeCfg } from './xl.js';

/** Every live process of host `name`, found by its title in /proc (not by host.json). */
function hostProcesses(name: string): Array<{ pid: number; argv: string[] }> {
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const e of fs.readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || !isHostProcess(pid, name)) continue;
    const argv = procCmdline(pid);
    if (argv.length) out.push({ pid, argv });
  }
  return out;
}

const spares = (name: string) => hostProcesses(name).filter((p) => p.argv[0] === spareTitle(name));

t.test('guests start in the spare process; nothing spare outlives the host', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const xs = await xenstore(t, h);
  // Dom0 ready: the first spare is on its way.
  await waitFor(() => spares(h.name).length === 1, 20_000, 'a spare after Dom0 is ready');
  const spare = spares(h.name)[0]!.pid;

  const cfg = writeCfg(h, 's.cfg', 'name = "s1"\nmemory = 16\n');
  await xlOk(h, 'create', cfg);
  const id = (await list(h)).find((r) => r.name === 's1')!.id;
  const rec = JSON.parse(fs.readFileSync(path.join(h.rundir, 'host.json'), 'utf8')) as { pids: { domains: Record<string, number> } };
  t.equal(rec.pids.domains[id], spare, 'the guest runs in the spare (host.json has its pid)');

  const pty = new PtyClient(await xs.readString(`/local/domain/${id}/console/tty`));
  t.teardown(() => pty.close());
  await pty.until(/root@s1:~# $/);
  t.pass('it boots to its prompt');
  t.ok(fs.existsSync(path.join(h.rundir, 'logs', `dom${id}.log`)), `its output goes to logs/dom${id}.log`);

  // The guest said hello: the next spare is made.
  await waitFor(() => spares(h.name).some((p) => p.pid !== spare), 20_000, 'a new spare');
  const all = hostProcesses(h.name).map((p) => p.pid);
  await h.down();
  await waitFor(() => all.every((p) => !isHostProcess(p, h.name)), 10_000, 'every process of the host gone');
  t.same(hostProcesses(h.name), [], 'no process of the host is left, the unused spare included');
});
