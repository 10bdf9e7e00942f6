// Shell commands on block devices: dd, md5sum, lsblk, blkstat, blkreq, blkbench,
// and the small file system (mkfs, mount, ls, cat, write, rm, df).
import { createHash, randomFillSync } from 'node:crypto';
import type { Command, CommandIo } from '../services.js';
import type { BlockDevice, BlockDeviceList } from '../drivers/blkdev.js';
import { Blkfront } from '../../../shared/front/blkfront.js';
import { BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY } from '../../../shared/abi/io/blkif.js';
import { SimpleFs } from '../drivers/simplefs.js';

/** The mounted file system (one, at /). */
export interface Mounts { root: SimpleFs | null }

/** dd's size suffixes: c w b K M G (1024) and kB MB GB (1000). */
export function parseDdSize(s: string): number | null {
  const m = /^(\d+)(c|w|b|K|k|KiB|M|MiB|G|GiB|kB|MB|GB)?$/.exec(s);
  if (!m) return null;
  const mult: Record<string, number> = {
    c: 1, w: 2, b: 512, K: 1024, k: 1024, KiB: 1024, M: 1 << 20, MiB: 1 << 20, G: 1 << 30, GiB: 1 << 30,
    kB: 1000, MB: 1e6, GB: 1e9,
  };
  return Number(m[1]) * (m[2] ? mult[m[2]]! : 1);
}

/** GNU dd's "(17 MB, 16 MiB)" and rate, as coreutils prints them. */
export function ddSummary(bytes: number, secs: number, recIn: number, recOut: number): string {
  const si = (n: number) => { const u = ['B', 'kB', 'MB', 'GB', 'TB']; let i = 0; while (n >= 1000 && i < 4) { n /= 1000; i++; } return i === 0 ? `${n} B` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${u[i]}`; };
  const iec = (n: number) => { const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return i === 0 ? `${n} B` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${u[i]}`; };
  const sizes = bytes >= 1000 ? ` (${si(bytes)}${bytes >= 1024 ? `, ${iec(bytes)}` : ''})` : '';
  const rate = secs > 0 ? si(bytes / secs) : 'Infinity B';
  return `${recIn}+0 records in\n${recOut}+0 records out\n` +
    `${bytes} byte${bytes === 1 ? '' : 's'}${sizes} copied, ${secs.toPrecision(3)} s, ${rate}/s\n`;
}

function ddArgs(argv: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (const a of argv.slice(1)) {
    const i = a.indexOf('=');
    if (i <= 0) throw new Error(`unrecognized operand '${a}'`);
    o[a.slice(0, i)] = a.slice(i + 1);
  }
  return o;
}

const errMsg = (e: unknown) => (e as Error).message;

export function blkCommands(blk: BlockDeviceList, mounts: Mounts): Command[] {
  const dev = (path: string | undefined, io: CommandIo, cmd: string): BlockDevice | null => {
    const d = path ? blk.get(path) : undefined;
    if (!d) { io.out(`${cmd}: ${path ?? ''}: No such device\n`); return null; }
    return d;
  };
  const root = (io: CommandIo, cmd: string): SimpleFs | null => {
    if (!mounts.root) io.out(`${cmd}: no file system mounted (mkfs /dev/xvda)\n`);
    return mounts.root;
  };

  const dd: Command = {
    name: 'dd', help: 'dd if=/dev/zero|/dev/urandom|/dev/xvdX of=/dev/null|/dev/xvdX bs=N count=N [skip= seek= conv=fsync oflag=direct]',
    async run(argv, io) {
      let o: Record<string, string>;
      try { o = ddArgs(argv); } catch (e) { io.out(`dd: ${(e as Error).message}\n`); return 1; }
      const bs = parseDdSize(o.bs ?? '512');
      const count = o.count !== undefined ? Number(o.count) : NaN;
      const skip = Number(o.skip ?? 0);
      const seek = Number(o.seek ?? 0);
      if (!bs || bs % 512 !== 0) { io.out(`dd: invalid block size '${o.bs}' (a multiple of 512)\n`); return 1; }
      const src = o.if ?? '/dev/zero';
      const dst = o.of ?? '/dev/null';
      // A disk is any /dev/ name but the character devices dd knows.
      const isDisk = (p: string) => p.startsWith('/dev/') && !['/dev/zero', '/dev/urandom', '/dev/null'].includes(p);
      const inDev = isDisk(src) ? dev(src, io, 'dd') : null;
      const outDev = isDisk(dst) ? dev(dst, io, 'dd') : null;
      if ((isDisk(src) && !inDev) || (isDisk(dst) && !outDev)) return 1;
      if (!inDev && src !== '/dev/zero' && src !== '/dev/urandom') { io.out(`dd: failed to open '${src}': No such file or directory\n`); return 1; }
      if (!outDev && dst !== '/dev/null') { io.out(`dd: failed to open '${dst}': No such file or directory\n`); return 1; }
      let n = Number.isFinite(count) ? count : Infinity;
      if (inDev) n = Math.min(n, Math.floor((inDev.sectors * 512 - skip * bs) / bs));
      if (outDev) n = Math.min(n, Math.floor((outDev.sectors * 512 - seek * bs) / bs));
      if (!Number.isFinite(n) || n < 0) { io.out('dd: a count is needed for an endless input\n'); return 1; }
      const direct = (o.oflag ?? '').includes('direct') || (o.iflag ?? '').includes('direct');
      // Buffered dd keeps 8 MiB in flight (the page cache's write-behind and read-ahead; as much as
      // blkfront's pool holds); oflag=direct waits for each block.
      const window = direct ? 1 : Math.max(2, Math.ceil((8 << 20) / bs));
      const t0 = performance.now();
      let done = 0;
      let failed: unknown = null;
      const inflight = new Set<Promise<void>>();
      // Block buffers are reused (one per block in flight), as dd reuses its one buffer. They are
      // lent by the device's granted pool where it can (reads land in them, writes go from them,
      // without a copy in the guest), else ordinary memory.
      const lender = inDev ?? (src === '/dev/zero' ? outDev : null);
      const lent: Uint8Array[] = [];
      const buffer = (): Uint8Array => {
        const b = lender?.allocBuffer(bs) ?? null;
        if (!b) return new Uint8Array(bs);
        lent.push(b);
        return b;
      };
      const zero = src === '/dev/zero' ? buffer().fill(0) : new Uint8Array(0);
      const spare: Uint8Array[] = [];
      try {
        for (let i = 0; i < n && !failed; i++) {
          if (io.signal.aborted) break;
          const buf = src === '/dev/zero' ? zero : (spare.pop() ?? buffer());
          const step = (async () => {
            if (src === '/dev/urandom') randomFillSync(buf);
            if (inDev) await inDev.read(((skip + i) * bs) / 512, buf);
            if (outDev) await outDev.write(((seek + i) * bs) / 512, buf);
            done++;
          })().catch((e) => { failed ??= e; }).finally(() => { if (buf !== zero) spare.push(buf); });
          inflight.add(step);
          void step.finally(() => inflight.delete(step));
          if (inflight.size >= window) await Promise.race(inflight);
        }
        await Promise.all(inflight);
        if (!failed && outDev && (o.conv ?? '').split(',').some((c) => c === 'fsync' || c === 'fdatasync')) await outDev.flush();
      } catch (e) { failed ??= e; } finally {
        for (const b of lent) lender!.freeBuffer(b);
      }
      const secs = (performance.now() - t0) / 1000;
      if (failed) io.out(`dd: error ${inDev && !outDev ? 'reading' : 'writing'} '${inDev && !outDev ? src : dst}': ${errMsg(failed)}\n`);
      io.out(ddSummary(done * bs, secs, done, done));
      return failed ? 1 : 0;
    },
  };

  const md5sum: Command = {
    name: 'md5sum', help: 'md5sum /dev/xvdX [BYTES]: checksum of a device (or its first BYTES)',
    async run(argv, io) {
      const d = dev(argv[1], io, 'md5sum');
      if (!d) return 1;
      const total = argv[2] ? parseDdSize(argv[2]) : d.sectors * 512;
      if (total === null || total % 512 !== 0 || total > d.sectors * 512) { io.out(`md5sum: bad length ${argv[2]}\n`); return 1; }
      const h = createHash('md5');
      const chunk = 1 << 20;
      const bufs = [new Uint8Array(chunk), new Uint8Array(chunk)];
      let pending: Promise<void> | null = null;
      for (let off = 0, k = 0; off < total; off += chunk, k ^= 1) {
        const b = bufs[k]!.subarray(0, Math.min(chunk, total - off));
        const p = d.read(off / 512, b);
        if (pending) await pending;
        pending = p.then(() => { h.update(b); });
      }
      if (pending) await pending;
      io.out(`${h.digest('hex')}  ${argv[1]}\n`);
      return 0;
    },
  };

  const lsblk: Command = {
    name: 'lsblk', help: 'list block devices',
    run(_a, io) {
      io.out('NAME  MAJ:MIN     SIZE RO TYPE MOUNTPOINT\n');
      for (const d of [...blk.devices.values()].sort((a, b) => a.name.localeCompare(b.name))) {
        const mib = (d.sectors * 512) / 1048576;
        io.out(`${d.name.padEnd(5)} ${`${d.devid >> 8}:${d.devid & 0xff}`.padEnd(8)} ${`${mib.toFixed(0)}M`.padStart(7)} ${d.readonly ? ' 1' : ' 0'} disk ${mounts.root?.dev === d ? '/' : ''}\n`);
      }
      return 0;
    },
  };

  const blkstat: Command = {
    name: 'blkstat', help: 'blkfront counters: requests, bytes, notifications',
    run(_a, io) {
      for (const d of blk.devices.values()) {
        const s = d.stats;
        io.out(`${d.name}: requests ${s.requests} bytes ${s.bytes} notify-sent ${s.notifiesSent} notify-received ${s.notifiesReceived} errors ${s.errors}\n`);
      }
      return 0;
    },
  };

  const blkreq: Command = {
    name: 'blkreq', help: 'blkreq read|write /dev/xvdX SECTOR COUNT: one raw request, unchecked by blkfront; prints the back end\'s status',
    async run(argv, io) {
      const op = argv[1] === 'write' ? BLKIF_OP_WRITE : BLKIF_OP_READ;
      const any = dev(argv[2], io, 'blkreq');
      if (!any) return 1;
      if (!(any instanceof Blkfront)) { io.out(`blkreq: ${argv[2]}: not a blkfront device\n`); return 1; }
      const d = any;
      const sector = Number(argv[3]);
      const count = Number(argv[4]);
      if ((argv[1] !== 'read' && argv[1] !== 'write') || !Number.isSafeInteger(sector) || sector < 0 || !Number.isInteger(count) || count < 1 ||
          count * 512 > d.maxRequestBytes) {
        io.out(`blkreq: usage: blkreq read|write /dev/xvdX SECTOR COUNT (COUNT 1..${d.maxRequestBytes / 512})\n`);
        return 2;
      }
      // A write carries 0xa5 bytes, so that a partial write would show in the image.
      const data = new Uint8Array(count * 512).fill(op === BLKIF_OP_WRITE ? 0xa5 : 0);
      let status: number;
      try { status = await d.request(op, sector, data); } catch (e) { io.out(`blkreq: ${errMsg(e)}\n`); return 1; }
      const name = status === BLKIF_RSP_OKAY ? 'BLKIF_RSP_OKAY' : status === BLKIF_RSP_EOPNOTSUPP ? 'BLKIF_RSP_EOPNOTSUPP' : 'BLKIF_RSP_ERROR';
      io.out(`blkreq: ${argv[1]} of ${count} sectors at ${sector} on ${d.name}: ${name} (${status})\n`);
      return status === BLKIF_RSP_OKAY ? 0 : 1;
    },
  };

  const blkbench: Command = {
    name: 'blkbench', help: 'blkbench randread|seqread|seqwrite /dev/xvdX [count=N bs=N qd=N]',
    async run(argv, io) {
      const mode = argv[1];
      const d = dev(argv[2], io, 'blkbench');
      if (!d) return 1;
      let o: Record<string, string>;
      try { o = ddArgs(argv.slice(2)); } catch (e) { io.out(`blkbench: ${(e as Error).message}\n`); return 1; }
      const bs = parseDdSize(o.bs ?? '4096') ?? 4096;
      const count = Number(o.count ?? 10000);
      const qd = Number(o.qd ?? 32);
      const blocks = Math.floor((d.sectors * 512) / bs);
      if (!['randread', 'seqread', 'seqwrite'].includes(mode ?? '') || bs % 512 || blocks < 1) { io.out('blkbench: bad arguments\n'); return 1; }
      const before = { ...d.stats };
      let next = 0;
      const t0 = performance.now();
      const worker = async () => {
        const buf = new Uint8Array(bs);
        while (next < count && !io.signal.aborted) {
          const i = next++;
          const blkno = mode === 'randread' ? Math.floor(Math.random() * blocks) : i % blocks;
          if (mode === 'seqwrite') await d.write((blkno * bs) / 512, buf);
          else await d.read((blkno * bs) / 512, buf);
        }
      };
      await Promise.all(Array.from({ length: qd }, worker));
      const secs = (performance.now() - t0) / 1000;
      const mib = (next * bs) / 1048576;
      const sent = d.stats.notifiesSent - before.notifiesSent;
      const recv = d.stats.notifiesReceived - before.notifiesReceived;
      io.out(`${mode} ${next} x ${bs} B qd ${qd}: ${secs.toFixed(3)} s, ${Math.round(next / secs)} IOPS, ${(mib / secs).toFixed(1)} MiB/s, ` +
        `notify-sent ${sent} notify-received ${recv}\n`);
      return 0;
    },
  };

  const mkfs: Command = {
    name: 'mkfs', help: 'mkfs /dev/xvdX: make a file system and mount it at /',
    async run(argv, io) {
      const d = dev(argv[1], io, 'mkfs');
      if (!d) return 1;
      try { mounts.root = await SimpleFs.mkfs(d); } catch (e) { io.out(`mkfs: ${errMsg(e)}\n`); return 1; }
      const u = mounts.root.usage();
      io.out(`Creating filesystem on ${argv[1]}: ${u.total} blocks of 4096 bytes, 1024 inodes\nmounted ${argv[1]} on /\n`);
      return 0;
    },
  };

  const mount: Command = {
    name: 'mount', help: 'mount [/dev/xvdX]: show or mount the file system',
    async run(argv, io) {
      if (!argv[1]) { if (mounts.root) io.out(`/dev/${mounts.root.dev.name} on / type xenemufs (rw)\n`); return 0; }
      const d = dev(argv[1], io, 'mount');
      if (!d) return 1;
      const fs = await SimpleFs.mount(d).catch(() => null);
      if (!fs) { io.out(`mount: ${argv[1]}: wrong fs type, bad superblock\n`); return 32; }
      mounts.root = fs;
      return 0;
    },
  };

  const ls: Command = {
    name: 'ls', help: 'ls [-l]: files of the mounted file system',
    run(argv, io) {
      const fs = root(io, 'ls');
      if (!fs) return 2;
      const long = argv.includes('-l');
      for (const e of fs.list()) {
        if (long) io.out(`-rw-r--r-- 1 root root ${String(e.length).padStart(8)} ${new Date(e.mtime * 1000).toISOString().slice(0, 16).replace('T', ' ')} ${e.name}\n`);
        else io.out(`${e.name}\n`);
      }
      return 0;
    },
  };

  const cat: Command = {
    name: 'cat', help: 'cat FILE...',
    async run(argv, io) {
      const fs = root(io, 'cat');
      if (!fs) return 1;
      let rc = 0;
      for (const name of argv.slice(1)) {
        try { io.out(Buffer.from(await fs.read(name)).toString('utf8')); } catch (e) { io.out(`cat: ${errMsg(e)}\n`); rc = 1; }
      }
      return rc;
    },
  };

  const write: Command = {
    name: 'write', help: 'write FILE TEXT...: replace FILE with TEXT and a newline (flushed to the disk)',
    async run(argv, io) {
      const fs = root(io, 'write');
      if (!fs) return 1;
      if (!argv[1]) { io.out('write: usage: write FILE TEXT...\n'); return 2; }
      try { await fs.write(argv[1], Buffer.from(`${argv.slice(2).join(' ')}\n`)); } catch (e) { io.out(`write: ${errMsg(e)}\n`); return 1; }
      return 0;
    },
  };

  const rm: Command = {
    name: 'rm', help: 'rm FILE...',
    async run(argv, io) {
      const fs = root(io, 'rm');
      if (!fs) return 1;
      let rc = 0;
      for (const name of argv.slice(1)) {
        try { await fs.remove(name); } catch (e) { io.out(`rm: cannot remove '${name}': ${errMsg(e)}\n`); rc = 1; }
      }
      return rc;
    },
  };

  const df: Command = {
    name: 'df', help: 'df: usage of the mounted file system',
    run(_a, io) {
      const fs = root(io, 'df');
      if (!fs) return 1;
      const u = fs.usage();
      io.out(`Filesystem     1K-blocks  Used Available Use% Mounted on\n` +
        `/dev/${fs.dev.name.padEnd(9)} ${String(u.total * 4).padStart(9)} ${String(u.used * 4).padStart(5)} ${String((u.total - u.used) * 4).padStart(9)} ${String(Math.round((100 * u.used) / u.total)).padStart(3)}% /\n`);
      return 0;
    },
  };

  const sync: Command = {
    name: 'sync', help: 'flush every block device',
    async run(_a, io) {
      for (const d of blk.devices.values()) await d.flush().catch((e) => io.out(`sync: ${d.name}: ${errMsg(e)}\n`));
      return 0;
    },
  };

  return [dd, md5sum, lsblk, blkstat, blkreq, blkbench, mkfs, mount, ls, cat, write, rm, df, sync];
}
