// xl network-attach / network-detach on a running guest: the guest's
// netfront finds the new vif through its device/vif watch, gets an
// address, pings; detach closes both ends and removes both directories;
// attaching again works; detach by MAC.
import t from 'tap';
import { startHost, waitFor } from '../helpers/host.js';
import { xenstore, xl, xlOk } from '../host/xl.js';
import { netGuest } from './guests.js';

t.test('network-attach and network-detach on a running guest', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const xs = await xenstore(t, h);
  const a = await netGuest(t, h, 'aa');
  const b = await netGuest(t, h, 'ab', `vif = ['bridge=xenbr0']`);
  t.equal((await a.run('ifconfig')).trim(), '', 'no interface before the attach');
  t.match(await a.run(`ping -c 1 10.0.0.${b.id}`), /Network is unreachable/);

  const fe = `/local/domain/${a.id}/device/vif/0`;
  const be = `/local/domain/0/backend/vif/${a.id}/0`;
  const connected = () => waitFor(async () => (await xs.tryRead(`${fe}/state`)) === '4' && (await xs.tryRead(`${be}/state`)) === '4', 15_000, 'vif 0 connected');

  await xlOk(h, 'network-attach', 'aa', 'mac=00:16:3e:00:00:21', 'ip=10.0.0.77');
  await connected();
  await waitFor(async () => /inet 10\.0\.0\.77 /.test(await a.run('ifconfig eth0')), 10_000, 'eth0 configured');
  t.match(await a.run('ifconfig eth0'), /ether 00:16:3e:00:00:21/);
  t.match(await a.run(`ping -c 2 -i 0.2 10.0.0.${b.id}`), /2 received, 0% packet loss/, 'attached vif pings');
  t.match(await xlOk(h, 'network-list', 'aa'), /^0 +0 +00:16:3e:00:00:21 0 +4 /m, 'network-list row');

  await xlOk(h, 'network-detach', 'aa', '0');
  t.equal(await xs.tryRead(`${fe}/state`), null, 'frontend directory removed');
  t.equal(await xs.tryRead(`${be}/state`), null, 'backend directory removed');
  await waitFor(async () => (await a.run('ifconfig')).trim() === '', 10_000, 'eth0 gone in the guest');
  t.equal((await xlOk(h, 'network-list', 'aa')).trim().split('\n').length, 1, 'network-list: header only');

  await xlOk(h, 'network-attach', 'aa', 'mac=00:16:3e:00:00:22');
  await connected();
  await waitFor(async () => /ether 00:16:3e:00:00:22/.test(await a.run('ifconfig eth0')), 10_000, 'eth0 again');
  t.match(await a.run(`ping -c 1 10.0.0.${b.id}`), /1 received, 0% packet loss/, 'default address 10.0.0.<domid> pings');
  await xlOk(h, 'network-detach', 'aa', '00:16:3e:00:00:22');
  t.equal(await xs.tryRead(`${be}/state`), null, 'detached by MAC');

  const r = await xl(h, ['network-detach', 'aa', '5']);
  t.equal(r.code, 1, 'detaching a missing vif fails');
  t.match(r.stderr, /Device 5 not connected/);
});
