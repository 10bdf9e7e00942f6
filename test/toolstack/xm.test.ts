// xend + xm end to end over the real Unix socket, with an in-process fake
// Toolstack: list formatting, exit codes and messages, faults, host
// discovery, shutdown -w, and console attach/detach with a real PTY.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { runXm, formatListLine, formatUptime, parseMemSizeKiB } from '../../launcher/xm.js';
import { XM_COMMANDS } from '../../launcher/xm_cmdtable.js';
import { XendServer } from '../../processes/dom0/xend/server.js';
import { xmlrpcCall, XmlRpcFault, type XmlRpcValue } from '../../shared/xmlrpc.js';
import { PtyClient } from '../helpers/pty_client.js';
import { FakeToolstack } from './fake_toolstack.js';

const HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';

interface Host { root: string; sock: string; fake: FakeToolstack; xend: XendServer }

async function startHost(t: { teardown(fn: () => unknown): void }, root: string, name: string): Promise<Host> {
  fs.mkdirSync(path.join(root, name), { recursive: true });
  const fake = new FakeToolstack();
  const xend = new XendServer(fake);
  const sock = path.join(root, name, 'xend.sock');
  await xend.listen(sock);
  t.teardown(async () => { await xend.close(); await fake.close(); });
  return { root, sock, fake, xend };
}

function tmpRoot(t: { teardown(fn: () => unknown): void }): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'xenemu-xm-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

/** Collects output and lets a test wait for some text to appear (no sleeping). */
class Sink {
  text = '';
  private waiters: Array<() => void> = [];
  write = (c: string | Uint8Array) => {
    this.text += typeof c === 'string' ? c : Buffer.from(c).toString('latin1');
    this.waiters.splice(0).forEach((w) => w());
    return true;
  };
  until(s: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${JSON.stringify(s)} in ${JSON.stringify(this.text)}`)), 10000);
      const check = () => { if (this.text.includes(s)) { clearTimeout(timer); resolve(); } else this.waiters.push(check); };
      check();
    });
  }
}

async function xl(root: string, argv: string[], extra: { env?: NodeJS.ProcessEnv; prog?: 'xl' | 'xm' } = {}) {
  const out = new Sink();
  const err = new Sink();
  const code = await runXm(argv, { stdout: out, stderr: err, env: extra.env ?? { XENEMU_RUN_DIR: root }, prog: extra.prog ?? 'xl' });
  return { code, out: out.text, err: err.text };
}

function writeCfg(root: string, name: string, text: string): string {
  const p = path.join(root, name);
  fs.writeFileSync(p, text);
  return p;
}

t.test('formatting helpers follow xl', async (t) => {
  t.equal(formatListLine({ name: 'Domain-0', domid: 0, memory: 1024, vcpus: 2, state: 'r-----', cpu_time: 12.345 }),
    'Domain-0                                     0  1024     2     r-----      12.3');
  t.equal(formatUptime(59), ' 0:00:59');
  t.equal(formatUptime(3725), ' 1:02:05');
  t.equal(formatUptime(86400 + 61), '1 day,  0:01:01');
  t.equal(formatUptime(3 * 86400), '3 days,  0:00:00');
  t.equal(parseMemSizeKiB('512m', 'k'), 512 * 1024);
  t.equal(parseMemSizeKiB('2048', 'k'), 2048);
  t.equal(parseMemSizeKiB('256', 'm'), 256 * 1024);
  t.equal(parseMemSizeKiB('1g', 'k'), 1024 * 1024);
  t.equal(parseMemSizeKiB('lots', 'k'), undefined);
});

t.test('list, create, domid/domname, pause, mem-set, destroy', async (t) => {
  const root = tmpRoot(t);
  const { fake } = await startHost(t, root, 'h1');

  let r = await xl(root, ['list']);
  t.same(r, { code: 0, out: `${HEADER}\nDomain-0                                     0  1024     2     r-----      12.3\n`, err: '' });

  const cfg = writeCfg(root, 'guest1.cfg', 'name = "guest1"\nmemory = 128\nvcpus = 2\nmaxvcpus = 4\ndisk = [ "file:/img,xvda,w" ]\n');
  r = await xl(root, ['create', cfg, 'memory=256']);
  t.same(r, { code: 0, out: '', err: `Parsing config from ${cfg}\n` });
  t.equal(fake.domains.get(1)!.memory_mib, 256, 'override reached the toolstack');
  t.equal(fake.domains.get(1)!.config!.disk[0]!.target, '/img');

  r = await xl(root, ['list']);
  t.equal(r.out, `${HEADER}\n`
    + 'Domain-0                                     0  1024     2     r-----      12.3\n'
    + 'guest1                                       1   256     2     -b----       0.0\n');
  r = await xl(root, ['list', 'guest1']);
  t.equal(r.out.split('\n').length, 3, 'one domain listed');
  r = await xl(root, ['list', '-l', 'guest1']);
  const json = JSON.parse(r.out);
  t.match(json, [{ domid: 1, name: 'guest1', config: { name: 'guest1', memory: 256, maxvcpus: 4 } }]);

  t.same(await xl(root, ['domid', 'guest1']), { code: 0, out: '1\n', err: '' });
  t.same(await xl(root, ['domname', '1']), { code: 0, out: 'guest1\n', err: '' });
  t.same(await xl(root, ['domid', 'nosuch']), { code: 1, out: '', err: "Can't get domid of domain name 'nosuch', maybe this domain does not exist.\n" });
  t.same(await xl(root, ['domname', '42']), { code: 1, out: '', err: "Can't get domain name of domain id '42', maybe this domain does not exist.\n" });

  t.equal((await xl(root, ['pause', 'guest1'])).code, 0);
  t.match((await xl(root, ['list', 'guest1'])).out, /     -bp---  /);
  t.equal((await xl(root, ['unpause', '1'])).code, 0);
  t.match((await xl(root, ['list', '1'])).out, /     -b----  /);

  t.equal((await xl(root, ['mem-set', 'guest1', '200m'])).code, 0);
  t.equal(fake.domains.get(1)!.memory_mib, 200);
  t.equal((await xl(root, ['mem-set', 'guest1', '131072'])).code, 0, 'xl: KiB by default');
  t.equal(fake.domains.get(1)!.memory_mib, 128);
  t.equal((await xl(root, ['mem-set', 'guest1', '100'], { prog: 'xm' })).code, 0, 'xm: MiB by default');
  t.equal(fake.domains.get(1)!.memory_mib, 100);
  t.same(await xl(root, ['mem-set', 'guest1', 'lots']), { code: 1, out: '', err: 'invalid memory size: lots\n' });
  t.same(await xl(root, ['mem-set', 'guest1', '9g']), { code: 1, out: '', err: 'memory_dynamic_max must be less than or equal to memory_static_max\n' });
  t.equal((await xl(root, ['vcpu-set', 'guest1', '3'])).code, 0);
  t.same(await xl(root, ['vcpu-set', 'guest1', '9']), { code: 1, out: '', err: 'Requested vcpus (9) is greater than the maximum (4)\n' });

  t.same(await xl(root, ['destroy', 'nosuch']), { code: 1, out: '', err: 'nosuch is an invalid domain identifier (rc=-6)\n' });
  t.same(await xl(root, ['pause', '77']), { code: 1, out: '', err: '77 is an invalid domain identifier (rc=-6)\n' });
  t.same(await xl(root, ['destroy', '0']), { code: 1, out: '', err: 'Cannot destroy privileged domain 0.\n' });
  t.same(await xl(root, ['destroy', 'guest1']), { code: 0, out: '', err: '' });
  t.equal((await xl(root, ['list'])).out.split('\n').length, 3, 'only Domain-0 left');
});

t.test('create errors: config, file, toolstack, duplicate name', async (t) => {
  const root = tmpRoot(t);
  const { fake } = await startHost(t, root, 'h1');
  const bad = writeCfg(root, 'bad.cfg', 'name = "b"\nmemroy = 1\n');
  t.same(await xl(root, ['create', bad]), { code: 1, out: '', err: `Parsing config from ${bad}\n${bad}:2: config parsing error near \`memroy': unknown key \`memroy'\n` });
  const missing = path.join(root, 'none.cfg');
  t.same(await xl(root, ['create', missing]), { code: 1, out: '', err: `Parsing config from ${missing}\nFailed to read config file: ${missing}: No such file or directory\n` });
  const big = writeCfg(root, 'big.cfg', 'name = "big"\nmemory = 8192\n');
  t.same(await xl(root, ['create', big]), { code: 1, out: '', err: `Parsing config from ${big}\nfailed to create domain "big": not enough memory (8192 MiB asked, 3072 MiB free)\n` });
  const ok = writeCfg(root, 'ok.cfg', 'name = "ok"\n');
  t.equal((await xl(root, ['create', ok])).code, 0);
  t.same(await xl(root, ['create', ok]), { code: 1, out: '', err: `Parsing config from ${ok}\ndomain with name "ok" already exists.\n` });
  const dry = await xl(root, ['create', '-n', ok, 'vcpus=2']);
  t.equal(dry.code, 0);
  t.match(JSON.parse(dry.out), { name: 'ok', vcpus: 2 });
  t.equal(fake.domains.size, 2, 'a dry run creates nothing');
  const none = await xl(root, ['create']);
  t.same({ code: none.code, err: none.err }, { code: 2, err: "'xl create' requires at least 1 argument.\n\n" });
  t.match(none.out, /^Usage: xl \[--host HOST\] create <ConfigFile> \[options\] \[vars\]\n\nCreate a domain from config file <filename>\.\n\nOptions:\n\n-h /,
    'then the command\'s help, as xl');
  t.same(await xl(root, ['create', '-z', ok]), { code: 2, out: '', err: "option `z' not supported.\n" });
  t.equal(fake.domains.size, 2, 'bad usage creates nothing');
});

t.test('help and dispatch come from the command table, in xl\'s format', async (t) => {
  const root = tmpRoot(t);
  const { fake } = await startHost(t, root, 'h1');
  const names = XM_COMMANDS.map((c) => c.name);
  t.equal(new Set(names).size, names.length, 'each command once');
  const list = `Usage xl [--host HOST] <subcommand> [args]\n\nxl full list of subcommands:\n\n${
    // xl.c help(): a name longer than 19 columns gets its description on the next line.
    XM_COMMANDS.map((c) => ` ${c.name.padEnd(19)} ${c.name.length > 19 ? `\n ${''.padEnd(19)} ` : ''}${c.desc}\n`).join('')}`;
  t.match(list, /\n create              Create a domain from config file <filename>\n list                List information about all\/some domains\n/);
  t.match(list, /\n sched-credit        Get\/set credit scheduler parameters\n/, 'the scheduler commands are in the same table');
  t.same(await xl(root, ['help']), { code: 0, out: list, err: '' });
  t.same(await xl(root, []), { code: 1, out: list, err: '' }, 'no command: the list, status 1');
  t.same(await xl(root, ['frobnicate']), { code: 1, out: list, err: 'command not implemented\n' });
  const xmHelp = await xl(root, ['help'], { prog: 'xm' });
  t.match(xmHelp.out, /^Usage xm \[--host HOST\] <subcommand> \[args\]\n\nxm full list of subcommands:\n/);

  t.same(await xl(root, ['help', 'pause']), { code: 0, out: 'Usage: xl [--host HOST] pause <Domain>\n\nPause execution of a domain.\n\n', err: '' });
  t.same(await xl(root, ['help', 'dmesg']), {
    code: 0, err: '',
    out: 'Usage: xl [--host HOST] dmesg [-c]\n\nRead and/or clear dmesg buffer.\n\nOptions:\n\n  -c                        Clear dmesg buffer as well as printing it\n',
  });
  t.same(await xl(root, ['help', 'frob']), { code: 0, out: 'command "frob" not implemented\n', err: '' });
  t.same(await xl(root, ['pause', '-h']), await xl(root, ['help', 'pause']), '-h is every command\'s help');
  t.equal(fake.domains.get(0)!.paused, false, '-h does nothing else');

  for (const c of XM_COMMANDS.filter((x) => x.minArgs > 0)) {
    const r = await xl(root, [c.name]);
    const s = c.minArgs > 1 ? 's' : '';
    t.same({ code: r.code, err: r.err }, { code: 2, err: `'xl ${c.name}' requires at least ${c.minArgs} argument${s}.\n\n` }, `${c.name} without operands`);
    t.equal(r.out, (await xl(root, ['help', c.name])).out);
  }
  t.same(await xl(root, ['vcpu-set', 'Domain-0', 'many']), {
    code: 2, err: "invalid number of vCPUs: 'many'\n", out: (await xl(root, ['help', 'vcpu-set'])).out,
  });
});

t.test('info, dmesg, uptime', async (t) => {
  const root = tmpRoot(t);
  await startHost(t, root, 'h1');
  const info = await xl(root, ['info']);
  t.equal(info.code, 0);
  t.match(info.out, /^host                   : xenemu\nrelease                : 6\.1\.0-xenemu\n/);
  t.match(info.out, /\nxen_scheduler          : credit\n/);
  t.same(await xl(root, ['dmesg', '-c']), { code: 0, out: '(XEN) Xen version 4.17 (xenemu)\n(XEN) Brought up 2 CPUs\n', err: '' });
  t.same(await xl(root, ['dmesg']), { code: 0, out: '', err: '' }, 'cleared');
  const up = await xl(root, ['uptime']);
  t.match(up.out, /^Name                                ID Uptime\nDomain-0                             0  1:02:0[5-9]\n$/);
});

t.test('shutdown -w waits for the guest, without polling by time', async (t) => {
  const root = tmpRoot(t);
  const { fake } = await startHost(t, root, 'h1');
  t.equal((await xl(root, ['create', writeCfg(root, 'g.cfg', 'name = "g"\n')])).code, 0);
  // The guest shuts down only once xend is waiting for it: the long poll must be woken, not time out.
  fake.onWaiting = (domid) => fake.guestShutdown(domid);
  const r = await xl(root, ['shutdown', '-w', 'g']);
  t.same(r, { code: 0, out: '', err: 'Shutting down domain 1\nWaiting for 1 domains\nDomain 1 has been shut down, reason code 0\n' });
  t.equal(fake.waitCalls, 1, 'one long poll, woken by the shutdown: no polling');
  t.match((await xl(root, ['list', 'g'])).out, /     ---s--  /);
  t.same(await xl(root, ['shutdown', 'nosuch']), { code: 1, out: '', err: 'nosuch is an invalid domain identifier (rc=-6)\n' });
  const rb = await xl(root, ['reboot', 'g']);
  t.same(rb, { code: 0, out: '', err: 'Rebooting domain 1\n' });
});

t.test('finding the host', async (t) => {
  const root = tmpRoot(t);
  t.same(await xl(root, ['list']), { code: 1, out: '', err: `no xenemu host is running under ${root} (start one with \`xenemu up\`)\n` });
  await startHost(t, root, 'alpha');
  t.equal((await xl(root, ['list'])).code, 0, 'the only host is found');
  await startHost(t, root, 'beta');
  t.same(await xl(root, ['list']), { code: 1, out: '', err: `several xenemu hosts are running under ${root} (alpha, beta): choose one with --host or XENEMU_HOST\n` });
  t.equal((await xl(root, ['--host', 'beta', 'list'])).code, 0);
  t.equal((await xl(root, ['--host=alpha', 'list'])).code, 0);
  t.equal((await xl(root, ['list'], { env: { XENEMU_RUN_DIR: root, XENEMU_HOST: 'alpha' } })).code, 0);
  const none = await xl(root, ['--host', 'gamma', 'list']);
  t.same(none, { code: 1, out: '', err: `cannot connect to xend at ${path.join(root, 'gamma', 'xend.sock')}: is the host running? (ENOENT)\n` });
});

t.test('xend faults on the wire', async (t) => {
  const root = tmpRoot(t);
  const { sock } = await startHost(t, root, 'h1');
  const ep = { socketPath: sock };
  t.same(await xmlrpcCall(ep, 'xend.domains', [false]), ['Domain-0']);
  t.match(await xmlrpcCall(ep, 'xend.domain', ['Domain-0']), { domid: 0, name: 'Domain-0', state: 'r-----', memory: 1024 });
  t.match(await xmlrpcCall(ep, 'xend.domain', [0]), { name: 'Domain-0' });
  await t.rejects(xmlrpcCall(ep, 'xend.domain', ['nosuch']), new XmlRpcFault(3, "Domain 'nosuch' does not exist."));
  await t.rejects(xmlrpcCall(ep, 'xend.bogus', []), new XmlRpcFault(1, 'method "xend.bogus" is not supported'));
  await t.rejects(xmlrpcCall(ep, 'xend.domain.create', [{ name: 'x', memory: 'lots' }]),
    new XmlRpcFault(2, "xend.domain.create: config parsing error near `memory': expected an integer, got `lots'"));
  await t.rejects(xmlrpcCall(ep, 'xend.domain.shutdown', ['Domain-0', 'explode']), new XmlRpcFault(2, 'invalid shutdown reason: "explode"'));
  await t.rejects(xmlrpcCall(ep, 'xend.domain.setMemoryTarget', ['Domain-0', -5]), new XmlRpcFault(2, 'invalid memory target: -5'));
  await t.rejects(xmlrpcCall(ep, 'xend.domain.pause', []), new XmlRpcFault(2, 'a domain name or id is required'));
  // Every parameter is checked at the edge: a value of the wrong kind is a fault naming it, never a crash.
  const bad: Array<[string, XmlRpcValue[], string]> = [
    ['xend.domains', ['yes'], 'invalid detail: "yes"'],
    ['xend.domain.setMemoryTarget', ['Domain-0', 'lots'], 'invalid memory target: "lots"'],
    ['xend.domain.setMemoryTarget', ['Domain-0'], 'invalid memory target: nothing'],
    ['xend.domain.setVCpuCount', ['Domain-0', { n: 1 }], 'invalid vcpu count: {"n":1}'],
    ['xend.domain.waitForShutdown', ['Domain-0', 1.5], 'invalid timeout: 1.5'],
    ['xend.node.dmesg', [[1]], 'invalid clear: [1]'],
    ['xend.domain.blockAttach', ['Domain-0', 5], 'invalid disk spec: 5'],
    ['xend.domain.networkDetach', ['Domain-0', null], 'invalid network device: null'],
    ['xend.domain.networkAttach', ['Domain-0', true], 'invalid network spec: true'],
    ['xend.domain.setSchedCredit', ['Domain-0', 'heavy', -1], 'invalid weight: "heavy"'],
    ['xend.domain.pinVcpu', ['Domain-0', 0, 7], 'invalid CPU list: 7'],
    ['xend.node.setSchedCredit', [new Uint8Array(3), -1], 'invalid tslice: 3 bytes of base64'],
    ['xend.domain.console', [new Uint8Array(2)], 'a domain name or id is required'],
    ['xend.domain.create', [5], "xend.domain.create: config parsing error near `config': expected a struct"],
  ];
  for (const [method, params, msg] of bad) {
    await t.rejects(xmlrpcCall(ep, method, params), new XmlRpcFault(2, msg), `${method}(${JSON.stringify(params)})`);
  }
  t.same(await xmlrpcCall(ep, 'xend.domains', [false]), ['Domain-0'], 'xend still serves');
  const created = await xmlrpcCall(ep, 'xend.domain.create', [{ name: 'wire', memory: 64, disk: ['/a,raw,xvda,w'] }]);
  t.match(created, { domid: 1, name: 'wire', memory: 64, state: '-b----' });
});

t.test('console: backlog, live output, typing, Ctrl-] detaches, nothing left open', async (t) => {
  const root = tmpRoot(t);
  const { fake } = await startHost(t, root, 'h1');
  t.equal((await xl(root, ['create', writeCfg(root, 'c.cfg', 'name = "c1"\n')])).code, 0);
  const ring = fake.rings.get(1)!;
  ring.writeOut(Buffer.from('Booting xenemu guest\r\n'));
  fake.xenconsoled.kick(1);

  const ptsFds = () => fs.readdirSync('/proc/self/fd').filter((f) => {
    try { return /\/dev\/pts\//.test(fs.readlinkSync(`/proc/self/fd/${f}`)); } catch { return false; }
  }).length;
  const before = ptsFds();

  const stdin = new PassThrough();
  const out = new Sink();
  const err = new Sink();
  const done = runXm(['console', 'c1'], { stdout: out, stderr: err, stdin, env: { XENEMU_RUN_DIR: root } });
  await out.until('Booting xenemu guest\r\n');
  t.pass('backlog shown on attach');

  ring.writeOut(Buffer.from('login: '));
  fake.xenconsoled.kick(1);
  await out.until('login: ');
  t.equal(out.text, 'Booting xenemu guest\r\nlogin: ', 'each byte shown once');

  const typed = new Promise<void>((resolve) => { fake.onGuestNotify = () => { if (ring.inPending() >= 5) resolve(); }; });
  stdin.write('root\r');
  await typed;
  const r = ring.readIn();
  t.ok(r.ok && Buffer.from(r.data).toString() === 'root\r', 'typed bytes reached the guest');

  const gotA = new Promise<void>((resolve) => { fake.onGuestNotify = () => { if (ring.inPending() >= 1) resolve(); }; });
  stdin.write(Buffer.from([0x61, 0x1d, 0x62]));
  t.equal(await done, 0, 'Ctrl-] detaches with status 0');
  t.equal(err.text, '');
  await gotA;
  const tail = ring.readIn();
  t.ok(tail.ok && Buffer.from(tail.data).toString() === 'a', 'bytes before Ctrl-] are sent, bytes after it are not');
  t.equal(ptsFds(), before, 'the client closed its PTY descriptors');
  // Output after the detach reaches the PTY (another client reads it there) and not the detached one.
  const other = new PtyClient(fake.xenconsoled.attach(1)!.ptyPath);
  t.teardown(() => other.close());
  ring.writeOut(Buffer.from('after detach'));
  fake.xenconsoled.kick(1);
  await other.until(/after detach/);
  t.notOk(out.text.includes('after detach'), 'output after detach is not shown');

  t.same(await xl(root, ['console', 'nosuch']), { code: 1, out: '', err: 'nosuch is an invalid domain identifier (rc=-6)\n' });
});

t.test('create -c attaches the console of the new domain', async (t) => {
  const root = tmpRoot(t);
  const { fake } = await startHost(t, root, 'h1');
  const stdin = new PassThrough();
  const out = new Sink();
  const err = new Sink();
  const cfg = writeCfg(root, 'c.cfg', 'name = "c2"\n');
  const created = new Promise<number>((resolve) => { fake.onCreate = resolve; });
  const done = runXm(['create', '-c', cfg], { stdout: out, stderr: err, stdin, env: { XENEMU_RUN_DIR: root } });
  // Whether the guest speaks before or after the attach, its words show: live or from the backlog.
  t.equal(await created, 1);
  fake.rings.get(1)!.writeOut(Buffer.from('hello from c2'));
  fake.xenconsoled.kick(1);
  await out.until('hello from c2');
  stdin.write('\x1d');
  t.equal(await done, 0);
});
