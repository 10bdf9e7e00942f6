// A PV guest with the host's e1000 passed through (`pci = [ '03:00.0' ]`)
// beside a vif: pcifront finds it, the kernel's e1000 driver (processes/domu/
// drivers/e1000.ts) resets it, reads its MAC from the EEPROM, puts its rings
// and buffers in the guest's own frames (DMA through the IOMMU) and takes
// its INTx as a pirq event; the NIC is eth1 (the vif has eth0), down until
// ifconfig. Its wire is the TAP xpt03 in the host's namespace: the guest
// pings the namespace's address on xpt03, the namespace pings the guest,
// and a UDP exchange (the guest's nc -u, a node socket in the namespace)
// carries lines both ways.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { startHost, waitFor } from '../helpers/host.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { attachGuest } from '../net/guests.js';
import { makeAssignable } from '../helpers/pci.js';
import { ip } from '../../shared/net/netns.js';
import { netnsUnavailable, throwawayNetns } from '../net/netns_helpers.js';
import { hostNicTap } from '../../processes/pcidev/wire.js';

const why = netnsUnavailable() ?? (() => { try { execFileSync('ping', ['-V'], { stdio: 'ignore' }); return null; } catch { return 'no ping (iputils-ping, .ci/setup)'; } })();
const NIC = '0000:03:00.0';
const NS_ADDR = '10.77.0.1';
const GUEST_ADDR = '10.77.0.2';

/** A UDP socket in `ns` on port 7001: sends `hello` to the guest's port 7000 every 200 ms until it hears back, prints what it heard. */
const PEER = `const s=require('dgram').createSocket('udp4');let t;
s.on('message',(m,r)=>{process.stdout.write(JSON.stringify({m:m.toString(),from:r.address+':'+r.port})+'\\n');clearInterval(t);s.close();});
s.bind(7001,()=>{const go=()=>s.send(process.argv[1],7000,'${GUEST_ADDR}');go();t=setInterval(go,200);});`;

t.test('a PV guest\'s e1000: ifconfig, ping both ways, UDP both ways', { skip: why ?? false }, async (t) => {
  const ns = throwawayNetns(t);
  const h = await startHost(t, { memory: 512, pcpus: 2, netns: ns, pci: ['e1000'] });
  const tap = hostNicTap(3);
  ip(['addr', 'add', `${NS_ADDR}/24`, 'dev', tap], ns);
  await makeAssignable(h, NIC);
  await xlOk(h, 'create', writeCfg(h, 'e.cfg', `name = "e"\nmemory = 64\nvif = [ 'bridge=xenbr0' ]\npci = [ '03:00.0' ]\n`));
  const g = await attachGuest(t, h, 'e', (await list(h)).find((r) => r.name === 'e')!.id);
  await waitFor(async () => /e1000 0000:00:00\.0 eth1: Intel\(R\) PRO\/1000/.test(await g.run('dmesg')), 20_000, 'the e1000 probed as eth1');
  t.match(await g.run('dmesg'), /e1000 0000:00:00\.0 eth1: 02:58:45:00:03:00, INTx/, 'its MAC from the EEPROM, on INTx');
  const down = await g.run('ifconfig eth1');
  t.match(down, /^eth1: flags=4098<BROADCAST,MULTICAST>  mtu 1500\n/, 'down after the probe');
  t.match(down, /ether 02:58:45:00:03:00 /, 'with the host NIC\'s MAC');
  t.notMatch(down, /inet /, 'and no address');
  t.match(await g.run('ifconfig eth0'), /^eth0: flags=4163</, 'the vif is eth0');

  t.equal(await g.run(`ifconfig eth1 ${GUEST_ADDR} netmask 255.255.255.0 up`), '', 'ifconfig eth1 ADDR netmask M up');
  const up = await g.run('ifconfig eth1');
  t.match(up, /^eth1: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>/, 'up and running');
  t.match(up, new RegExp(`inet ${GUEST_ADDR.replace(/\./g, '\\.')}  netmask 255\\.255\\.255\\.0  broadcast 10\\.77\\.0\\.255`), 'with its address');

  // The guest pings the namespace's end of the wire.
  const p = await g.run(`ping -c 3 -i 0.2 ${NS_ADDR}`, 20_000);
  t.match(p, /3 packets transmitted, 3 received, 0% packet loss/, `guest -> ${NS_ADDR}: every echo answered`);
  t.match(p, new RegExp(`64 bytes from ${NS_ADDR.replace(/\./g, '\\.')}: icmp_seq=1 ttl=64`), 'by the namespace');

  // The namespace pings the guest.
  const r = execFileSync('ip', ['netns', 'exec', ns, 'ping', '-c', '3', '-i', '0.2', '-W', '5', GUEST_ADDR], { encoding: 'utf8', timeout: 30_000 });
  t.match(r, /3 packets transmitted, 3 received, 0% packet loss/, `${ns} -> guest: every echo answered`);
  t.match(ip(['neigh', 'show', GUEST_ADDR, 'dev', tap], ns), /lladdr 02:58:45:00:03:00/, 'the namespace learned the guest\'s MAC by ARP');

  // UDP both ways: the guest's nc -u listens on 7000; the namespace's socket sends, the guest answers a line.
  const from = g.pty.text.length;
  g.pty.write('nc -u -l -p 7000\r');
  await g.pty.until(/nc -u -l -p 7000\r\n/, from, 5000);
  const peer = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', PEER, 'hello from the namespace'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { if (peer.exitCode === null) peer.kill(); });
  let heard = '';
  peer.stdout.on('data', (d: Buffer) => { heard += d.toString(); });
  await g.pty.until(/hello from the namespace/, from, 15_000);
  t.pass('the namespace\'s datagram printed by the guest\'s nc');
  g.pty.write('hello from the guest\r');
  await waitFor(() => heard.includes('\n'), 10_000, 'the guest\'s line in the namespace');
  t.same(JSON.parse(heard), { m: 'hello from the guest\n', from: `${GUEST_ADDR}:7000` }, 'the guest\'s line came back from its port 7000');
  g.pty.write('\x03');
  await g.pty.until(/root@e:~# $/, from, 5000);

  const stats = await g.run('ethtool -S eth1');
  t.match(stats, /interrupts: [1-9]/, 'the driver took interrupts');
  await xlOk(h, 'destroy', 'e');
});
