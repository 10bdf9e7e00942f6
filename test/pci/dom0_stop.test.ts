// Passthrough with Domain-0 stopped (SIGSTOP) in the middle of a run: the
// guest's BAR accesses, DMA and interrupts go through the device process and
// the hypervisor only, so its e1000 keeps answering and sending pings and
// its NVMe keeps writing; a configuration access goes through pciback in
// Domain-0, so pcifront gives up on it after XEN_PCIF_OP_TIMEOUT_MS as
// Linux's do_pci_op does ("pciback not responding!!!",
// XEN_PCI_ERR_dev_not_found: -ENODEV to the kernel, all-ones to setpci
// through sysfs). After SIGCONT everything answers again.
//
// The guest's console goes through Domain-0's xenconsoled, so what it runs
// during the stop is typed before it: a ping (under way when Domain-0
// stops), then setpci and dd waiting as type-ahead; their output arrives
// after SIGCONT.
import t from 'tap';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readHostRecord, startHost, waitFor } from '../helpers/host.js';
import { list, writeCfg, xlOk } from '../host/xl.js';
import { attachGuest } from '../net/guests.js';
import { makeAssignable, rootWithImages } from '../helpers/pci.js';
import { ip } from '../../shared/net/netns.js';
import { netnsUnavailable, throwawayNetns } from '../net/netns_helpers.js';
import { hostNicTap } from '../../processes/pcidev/wire.js';

const why = netnsUnavailable() ?? (() => { try { execFileSync('ping', ['-V'], { stdio: 'ignore' }); return null; } catch { return 'no ping (iputils-ping, .ci/setup)'; } })();
const MIB = 4;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
/** 4 KiB blocks of the image that are not all zero. */
const written = (img: string): number => {
  const b = readFileSync(img);
  let n = 0;
  for (let o = 0; o < b.length; o += 4096) if (b.subarray(o, o + 4096).some((x) => x !== 0)) n++;
  return n;
};

t.test('Domain-0 stopped: passthrough I/O goes on, configuration accesses time out, all recovers', { skip: why ?? false }, async (t) => {
  const ns = throwawayNetns(t);
  const { root, images } = rootWithImages(['nvme.img'], MIB << 20);
  const img = images[0]!;
  const h = await startHost(t, { memory: 512, pcpus: 2, root, netns: ns, pci: ['e1000', `nvme:${img}`] });
  ip(['addr', 'add', '10.77.0.1/24', 'dev', hostNicTap(3)], ns);
  await makeAssignable(h, '0000:03:00.0', '0000:04:00.0');
  await xlOk(h, 'create', writeCfg(h, 's.cfg', `name = "s"\nmemory = 64\npci = [ '03:00.0', '04:00.0' ]\n`));
  const g = await attachGuest(t, h, 's', (await list(h)).find((r) => r.name === 's')!.id);
  await waitFor(async () => /eth0: Intel\(R\) PRO\/1000/.test(await g.run('dmesg')) && /nvme0n1/.test(await g.run('lsblk')), 20_000, 'eth0 and nvme0n1');
  const slot = /^(\S+) 0200: 8086:100e/m.exec(await g.run('lspci -n'))?.[1];
  t.ok(slot, `the NIC at ${slot}`);
  t.equal(await g.run('ifconfig eth0 10.77.0.2 netmask 255.255.255.0 up'), '');
  t.match(await g.run('ping -c 1 10.77.0.1', 10_000), /1 received/, 'the wire works before the stop');

  const dom0 = readHostRecord(h.rundir)!.pids.domains[0]!;
  const from = g.pty.text.length;
  // Typed now, run one after the other: the ping is under way when Domain-0
  // stops; setpci and dd start while it is stopped.
  g.pty.write(`ping -c 15 -i 0.2 10.77.0.1\rsetpci -s ${slot} VENDOR_ID\rdd if=/dev/urandom of=/dev/nvme0n1 bs=64K count=${MIB * 16}\r`);
  await g.pty.until(/PING 10\.77\.0\.1/, from, 10_000);
  process.kill(dom0, 'SIGSTOP');
  let inbound = '';
  let ddDuringStop = 0;
  try {
    // The namespace pings the guest: its e1000, its INTx pirq and its kernel's answer, none of it Domain-0's.
    inbound = execFileSync('ip', ['netns', 'exec', ns, 'ping', '-c', '5', '-i', '0.2', '-W', '3', '10.77.0.2'], { encoding: 'utf8', timeout: 20_000 });
    // dd runs after setpci gave up (2 s): the image fills through the NVMe's DMA while Domain-0 is still stopped.
    await waitFor(() => written(img) > 0, 20_000, 'dd writing to the image with Domain-0 stopped');
    ddDuringStop = written(img);
    t.equal(readFileSync(`/proc/${dom0}/stat`, 'utf8').split(') ')[1]![0], 'T', 'Domain-0 was stopped all along');
  } finally {
    process.kill(dom0, 'SIGCONT');
  }
  t.match(inbound, /5 packets transmitted, 5 received, 0% packet loss/, 'the namespace\'s pings to the guest were answered during the stop');
  t.ok(ddDuringStop > 0, `${ddDuringStop} blocks of the image written during the stop`);

  await g.pty.until(/records out[\s\S]*root@s:~# $/, from, 30_000);
  const out = g.pty.text.slice(from).replace(/\r/g, '');
  t.match(out, /15 packets transmitted, 15 received, 0% packet loss/, 'the guest\'s pings through the e1000 all came back across the stop');
  t.match(out, /VENDOR_ID\nffff\n/, 'the config read pciback never answered: all-ones');
  t.match(out, new RegExp(`${MIB * 16}\\+0 records out`), 'dd finished');
  t.match(await g.run('dmesg'), /pcifront pci-0: pciback not responding!!!/, 'pcifront logged the timeout');

  // Recovery: configuration space, the wire both ways, the disk's bytes.
  t.equal(await g.run(`setpci -s ${slot} VENDOR_ID`), '8086\n', 'pciback answers again');
  t.match(await g.run('ping -c 3 -i 0.2 10.77.0.1', 15_000), /3 received/, 'guest -> namespace');
  t.match(execFileSync('ip', ['netns', 'exec', ns, 'ping', '-c', '3', '-i', '0.2', '-W', '3', '10.77.0.2'], { encoding: 'utf8', timeout: 20_000 }),
    /3 received/, 'namespace -> guest');
  t.equal(await g.run('md5sum /dev/nvme0n1', 30_000), `${md5(readFileSync(img))}  /dev/nvme0n1\n`, 'the guest reads back what dd wrote');
  await xlOk(h, 'destroy', 's');
});
