// A PV guest built by Dom0's builder boots to its shell prompt and runs
// commands; its xenstore access is checked by xenstored.
import t from 'tap';
import { startGuestHost } from '../helpers/guest.js';

t.test('a PV guest boots to its shell and runs commands', async (t) => {
  const gh = await startGuestHost(t);
  const t0 = Date.now();
  const d = await gh.build({ name: 'web1', memoryMB: 64, maxmemMB: 128, vcpus: 2, cmdline: 'console=hvc0 quiet' });
  const g = gh.guest(d.domid, 'web1');
  const boot = await g.expect(g.prompt, 20_000);
  t.comment(`create-to-shell-prompt: ${Date.now() - t0} ms (builder ${Number(d.buildMs).toFixed(1)} ms)`);
  t.match(boot, /Xen Minimal OS \(xenemu\)/, 'Mini-OS banner');
  t.match(boot, /nr_pages: 0x4000/, '64 MB of pages from start_info');
  t.match(boot, /cmd_line: console=hvc0 quiet/, 'the command line');
  t.match(boot, /xenbus: connected/, 'xenbus connected');
  t.match(boot, /2 CPUs/, 'two vCPUs');
  t.notMatch(boot, /no vCPU pool/, 'vCPUs are the slice-scheduled pool');

  t.equal(await g.run('uname -a'), 'Linux web1 xenemu-pv #1 SMP x86_64\n');
  t.equal(await g.run('echo hello   "big world"'), 'hello big world\n');
  t.equal(await g.run('frobnicate --now'), 'sh: frobnicate: command not found\n');
  t.match(await g.run('free'), /Mem:\s+65536\s+/, 'free shows 64 MB in kB');
  t.match(await g.run('ps'), /vcpu\/1[\s\S]*sh/, 'ps lists vCPU threads and the shell');
  t.match(await g.run('uptime'), /up 0 min,\s+1 user,\s+load average: /);
  t.match(await g.run('date'), /^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d UTC \d{4}\n$/);
  t.match(await g.run('help'), /xenstore-read/);

  // xenstore: its home is readable, data/ is its own, the rest is not.
  t.equal(await g.run('xenstore-read name'), 'web1\n');
  t.equal(await g.run(`xenstore-read /local/domain/${d.domid}/domid`), `${d.domid}\n`);
  t.equal(await g.run('xenstore-write data/greeting hi'), '');
  t.equal(await g.run('xenstore-read data/greeting'), 'hi\n');
  t.equal(await gh.d0.call('xsRead', { path: `/local/domain/${d.domid}/data/greeting` }), 'hi', 'Dom0 sees the write');
  t.equal(await g.run('xenstore-write name evil'), 'xenstore-write: could not write path name\n', 'its name is read-only');
  t.equal(await g.run('xenstore-read /local/domain/0/name'), 'xenstore-read: couldn\'t read path /local/domain/0/name\n');
  t.equal(await g.run('xenstore-ls /local/domain/0'), 'xenstore-ls: xs_directory (/local/domain/0): Permission denied\n');
  t.equal(await g.run('xenstore-write /tool/x 1'), 'xenstore-write: could not write path /tool/x\n');
  t.equal(await g.run('xenstore-rm data/greeting'), '');
  t.equal(await g.run('xenstore-read data/greeting'), 'xenstore-read: couldn\'t read path data/greeting\n');
  t.match(await g.run('xenstore-ls console'), /ring-ref = "\d+"/);
  t.equal(await g.run('echo $?'), '0\n');

  // Line editing: backspace, Ctrl-U, Ctrl-C.
  t.equal(await g.run('echo abX\x7fc'), 'abc\n', 'backspace erases');
  t.equal(await g.run('garbage\x15echo clean'), 'clean\n', 'Ctrl-U kills the line');
  await g.type('echo never\x03');
  await g.expect(`^C\r\n${g.prompt}`);
  t.equal(await g.run('echo after'), 'after\n', 'Ctrl-C dropped the line');
  await g.type('burn 30\r');
  await g.type('\x03');
  t.match(await g.expect(g.prompt, 5000), /burn: .* \(interrupted\)/, 'Ctrl-C interrupts burn');
  const burn = await g.run('burn 0.2');
  t.match(burn, /^burn: \d+\.\d\d s on 2 vCPUs, \d+ ms CPU\n$/);
  t.comment(burn.trim());

  await gh.d0.call('destroy', { domid: d.domid });
  t.equal((await gh.d0.call('info', { domid: d.domid })).ret, -3, 'gone (ESRCH)');
});
