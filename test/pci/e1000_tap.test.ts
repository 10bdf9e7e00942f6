// The host e1000's wire (processes/pcidev/wire.ts): the TAP xpt<bus> in the
// host's network namespace while the device process runs. A frame its owner
// transmits through the BAR channel arrives in the namespace on xpt03; a
// UDP broadcast the namespace sends out of xpt03 lands in the owner's receive
// buffer by DMA. After `xenemu down` the TAP is gone (the namespace, made
// by the test, stays). Without a TAP (the name taken) the NIC is plugged
// into nothing and its log says why, once. Two hosts without namespaces of
// their own, in the test's, each get a TAP of their own: xpt03-<host hash>.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeDomU, probeHost, type Probe } from '../helpers/probe.js';
import { readHostRecord, startHost, waitFor } from '../helpers/host.js';
import { hostNicTap } from '../../processes/pcidev/wire.js';
import { __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import * as DC from '../../shared/abi/domctl.js';
import * as R from '../../shared/hw/e1000_regs.js';
import { e1000TxDesc as desc } from '../helpers/pci.js';
import { PciCfgClient } from '../../shared/hw/pci_cfg_client.js';
import { parseBdf, pciConfigSocket } from '../../shared/wire/pcidev.js';
import { ip, linkExists } from '../../shared/net/netns.js';
import { netnsUnavailable, throwawayNetns } from '../net/netns_helpers.js';

const why = netnsUnavailable();
const NIC = '0000:03:00.0';
const SBDF = parseBdf(NIC)!;

const domctl = async (p: Probe, cmd: number, arg: Record<string, unknown>) =>
  (await p.call('hypercall', { hop: __HYPERVISOR_domctl, cmd, arg })).ret as number;

/** The kernel's packet counters of `dev` in namespace `ns`. */
function linkStats(dev: string, ns: string): { rx: number; tx: number } {
  const j = JSON.parse(ip(['-s', '-j', 'link', 'show', 'dev', dev], ns)) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>;
  return { rx: j[0]!.stats64.rx.packets, tx: j[0]!.stats64.tx.packets };
}

t.test('the e1000\'s TAP: frames both ways, gone after xenemu down', { skip: why ?? false }, async (t) => {
  const ns = throwawayNetns(t);
  const { h, d0 } = await probeHost(t, 256, { pcpus: 1, netns: ns, pci: ['e1000'] });
  t.ok(linkExists('xpt03', ns), 'xpt03 in the host\'s namespace');
  t.notOk(linkExists('xpt03'), 'and not in the test\'s');
  t.match(ip(['link', 'show', 'dev', 'xpt03'], ns), /state (UP|UNKNOWN)|,UP/, 'set up');

  const { domid, p: du } = await probeDomU(t, h, d0, { memory_kb: 16 * 1024 });
  t.equal(await domctl(d0, DC.XENEMU_DOMCTL_pci_assignable_add, { bdf: NIC }), 0);
  t.equal(await domctl(d0, DC.XEN_DOMCTL_assign_device, { domain: domid, dev: DC.XEN_DOMCTL_DEV_PCI, flags: 0, machine_sbdf: SBDF }), 0);
  t.equal((await du.call('barOpen', { sbdf: SBDF })).ret, 0);
  const cfg = await PciCfgClient.connect(pciConfigSocket(h.rundir, NIC));
  t.teardown(() => cfg.close());
  await cfg.write(0x04, 2, 0x0006);
  const rd = async (off: number) => (await du.call('barRead', { sbdf: SBDF, bar: 0, off })) as number;
  const wr = (off: number, value: number) => du.call('barWrite', { sbdf: SBDF, bar: 0, off, value });
  const RING = 100; const FRAME = 101; const RXBUF = 102;

  // Transmit: one broadcast frame from the owner's page.
  const before = linkStats('xpt03', ns);
  await du.call('writeBytes', { pfn: FRAME, hex: 'ff'.repeat(6) + '025845000300' + '88b5' + '5a'.repeat(46) });
  await du.call('writeBytes', { pfn: RING, hex: desc(FRAME * 4096, 60, R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_IFCS | R.E1000_TXD_CMD_RS) });
  await wr(R.E1000_TDBAL, RING * 4096); await wr(R.E1000_TDBAH, 0);
  await wr(R.E1000_TDLEN, 128); await wr(R.E1000_TDH, 0);
  await wr(R.E1000_TCTL, R.E1000_TCTL_EN);
  await wr(R.E1000_TDT, 1);
  await waitFor(() => linkStats('xpt03', ns).rx > before.rx, 5000, 'the frame on xpt03');
  t.equal(linkStats('xpt03', ns).rx, before.rx + 1, 'the namespace received the owner\'s frame on xpt03');
  t.equal(await rd(R.E1000_TDH), 1, 'the descriptor was taken');

  // Receive: a UDP broadcast the namespace sends out of xpt03, into the owner's buffer.
  await du.call('writeBytes', { pfn: RING, off: 0x200, hex: desc(RXBUF * 4096, 0, 0).repeat(8) });
  await wr(R.E1000_RDBAL, RING * 4096 + 0x200); await wr(R.E1000_RDBAH, 0);
  await wr(R.E1000_RDLEN, 128); await wr(R.E1000_RDH, 0); await wr(R.E1000_RDT, 7);
  await wr(R.E1000_RCTL, R.E1000_RCTL_EN | R.E1000_RCTL_BAM);
  ip(['addr', 'add', '10.77.0.1/24', 'dev', 'xpt03'], ns);
  const send = "const s=require('dgram').createSocket('udp4');s.bind(()=>{s.setBroadcast(true);s.send('xenemu',9,'10.77.0.255',()=>s.close())})";
  execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', send], { stdio: 'ignore' });
  await waitFor(async () => (parseInt((await du.call('readBytes', { pfn: RING, off: 0x200 + 12, len: 1 })) as string, 16) & 1) === 1, 5000, 'RX descriptor done');
  const rx = Buffer.from((await du.call('readBytes', { pfn: RXBUF, off: 0, len: 48 })) as string, 'hex');
  t.equal(rx.subarray(0, 6).toString('hex'), 'ffffffffffff', 'a broadcast in the owner\'s buffer');
  t.equal(rx.readUInt16BE(12), 0x0800, 'IPv4');
  t.equal(rx.subarray(42, 48).toString(), 'xenemu', 'the namespace\'s datagram');

  await h.down();
  t.notOk(linkExists('xpt03', ns), 'after xenemu down the TAP is gone');
});

t.test('no TAP to be had: the NIC is plugged into nothing, and its log says why once', { skip: why ?? false }, async (t) => {
  const ns = throwawayNetns(t);
  ip(['link', 'add', 'xpt03', 'type', 'bridge'], ns); // the name taken by another kind of link
  const { h } = await probeHost(t, 256, { pcpus: 1, netns: ns, pci: ['e1000'] });
  const log = readFileSync(join(h.rundir, 'logs', `pcidev-${NIC}.log`), 'utf8');
  t.equal(log.split('\n').filter((l) => l.includes('no TAP for the NIC')).length, 1, 'one line');
  t.match(log, /no TAP for the NIC \(tap xpt03: .+\): its frames are dropped, none arrive/, 'saying why');
  t.equal(readHostRecord(h.rundir)!.pci![0]!.state, 'running', 'the device runs all the same');
  t.match(ip(['-d', 'link', 'show', 'dev', 'xpt03'], ns), /bridge/, 'the other link is left alone');
});

t.test('two hosts in one namespace: a TAP each, named after the host', { skip: why ?? false }, async (t) => {
  const a = await startHost(t, { memory: 256, pcpus: 1, pci: ['e1000'] });
  const b = await startHost(t, { memory: 256, pcpus: 1, pci: ['e1000'] });
  const ta = readHostRecord(a.rundir)!.pci![0]!.tap!;
  const tb = readHostRecord(b.rundir)!.pci![0]!.tap!;
  t.equal(ta, hostNicTap(3, a.rundir), `host.json lists ${ta}`);
  t.match(ta, /^xpt03-[0-9a-f]{8}$/, 'xpt03 and the host');
  t.ok(ta.length <= 15, 'within IFNAMSIZ');
  t.not(ta, tb, `the other host's is ${tb}`);
  t.ok(linkExists(ta) && linkExists(tb), 'both in the namespace');
  for (const h of [a, b]) t.notMatch(readFileSync(join(h.rundir, 'logs', `pcidev-${NIC}.log`), 'utf8'), /no TAP/, 'each NIC has its wire');
  await a.down();
  t.notOk(linkExists(ta), 'the first host\'s goes with it');
  t.ok(linkExists(tb), 'the other\'s stays');
});
