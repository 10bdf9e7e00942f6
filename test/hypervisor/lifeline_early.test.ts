// Regression: a domain process installed its lifeline watch only after the
// hypervisor answered its hello, so a spare assigned a domain just as its
// hypervisor died waited for that hello forever, orphaned (seen after a test
// host's teardown). The lifeline is now watched from the start.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lifelineEnv, lifelineStdio } from '../../shared/runtime/lifeline.js';
import { DIST } from '../helpers/xenstored.js';

t.test('a domain waiting for its hello exits when the hypervisor dies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-lifeline-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Nobody listens at its hypercall endpoint: the hello is never answered.
  const child = spawn(process.execPath, [join(DIST, 'processes', 'domu', 'main.js'), '--host', 'lifeline', '--domid', '7'], {
    stdio: lifelineStdio('ignore'),
    env: lifelineEnv({ ...process.env, XENEMU_HOST: 'lifeline', XENEMU_HOST_DIR: dir, XENEMU_DOMID: '7',
                       XENEMU_HYPERCALL: `ipc://${join(dir, 'nobody.hypercall')}` }),
  });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise((r) => setTimeout(r, 300)); // let it start and send its hello
  const t0 = Date.now();
  (child.stdio[3] as unknown as { destroy(): void }).destroy(); // what the kernel does when the hypervisor dies
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000))]);
  t.equal(code, 0, `exited ${Date.now() - t0} ms after its lifeline closed`);
});
