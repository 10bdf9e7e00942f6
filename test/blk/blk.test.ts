// The block split driver through a real host (hypervisor, Domain-0 with
// blkback, a PV guest with blkfront): the xenbus handshake and its keys,
// dd writes and reads, a request past the end refused by blkback (by name),
// the file system across a reboot, flush reaching the image, discard,
// block-attach/-detach/-list, durability after SIGKILL of the guest, of
// Domain-0 and of the hypervisor.
import t from 'tap';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startHost, waitFor, readHostRecord, type TestHost } from '../helpers/host.js';
import { PtyClient, xl, xlOk, xenstore, writeCfg } from '../host/xl.js';
import { rejections } from './rejections.js';

const MiB = 1 << 20;

async function guestConsole(t: { teardown(fn: () => unknown): void }, h: TestHost, domid: number): Promise<{
  run(line: string, timeoutMs?: number): Promise<string>;
}> {
  const xs = await xenstore(t, h);
  const tty = await waitFor(() => xs.tryRead(`/local/domain/${domid}/console/tty`), 15_000, 'console tty');
  const c = new PtyClient(tty!);
  t.teardown(() => c.close());
  await c.until(/root@[\w-]+:~# $/, 0, 20_000);
  return {
    async run(line, timeoutMs = 60_000) {
      const from = c.text.length;
      c.write(`${line}\r`);
      const m = await c.until(/\r?\n([\s\S]*?)root@[\w-]+:~# $/, from, timeoutMs);
      return m[1]!.replace(/\r/g, '');
    },
  };
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

t.test('blkfront/blkback on a real host', async (t) => {
  const outer = t;
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const img = join(h.root, 'disk.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 32 * MiB);
  const cfg = writeCfg(h, 'g.cfg', `name = "bg"\nmemory = 64\ndisk = [ 'file:${img},xvda,w' ]\non_reboot = "restart"\n`);
  const xs = await xenstore(t, h);
  const c = await xl(h, ['create', cfg]);
  t.equal(c.code, 0, `create (${c.stderr})`);
  const domid = Number((await xlOk(h, 'domid', 'bg')).trim());
  const be = `/local/domain/0/backend/vbd/${domid}/51712`;
  const fe = `/local/domain/${domid}/device/vbd/51712`;
  await waitFor(async () => (await xs.tryRead(`${fe}/state`)) === '4', 15_000, 'frontend Connected');

  await t.test('handshake: states and keys', async (t) => {
    t.equal(await xs.readString(`${be}/state`), '4', 'backend Connected');
    t.equal(await xs.readString(`${be}/params`), img);
    t.equal(await xs.readString(`${be}/mode`), 'w');
    t.equal(await xs.readString(`${be}/sectors`), String(32 * MiB / 512));
    t.equal(await xs.readString(`${be}/sector-size`), '512');
    t.equal(await xs.readString(`${be}/info`), '0');
    for (const f of ['feature-flush-cache', 'feature-discard', 'feature-persistent']) t.equal(await xs.readString(`${be}/${f}`), '1', f);
    t.equal(await xs.readString(`${be}/feature-max-indirect-segments`), '256');
    t.equal(await xs.readString(`${be}/frontend`), fe);
    t.equal(await xs.readString(`${fe}/backend`), be);
    t.equal(await xs.readString(`${fe}/backend-id`), '0');
    t.equal(await xs.readString(`${fe}/virtual-device`), '51712');
    t.equal(await xs.readString(`${fe}/device-type`), 'disk');
    t.match(await xs.readString(`${fe}/ring-ref`), /^\d+$/);
    t.match(await xs.readString(`${fe}/event-channel`), /^\d+$/);
    t.equal(await xs.readString(`${fe}/protocol`), 'x86_64-abi');
    t.same(await xs.getPerms(fe), [`n${domid}`, 'r0'], 'frontend dir owned by the guest');
    t.same(await xs.getPerms(be), ['n0', `r${domid}`], 'backend dir owned by Dom0');
    const list = await xlOk(h, 'block-list', 'bg');
    t.match(list, /^Vdev  BE  handle state evt-ch ring-ref BE-path/);
    t.match(list, new RegExp(`^51712 0   ${domid}\\s+4\\s+\\d+\\s+\\d+\\s+${be}`, 'm'));
  });

  const g = await guestConsole(t, h, domid);
  let after = { domid, g };

  await t.test('dd write, flush, read back; data in the image', async (t) => {
    const w = await g.run('dd if=/dev/urandom of=/dev/xvda bs=1M count=16 conv=fsync');
    t.match(w, /16\+0 records in\n16\+0 records out\n16777216 bytes \(17 MB, 16 MiB\) copied, [\d.]+ s, [\d.]+ [kMG]?B\/s/);
    const host16 = md5(fs.readFileSync(img).subarray(0, 16 * MiB));
    const guest = await g.run('md5sum /dev/xvda 16M');
    t.equal(guest.trim(), `${host16}  /dev/xvda`, 'what the guest reads is what the image holds');
    const r = await g.run('dd if=/dev/xvda of=/dev/null bs=1M count=16');
    t.match(r, /16777216 bytes/);
    t.match(await g.run('blkstat'), /xvda: requests \d+ bytes \d+ notify-sent \d+ notify-received \d+ errors 0/);
  });

  await t.test('errors are responses: beyond the end', async (t) => {
    const r = await g.run('dd if=/dev/zero of=/dev/xvda bs=1M count=2 seek=31');
    t.match(r, /1\+0 records out/, 'dd stops at the end of the device (it never asks blkback past it)');
    // blkreq sends one request as given, past blkfront's own range check: blkback's answers.
    const sectors = 32 * MiB / 512;
    const rej = rejections(h.rundir, 'vbd', domid);
    const tail = () => fs.readFileSync(img).subarray(-8 * 512);
    const w = await rej.expect(t, 'a write of 8 sectors from 4 before the end', 51712, 'sector_out_of_range',
      () => g.run(`blkreq write /dev/xvda ${sectors - 4} 8`));
    t.equal(w, `blkreq: write of 8 sectors at ${sectors - 4} on xvda: BLKIF_RSP_ERROR (-1)\n`, 'the guest gets BLKIF_RSP_ERROR');
    t.ok(tail().every((b) => b === 0), 'nothing of it was written');
    const rd = await rej.expect(t, 'a read of 1 sector at the end', 51712, 'sector_out_of_range',
      () => g.run(`blkreq read /dev/xvda ${sectors} 1`));
    t.match(rd, /BLKIF_RSP_ERROR \(-1\)/, 'a read at the end: BLKIF_RSP_ERROR');
    const ok = await rej.expect(t, 'the last 8 sectors', 51712, null, () => g.run(`blkreq write /dev/xvda ${sectors - 8} 8`));
    t.match(ok, /BLKIF_RSP_OKAY \(0\)/, 'the same write ending at the end is served');
    t.ok(tail().every((b) => b === 0xa5), 'and is in the image');
  });

  await t.test('file system, discard, survives a reboot', async (t) => {
    t.match(await g.run('mkfs /dev/xvda'), /mounted \/dev\/xvda on \//);
    t.equal(await g.run('write note hello from xenemu'), '');
    t.equal(await g.run('write scratch to be discarded'), '');
    t.equal(await g.run('rm scratch'), '');
    t.equal(await g.run('ls'), 'note\n');
    t.equal(await g.run('cat note'), 'hello from xenemu\n');
    t.ok(fs.readFileSync(img).includes(Buffer.from('hello from xenemu')), 'the file is in the image after write (flushed)');
    await xl(h, ['reboot', 'bg']);
    const domid2 = await waitFor(async () => {
      const id = Number((await xl(h, ['domid', 'bg'])).stdout.trim());
      return id && id !== domid ? id : 0;
    }, 20_000, 'new domid');
    const g2 = await guestConsole(outer, h, domid2);
    after = { domid: domid2, g: g2 };
    t.equal(await g2.run('cat note'), 'hello from xenemu\n', 'data survives the reboot');
    t.equal(await g2.run('ls'), 'note\n');
  });

  await t.test('block-attach, block-detach on a running guest', async (t) => {
    const { domid: domid3, g: g3 } = after;
    const img2 = join(h.root, 'disk2.img');
    fs.writeFileSync(img2, Buffer.alloc(4 * MiB, 0x5a));
    t.equal((await xl(h, ['block-attach', 'bg', `${img2},raw,xvdb,rw`])).code, 0);
    await waitFor(async () => (await xs.tryRead(`/local/domain/${domid3}/device/vbd/51728/state`)) === '4', 15_000, 'xvdb Connected');
    await waitFor(async () => /xvdb/.test(await g3.run('lsblk')), 10_000, 'xvdb in lsblk');
    t.equal((await g3.run('md5sum /dev/xvdb')).trim(), `${md5(fs.readFileSync(img2))}  /dev/xvdb`);
    t.match(await xlOk(h, 'block-list', 'bg'), /^51728 /m);
    t.equal((await xl(h, ['block-detach', 'bg', 'xvdb'])).code, 0);
    t.equal(await xs.tryRead(`/local/domain/0/backend/vbd/${domid3}/51728`), null, 'backend dir removed');
    await waitFor(async () => !/xvdb/.test(await g3.run('lsblk')), 10_000, 'xvdb gone from the guest');
  });
});

t.test('durability: flushed writes are in the image after SIGKILL of the guest, Dom0, hypervisor', async (t) => {
  for (const victim of ['guest', 'dom0', 'hypervisor'] as const) {
    await t.test(victim, async (t) => {
      const h = await startHost(t, { memory: 512, pcpus: 2 });
      const img = join(h.root, 'disk.img');
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 8 * MiB);
      const cfg = writeCfg(h, 'g.cfg', `name = "d"\nmemory = 32\ndisk = [ '${img},raw,xvda,rw' ]\n`);
      t.equal((await xl(h, ['create', cfg])).code, 0);
      const domid = Number((await xlOk(h, 'domid', 'd')).trim());
      const g = await guestConsole(t, h, domid);
      t.match(await g.run('mkfs /dev/xvda'), /mounted/);
      t.equal(await g.run(`write proof survived-${victim}`), '');
      const rec = readHostRecord(h.rundir)!;
      const pid = victim === 'guest' ? rec.pids.domains[domid]! : victim === 'dom0' ? rec.pids.domains[0]! : rec.pids.hypervisor;
      process.kill(pid, 'SIGKILL');
      await waitFor(() => fs.readFileSync(img).includes(Buffer.from(`survived-${victim}`)), 5_000, 'data in the image');
      t.pass(`what was written and flushed is in the image after SIGKILL of the ${victim}`);
    });
  }
});
