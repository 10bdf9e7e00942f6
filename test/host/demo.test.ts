// `npm start` without a terminal (as in CI): `xenemu demo </dev/null` boots
// a host, creates demo1 and demo2 (each with a disk image in the run
// directory and a vif on xenbr0), lists them, prints demo1's console up to
// the shell prompt, exits 0 and leaves the host up until `xenemu down`.
// Then README.md's "Try it" lists run as printed: the guest commands in
// demo1's console, the host commands in a shell in the repository.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { XENEMU_CLI, DIST, randomHostName, hostGone, productEnv } from '../helpers/host.js';
import { PtyClient } from '../helpers/pty_client.js';
import { liveHostPids, reapHost } from '../../shared/host.js';
import { shmPrefix, shmSweep } from '../../shared/shm.js';
import { XsClient } from '../../shared/xenstore/client.js';
import { DEMO_DOMAIN, DEMO_GUESTS, DEMO_TRY, demoImage } from '../../launcher/demo.js';

const REPO = join(DIST, '..');

interface Run { code: number; stdout: string; stderr: string }

function run(file: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, timeout: 60_000, cwd }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin?.end(); // stdin is not a TTY, and at EOF
  });
}
const xenemu = (args: string[], env: NodeJS.ProcessEnv) => run(process.execPath, [XENEMU_CLI, ...args], env);

/** The lines of the ```sh block after README's `<!-- try: <which>` marker. */
function tryList(readme: string, which: string): string[] {
  const at = readme.indexOf(`<!-- try: ${which}`);
  if (at < 0) throw new Error(`README.md has no "<!-- try: ${which}" block`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error(`no code block after "<!-- try: ${which}"`);
  return m[1]!.split('\n').map((l) => l.trimEnd()).filter(Boolean);
}

t.test('xenemu demo without a terminal, then README\'s try list', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xenemu-demo-'));
  // A private name: the default one's shm prefix could be a real host's.
  const name = randomHostName();
  const rundir = join(root, name);
  const env = productEnv({ XENEMU_RUN_DIR: root });
  t.teardown(async () => {
    await xenemu(['down', name], env);
    reapHost(rundir, name);
    shmSweep(shmPrefix(name));
    rmSync(root, { recursive: true, force: true });
  });
  const t0 = performance.now();
  const r = await xenemu(['demo', '--name', name, '--memory', '1024'], env);
  t.comment(`xenemu demo: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  t.equal(r.code, 0, `exits 0${r.code ? `: ${r.stderr}` : ''}`);
  t.match(r.stdout, /^host \S+ up: hypervisor pid \d+/m, 'booted a host');
  t.match(r.stdout, /^Domain-0 +0 /m, 'xl list: Domain-0');
  for (const g of DEMO_GUESTS) {
    t.match(r.stdout, new RegExp(`^${g.name} +\\d+ +64 +1 `, 'm'), `xl list: ${g.name}`);
    t.match(r.stdout, new RegExp(`^\\$ xl create docs/examples/demo.cfg name=${g.name} .*xvda.*ip=${g.ip.replace(/\./g, '\\.')}`, 'm'),
            `${g.name} created with its disk and address`);
    t.ok(existsSync(demoImage(rundir, g)), `${g.name}'s disk image is in the run directory`);
  }
  t.match(r.stdout, /Booting paravirtualized kernel on Xen/, 'the boot log');
  t.match(r.stdout, /xen_netfront: eth0: .* connected/, 'demo1 has its vif');
  t.match(r.stdout, /blkfront: xvda: 131072 sectors \(64 MiB\)/, 'demo1 has its disk');
  t.match(r.stdout, new RegExp(`root@${DEMO_DOMAIN}:~# `), 'the shell prompt');
  t.match(r.stdout, /create to shell prompt: [\d.]+ s/, 'the time to both prompts');
  t.match(r.stdout, new RegExp(`console ${DEMO_DOMAIN} +attach \\(Ctrl-\\] detaches\\)`), 'how to attach');
  t.match(r.stdout, /down \S+ +stop it/, 'how to stop');
  const pids = liveHostPids(rundir, name);
  t.ok(pids.length >= 4, 'the host is still up, with both guests');

  const again = await xenemu(['demo', '--name', name], env);
  t.equal(again.code, 0, 'a second demo reuses the host and the guests');
  t.match(again.stdout, /already up/, 'says the host is up');
  t.notMatch(again.stdout, /xl create/, 'creates nothing');

  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');

  await t.test('the console list runs in demo1 as printed', async (t) => {
    const lines = tryList(readme, `console ${DEMO_DOMAIN}`);
    t.same(lines, DEMO_TRY, 'README lists what the demo suggests');
    const xs = await XsClient.connect(join(rundir, 'xenstored.sock'));
    t.teardown(() => xs.close());
    const domid = (await xenemu(['xl', 'domid', DEMO_DOMAIN], env)).stdout.trim();
    const pty = new PtyClient(await xs.readString(`/local/domain/${domid}/console/tty`));
    t.teardown(() => pty.close());
    const prompt = new RegExp(`root@${DEMO_DOMAIN}:~# $`);
    const files = new Map<string, string>();
    for (const line of lines) {
      const from = pty.text.length;
      pty.write(`${line}\r`);
      await pty.until(prompt, from + line.length, 30_000);
      const raw = pty.text.slice(from).replace(/\r/g, '');
      const out = raw.slice(raw.indexOf('\n') + 1).replace(prompt, ''); // without the echo and the prompt
      const [cmd, ...args] = line.split(/\s+/);
      switch (cmd) {
        case 'ping': {
          const ip = args[args.length - 1]!;
          const other = DEMO_GUESTS.find((g) => g.ip === ip);
          t.ok(other && other.name !== DEMO_DOMAIN, `${line}: ${ip} is the other guest`);
          const n = Number(args[args.indexOf('-c') + 1]);
          t.match(out, new RegExp(`64 bytes from ${ip.replace(/\./g, '\\.')}: icmp_seq=1 ttl=64`), `${line}: replies`);
          t.match(out, new RegExp(`${n} packets transmitted, ${n} received, 0% packet loss`), `${line}: all ${n} answered`);
          break;
        }
        case 'mkfs':
          t.match(out, new RegExp(`mounted ${args[0]} on /`), `${line}: formatted and mounted`);
          break;
        case 'write':
          t.equal(out, '', `${line}: no complaint`);
          files.set(args[0]!, `${args.slice(1).join(' ')}\n`);
          break;
        case 'cat': {
          const text = files.get(args[0]!);
          t.ok(text, `${line}: reads a file written before`);
          t.equal(out, text, `${line}: the file read back`);
          t.ok(readFileSync(demoImage(rundir, DEMO_GUESTS[0]!)).includes(Buffer.from(text!)), `${line}: the text is in ${DEMO_DOMAIN}.img on the host`);
          break;
        }
        case 'ls':
          for (const [f, text] of files) t.match(out, new RegExp(` ${text.length} .* ${f}$`, 'm'), `${line}: ${f}, ${text.length} bytes`);
          break;
        default:
          t.fail(`README's console list has \`${line}\`, which this test does not check`);
      }
    }
  });

  await t.test('the host list runs in the repository as printed', async (t) => {
    const lines = tryList(readme, 'host');
    const shEnv = { ...env, PATH: `${dirname(process.execPath)}:${env.PATH ?? ''}` };
    for (const full of lines) {
      const r = await run('sh', ['-c', full], shEnv, REPO);
      const line = full.replace(/\s+#.*$/, ''); // for the messages
      t.equal(r.code, 0, `${line}: exit 0${r.code ? `: ${r.stderr}` : ''}`);
      if (/ xl list\b/.test(line)) {
        for (const n of ['Domain-0', ...DEMO_GUESTS.map((g) => g.name)]) t.match(r.stdout, new RegExp(`^${n} +\\d+ `, 'm'), `${line}: ${n}`);
      } else if (/ xl top\b/.test(line)) {
        t.match(r.stdout, /^xentop - /m, `${line}: xentop's header`);
        for (const g of DEMO_GUESTS) t.match(r.stdout, new RegExp(`^ *${g.name} +[-a-z]{6} `, 'm'), `${line}: ${g.name}`);
      } else if (/^pgrep /.test(line)) {
        t.match(r.stdout, new RegExp(`^\\d+ xenemu-hypervisor host=${name}$`, 'm'), `${line}: the hypervisor`);
        t.match(r.stdout, new RegExp(`^\\d+ xenemu-dom0 host=${name}$`, 'm'), `${line}: Domain-0`);
        for (const g of DEMO_GUESTS) t.match(r.stdout, new RegExp(`^\\d+ xenemu-domU ${g.name} domid=\\d+ host=${name}$`, 'm'), `${line}: ${g.name}`);
      } else {
        t.fail(`README's host list has \`${line}\`, which this test does not check`);
      }
    }
  });

  const d = await xenemu(['down', name], env);
  t.equal(d.code, 0, 'xenemu down');
  t.ok(hostGone(rundir, name, pids), 'nothing left after xenemu down');
  t.notOk(existsSync(rundir), 'the run directory, disk images included, is gone');
});
