// `ps` tells a host's processes apart (docs/design.md §1): the hypervisor,
// Domain-0, each guest by name and domid, and the spare guest process, as
// /proc/<pid>/cmdline, `ps -o args` and `pgrep -f` see them; the titles
// follow a spare becoming a guest, a rename in xenstore and a
// rename-restart; host.json lists the spares.
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, productEnv, startHost, waitFor, readHostRecord, type TestHost } from '../helpers/host.js';
import { cmdlineHost, procCmdline } from '../../shared/host.js';
import { dom0Title, domUTitle, hypervisorTitle, spareTitle } from '../../shared/runtime/title.js';
import { PtyClient, list, onWatch, xenstore, xlOk, writeCfg } from './xl.js';

/** Runs a procps tool; its stdout and exit code (pgrep exits 1 when nothing matches). */
function procps(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout }));
  });
}

const psArgs = async (pid: number) => (await procps('ps', ['-o', 'args=', '-p', String(pid)])).out.trim();
const pgrep = async (pattern: string) =>
  (await procps('pgrep', ['-f', pattern])).out.split('\n').filter(Boolean).map(Number).sort((a, b) => a - b);

/** /proc/<pid>/cmdline as bytes: the title, then only NULs (libuv zeroes the rest of the original argv). */
const rawCmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'latin1');

/** Checks a process's title three ways. */
async function hasTitle(t: Test, pid: number, title: string, who: string): Promise<void> {
  t.match(rawCmdline(pid), new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\0+$`), `${who}: /proc/${pid}/cmdline is "${title}" and NULs`);
  t.equal(await psArgs(pid), title, `${who}: ps -o args`);
}

const spares = (h: TestHost) => readHostRecord(h.rundir)?.pids.spares ?? [];
const domainPid = (h: TestHost, id: number) => readHostRecord(h.rundir)?.pids.domains[String(id)];

/** Creates a guest, waits for its shell prompt; its domid and pid. */
async function boot(t: Test, h: TestHost, name: string, extra = ''): Promise<{ id: number; pid: number }> {
  const xs = await xenstore(t, h);
  await xlOk(h, 'create', writeCfg(h, `${name}.cfg`, `name = "${name}"\nmemory = 32\n${extra}`));
  const id = (await list(h)).find((r) => r.name === name)!.id;
  const pty = new PtyClient(await xs.readString(`/local/domain/${id}/console/tty`));
  t.teardown(() => pty.close());
  await pty.until(new RegExp(`root@${name}:~# $`));
  return { id, pid: (await waitFor(() => domainPid(h, id), 5000, `pid of d${id}`))! };
}

t.test('ps, /proc/<pid>/cmdline and pgrep -f tell every process of a host apart', async (t) => {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const xs = await xenstore(t, h);
  // Names of this run alone: pgrep looks at every process of the machine.
  const tag = randomBytes(3).toString('hex');
  const [a, b, c] = ['a', 'b', 'c'].map((x) => `ps${x}${tag}`) as [string, string, string];

  await hasTitle(t, h.hypervisorPid, hypervisorTitle(h.name), 'hypervisor');
  await hasTitle(t, domainPid(h, 0)!, dom0Title(h.name), 'Domain-0');
  const spare1 = (await waitFor(() => spares(h)[0], 20_000, 'a spare listed in host.json'))!;
  await hasTitle(t, spare1, spareTitle(h.name), 'the spare');

  // The spare becomes guest a; a new spare is made.
  const ga = await boot(t, h, a);
  t.equal(ga.pid, spare1, 'guest a runs in the former spare');
  await hasTitle(t, ga.pid, domUTitle(h.name, ga.id, a), 'guest a (the former spare)');
  const spare2 = (await waitFor(() => spares(h).find((p) => p !== spare1), 20_000, 'a new spare'))!;
  await hasTitle(t, spare2, spareTitle(h.name), 'the new spare');

  const gb = await boot(t, h, b);
  t.equal(gb.pid, spare2, 'guest b runs in the second spare');
  await hasTitle(t, gb.pid, domUTitle(h.name, gb.id, b), 'guest b');
  const spare3 = (await waitFor(() => spares(h).find((p) => p !== spare2), 20_000, 'a third spare'))!;

  t.same(await pgrep(a), [ga.pid], `pgrep -f ${a}: guest a's process alone`);
  t.same(await pgrep(b), [gb.pid], `pgrep -f ${b}: guest b's process alone`);
  t.same(await pgrep(`xenemu-domU spare host=${h.name}$`), [spare3], 'pgrep -f "xenemu-domU spare host=H": the spare alone');
  t.same(spares(h), [spare3], 'host.json lists the spare');
  t.same(await pgrep(`^xenemu-[a-zA-Z0-9]+ .*host=${h.name}$`),
         [h.hypervisorPid, domainPid(h, 0)!, ga.pid, gb.pid, spare3].sort((x, y) => x - y),
         'the host is these five processes');

  await t.test('a rename in xenstore (what xl rename writes) renames the process', async (t) => {
    const renamed = `${a}r`;
    await xs.write(`/local/domain/${ga.id}/name`, renamed);
    await waitFor(async () => (await psArgs(ga.pid)) === domUTitle(h.name, ga.id, renamed), 10_000, 'the new title');
    await hasTitle(t, ga.pid, domUTitle(h.name, ga.id, renamed), 'guest a renamed');
    t.same(await pgrep(renamed), [ga.pid], `pgrep -f ${renamed}`);
  });

  await t.test('rename-restart: the new guest has the name, no process has the old one', async (t) => {
    const gc = await boot(t, h, c, 'on_crash = "rename-restart"\n');
    t.same(await pgrep(c), [gc.pid], `pgrep -f ${c} before the crash`);
    const back = onWatch(xs, '@introduceDomain', async () => {
      const n = (await list(h)).find((r) => r.name === c)?.id;
      return n !== undefined && n !== gc.id ? n : undefined;
    });
    process.kill(gc.pid, 'SIGKILL');
    const newId = await back;
    const old = (await list(h)).find((r) => r.id === gc.id)!;
    t.match(old.name, new RegExp(`^${c}--\\d{8}T\\d{4}Z$`), `the crashed domain is kept as ${old.name}, without a process`);
    const pty = new PtyClient(await xs.readString(`/local/domain/${newId}/console/tty`));
    t.teardown(() => pty.close());
    await pty.until(new RegExp(`root@${c}:~# $`));
    const pid = (await waitFor(() => domainPid(h, newId), 5000, `pid of d${newId}`))!;
    await hasTitle(t, pid, domUTitle(h.name, newId, c), `the restarted ${c}`);
    t.same(await pgrep(c), [pid], `pgrep -f ${c}: the restarted guest alone`);
    t.same(await pgrep(`${c}--`), [], 'no process carries the crashed one\'s new name');
  });
});

t.test('a name too long for the original command line is cut; domid= and host= stay whole', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-title-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'title.mjs');
  writeFileSync(script, `import { domUTitle, setProcessTitle } from ${JSON.stringify(join(DIST, 'shared', 'runtime', 'title.js'))};\n` +
    `setProcessTitle((n) => domUTitle(process.env.H, 7, n), 'n'.repeat(400));\nprocess.stdout.write('set\\n');\nsetInterval(() => {}, 1 << 30);\n`);
  const host = `h${randomBytes(4).toString('hex')}`;
  const p = spawn(process.execPath, [script, '--host', host], { env: productEnv({ H: host }), stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { p.kill('SIGKILL'); });
  await new Promise((resolve) => p.stdout.once('data', resolve));
  const room = [process.execPath, script, '--host', host].reduce((n, a) => n + Buffer.byteLength(a) + 1, 0) - 1;
  const [title] = procCmdline(p.pid!);
  t.match(title, new RegExp(`^xenemu-domU n+~ domid=7 host=${host}$`), `cut to "${title}"`);
  t.equal(title!.length, room, 'as long as the original command line allows');
  t.equal(cmdlineHost(procCmdline(p.pid!)), host, 'the host is still read from it');
});
