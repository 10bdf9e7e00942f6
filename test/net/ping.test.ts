// Two guests on one host, each with a vif on xenbr0: the handshake keys in
// xenstore, ifconfig, ping both ways through the real bridge, UDP with
// iperf, and the bridge having learned both MACs (ARP first, then unicast).
import t from 'tap';
import { startHost, waitFor } from '../helpers/host.js';
import { shmList, shmPrefix } from '../../shared/shm.js';
import { xenstore, xlOk } from '../host/xl.js';
import { netGuest } from './guests.js';

t.test('two guests ping each other and exchange UDP through xenbr0', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const xs = await xenstore(t, h);
  const a = await netGuest(t, h, 'na', `vif = ['mac=00:16:3e:00:00:0a,bridge=xenbr0']`);
  const b = await netGuest(t, h, 'nb', `vif = ['bridge=xenbr0,ip=10.0.0.${200}']`);

  await t.test('xenstore keys of the handshake (libxl layout)', async (t) => {
    const be = `/local/domain/0/backend/vif/${a.id}/0`;
    const fe = `/local/domain/${a.id}/device/vif/0`;
    t.equal(await xs.readString(`${be}/frontend`), fe);
    t.equal(await xs.readString(`${be}/frontend-id`), String(a.id));
    t.equal(await xs.readString(`${be}/online`), '1');
    t.equal(await xs.readString(`${be}/state`), '4', 'backend Connected');
    t.equal(await xs.readString(`${be}/mac`), '00:16:3e:00:00:0a');
    t.equal(await xs.readString(`${be}/bridge`), 'xenbr0');
    t.equal(await xs.readString(`${be}/handle`), '0');
    t.equal(await xs.readString(`${be}/feature-rx-copy`), '1');
    t.equal(await xs.readString(`${be}/feature-sg`), '0', 'no scatter-gather: a packet is one slot');
    t.match(await xs.readString(`${be}/script`), /vif-bridge$/);
    t.equal(await xs.readString(`${fe}/backend`), be);
    t.equal(await xs.readString(`${fe}/backend-id`), '0');
    t.equal(await xs.readString(`${fe}/state`), '4', 'frontend Connected');
    t.equal(await xs.readString(`${fe}/request-rx-copy`), '1');
    for (const k of ['tx-ring-ref', 'rx-ring-ref', 'event-channel']) t.match(await xs.readString(`${fe}/${k}`), /^\d+$/, k);
    t.same(await xs.getPerms(be), ['n0', `r${a.id}`], 'backend perms');
    t.same(await xs.getPerms(fe), [`n${a.id}`, 'r0'], 'frontend perms');
    t.match(await xs.readString(`/local/domain/${b.id}/device/vif/0/mac`), /^00:16:3e(:[0-9a-f]{2}){3}$/, 'generated MAC in Xen\'s OUI');
  });

  const ipA = `10.0.0.${a.id}`;
  const ipB = '10.0.0.200';

  await t.test('ifconfig', async (t) => {
    const out = await a.run('ifconfig');
    t.match(out, /^eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500$/m);
    t.match(out, new RegExp(`inet ${ipA.replace(/\./g, '\\.')}  netmask 255\\.255\\.255\\.0`));
    t.match(out, /ether 00:16:3e:00:00:0a/);
    t.match(out, /RX packets \d+  bytes \d+/);
    t.match(await b.run('ifconfig eth0'), /inet 10\.0\.0\.200 /, 'ip= from the vif spec');
  });

  await t.test('ping both ways', async (t) => {
    const out = await a.run(`ping -c 3 -i 0.2 ${ipB}`);
    t.match(out, `PING ${ipB} (${ipB}) 56(84) bytes of data.`);
    t.match(out, new RegExp(`64 bytes from ${ipB.replace(/\./g, '\\.')}: icmp_seq=1 ttl=64 time=[\\d.]+ ms`));
    t.match(out, /3 packets transmitted, 3 received, 0% packet loss/);
    const rtt = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(out);
    t.ok(rtt, 'rtt line');
    t.comment(`ping a -> b: ${rtt?.[0]}`);
    t.match(await b.run(`ping -c 2 -i 0.2 ${ipA}`), /2 packets transmitted, 2 received, 0% packet loss/);
    const none = await a.run('ping -c 1 10.0.0.250');
    t.match(none, /1 packets transmitted, 0 received, 100% packet loss/, 'nobody at .250');
  });

  await t.test('UDP: iperf from a to b', async (t) => {
    const from = b.pty.text.length;
    b.pty.write('iperf -s\r');
    await b.pty.until(/Server listening on UDP port 5001/, from);
    const out = await a.run(`iperf -c ${ipB} -t 1`, 60_000);
    t.match(out, /Client connecting to 10\.0\.0\.200, UDP port 5001/);
    t.match(out, /Sent \d+ datagrams/);
    const rep = /Server Report:\n\[  3\]  0\.0- *[\d.]+ sec +([\d.]+) MBytes +([\d.]+) Mbits\/sec/.exec(out);
    t.ok(rep, `server report: ${out}`);
    t.ok(Number(rep?.[1]) > 0, 'bytes arrived');
    t.comment(`iperf a -> b: ${rep?.[2]} Mbits/sec`);
    await b.pty.until(/Lost\/Total Datagrams\n?.*\n?.*Mbits\/sec/s, from);
    b.pty.write('\x03');
    await b.pty.until(/root@nb:~# $/, from);
  });

  await t.test('xl network-list', async (t) => {
    const out = await xlOk(h, 'network-list', 'na');
    const lines = out.trimEnd().split('\n');
    t.match(lines[0], /^Idx BE Mac Addr\. +handle state evt-ch +tx-\/rx-ring-ref BE-path/);
    t.match(lines[1], new RegExp(`^0 +0 +00:16:3e:00:00:0a 0 +4 +\\d+ +\\d+/\\d+ +/local/domain/0/backend/vif/${a.id}/0`));
  });

  await t.test('destroy leaves nothing: back ends, segments', async (t) => {
    await xlOk(h, 'destroy', 'na');
    await xlOk(h, 'destroy', 'nb');
    await waitFor(async () => (await xs.directory('/local/domain/0/backend/vif').catch(() => [] as string[])).length === 0, 10_000, 'vif back ends gone');
    t.pass('no vif back-end directory left');
    const left = shmList(shmPrefix(h.name)).filter((s) => new RegExp(`\\.dom(${a.id}|${b.id})\\.`).test(s));
    t.same(left, [], 'no segment of the guests left');
  });
});
