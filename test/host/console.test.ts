// A guest's console as a Xen user reaches it: the PTY recorded at
// /local/domain/<id>/console/tty, opened like `screen /dev/pts/N` would
// (prompt, `uname -a`), a second client on the same path, and `xl console`
// with its backlog and Ctrl-] detach.
import t from 'tap';
import { spawn } from 'node:child_process';
import { startHost, XENEMU_CLI } from '../helpers/host.js';
import { PtyClient, list, xenstore, xlOk, writeCfg } from './xl.js';

const PROMPT = /root@c1:~# $/;

t.test('console through the PTY and through xl console', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const xs = await xenstore(t, h);
  const cfg = writeCfg(h, 'c.cfg', 'name = "c1"\nmemory = 32\n');
  const t0 = performance.now();
  await xlOk(h, 'create', cfg);
  const id = (await list(h)).find((r) => r.name === 'c1')!.id;
  const ptyPath = await xs.readString(`/local/domain/${id}/console/tty`);
  t.match(ptyPath, /^\/dev\/pts\/\d+$/);

  const a = new PtyClient(ptyPath);
  t.teardown(() => a.close());
  // The boot log and prompt are queued in the PTY: nobody read them yet.
  await a.until(PROMPT);
  t.comment(`create to prompt: ${(performance.now() - t0).toFixed(0)} ms`);
  t.match(a.text, /Booting paravirtualized kernel on Xen \(domid \d+\)/, 'boot log');

  let from = a.text.length;
  a.write('uname -a\r');
  // The line after the echo is uname's: the kernel's name, release and machine, none of which the typed line holds.
  const m = await a.until(/uname -a\r?\n([^\r\n]+)\r?\n/, from);
  t.equal(m[1], 'Linux c1 xenemu-pv #1 SMP x86_64', `uname -a: ${m[1]}`);
  await a.until(PROMPT, from);

  const b = new PtyClient(ptyPath);
  t.teardown(() => b.close());
  t.pass('a second client opened the same PTY');
  await b.close();

  await t.test('xl console: backlog, a command, Ctrl-] detaches', async (t) => {
    await a.close();
    const child = spawn(process.execPath, [XENEMU_CLI, 'xl', 'console', 'c1'],
      { env: { ...h.env, XENEMU_HOST: h.name }, stdio: ['pipe', 'pipe', 'pipe'] });
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    let out = '';
    const waiters: Array<() => void> = [];
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); waiters.splice(0).forEach((w) => w()); });
    const until = (re: RegExp, from = 0) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in ${JSON.stringify(out.slice(from))}`)), 15_000);
      const check = () => { if (re.test(out.slice(from))) { clearTimeout(timer); resolve(); } else waiters.push(check); };
      check();
    });
    await until(/Booting paravirtualized kernel/);
    t.pass('the backlog shows the boot log');
    from = out.length;
    // The shell removes the quotes: "hello-xl-console" is in the output only
    // if the command ran, never in the echo of the typed line.
    child.stdin.write("echo hello-'xl'-console\r");
    await until(/\nhello-xl-console\r?\n/, from);
    t.pass('typed command ran');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdin.write('\x1d');
    t.equal(await exited, 0, 'Ctrl-] detaches with status 0');
  });
});
