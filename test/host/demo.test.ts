// `npm start` without a terminal (as in CI): `xenemu demo </dev/null` boots
// a host, creates the demo guest, lists it, prints its console up to the
// shell prompt, exits 0 and leaves the host up until `xenemu down`.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XENEMU_CLI, randomHostName, hostGone } from '../helpers/host.js';
import { liveHostPids, reapHost } from '../../shared/host.js';
import { shmPrefix, shmSweep } from '../../shared/shm.js';

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [XENEMU_CLI, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin?.end(); // stdin is not a TTY, and at EOF
  });
}

t.test('xenemu demo without a terminal', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xenemu-demo-'));
  // A private name: the default one's shm prefix could be a real host's.
  const name = randomHostName();
  const rundir = join(root, name);
  const env = { ...process.env, XENEMU_RUN_DIR: root };
  t.teardown(async () => {
    await run(['down', name], env);
    reapHost(rundir, name);
    shmSweep(shmPrefix(name));
    rmSync(root, { recursive: true, force: true });
  });
  const r = await run(['demo', '--name', name, '--memory', '1024'], env);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^host \S+ up: hypervisor pid \d+/m, 'booted a host');
  t.match(r.stdout, /^Domain-0 +0 /m, 'xl list: Domain-0');
  t.match(r.stdout, /^demo +\d+ +64 +1 /m, 'xl list: the demo guest');
  t.match(r.stdout, /Booting paravirtualized kernel on Xen/, 'the boot log');
  t.match(r.stdout, /root@demo:~# /, 'the shell prompt');
  t.match(r.stdout, /create to shell prompt: [\d.]+ s/);
  t.match(r.stdout, /console demo +attach \(Ctrl-\] detaches\)/, 'how to attach');
  t.match(r.stdout, /down \S+ +stop it/, 'how to stop');
  const pids = liveHostPids(rundir, name);
  t.ok(pids.length >= 3, 'the host is still up, with the guest');

  const again = await run(['demo', '--name', name], env);
  t.equal(again.code, 0, 'a second demo reuses the host and the guest');
  t.match(again.stdout, /already up/);
  t.notMatch(again.stdout, /xl create/);

  const d = await run(['down', name], env);
  t.equal(d.code, 0);
  t.ok(hostGone(rundir, name, pids), 'nothing left after xenemu down');
});
