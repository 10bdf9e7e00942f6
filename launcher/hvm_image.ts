// `xenemu hvm-image`: a bootable CD image of Debian's i386 Linux with a
// busybox shell on the serial console, for trying HVM guests (and for the
// HVM tests and benchmarks, which share one cached copy).
//
//   Debian packages  linux-image-686:i386 (the kernel and its modules),
//                    busybox-static:i386, isolinux, syslinux-common
//                    (apt-get download + dpkg -x into the cache: nothing is
//                    installed), xorriso and cpio (installed when missing)
//   initramfs        busybox, the modules an HVM guest's PC needs (ata_piix,
//                    sd_mod, sr_mod, e1000, isofs, and nvme for a host NVMe
//                    passed through; with what they depend on,
//                    from their .modinfo), and an /init that loads them and
//                    starts a shell on the console
//   ISO              isolinux booting that kernel with console=ttyS0
//
// The image is built once per kernel version and content (the modules and
// /init, whose hash names the directory) in $XDG_CACHE_HOME/xenemu
// (~/.cache/xenemu) and reused; `--rebuild` makes it again.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, basename } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';

/** The drivers an HVM guest's PC needs that Debian's 686 kernel builds as modules. */
export const HVM_MODULES = ['ata_piix', 'sd_mod', 'sr_mod', 'e1000', 'isofs', 'nvme'];

export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'xenemu');
}

export interface HvmImage { iso: string; kernel: string; built: boolean }

type Log = (m: string) => void;

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function asRoot(): string[] {
  if (process.getuid?.() === 0) return [];
  if (spawnSync('sudo', ['-n', 'true']).status === 0) return ['sudo', '-n'];
  throw new Error('building the HVM image needs root (or password-less sudo) to add the i386 architecture and install xorriso/cpio');
}

function sudo(args: string[]): void {
  const pre = asRoot();
  const [cmd, ...rest] = [...pre, ...args];
  run(cmd!, rest);
}

/** Debian's i386 package lists, for apt-get download of i386 packages (nothing i386 gets installed). */
function ensureI386(log: Log): void {
  const foreign = run('dpkg', ['--print-foreign-architectures']).split('\n');
  const hasLists = spawnSync('apt-cache', ['policy', 'busybox-static:i386'], { encoding: 'utf8' }).stdout.includes('Candidate: 1');
  if (foreign.includes('i386') && hasLists) return;
  log('adding the i386 architecture to apt and updating its lists');
  if (!foreign.includes('i386')) sudo(['dpkg', '--add-architecture', 'i386']);
  sudo(['apt-get', 'update', '-qq']);
}

function ensureTools(log: Log): void {
  const need = [['xorriso', 'xorriso'], ['cpio', 'cpio']].filter(([cmd]) => spawnSync(cmd!, ['--version']).status !== 0).map(([, pkg]) => pkg!);
  if (!need.length) return;
  log(`installing ${need.join(' ')}`);
  sudo(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...need]);
}

/** The real package behind linux-image-686:i386 (a metapackage). */
function kernelPackage(): string {
  const out = run('apt-cache', ['depends', 'linux-image-686:i386']);
  const m = /Depends: (linux-image-[\d.]+-\d+-686):i386/.exec(out);
  if (!m) throw new Error(`cannot tell which kernel linux-image-686:i386 is:\n${out}`);
  return m[1]!;
}

/** Modules by name (dashes as underscores) in a module tree. */
function moduleIndex(root: string): Map<string, string> {
  const all = new Map<string, string>();
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ko')) all.set(f.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(root);
  return all;
}

/** `wanted` and what they depend on (the `depends=` of each .modinfo), dependencies first. */
function withDependencies(index: Map<string, string>, wanted: string[]): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const add = (n: string) => {
    if (seen.has(n)) return;
    seen.add(n);
    const p = index.get(n);
    if (!p) throw new Error(`module ${n} is not in the kernel package`);
    const b = readFileSync(p);
    const i = b.indexOf('depends=');
    if (i >= 0) for (const d of b.subarray(i + 8, b.indexOf(0, i)).toString().split(',').filter(Boolean)) add(d.replace(/-/g, '_'));
    order.push(n);
  };
  for (const n of wanted) add(n);
  return order;
}

/** A newc cpio archive (what the kernel's initramfs unpacker reads). */
function cpioNewc(entries: Array<{ name: string; mode: number; data?: Buffer; target?: string }>): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const data = e.target !== undefined ? Buffer.from(e.target) : (e as { data?: Buffer }).data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const head = Buffer.from(`070701${hex(ino++)}${hex(e.mode)}${hex(0)}${hex(0)}${hex(1)}${hex(0)}${hex(data.length)}` +
      `${hex(0)}${hex(0)}${hex(0)}${hex(0)}${hex(name.length)}${hex(0)}`, 'ascii');
    parts.push(head, name, pad4(head.length + name.length), data, pad4(data.length));
  }
  return Buffer.concat(parts);
}

const INIT = (modules: string[], kernel: string) => `#!/bin/busybox sh
# xenemu's HVM test image: busybox on the serial console of an HVM guest.
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${modules.join(' ')}; do insmod /lib/modules/$m.ko; done
hostname hvm
echo "xenemu HVM busybox: ${kernel}"
exec setsid cttyhack sh
`;

export async function buildHvmImage(o: { rebuild?: boolean; log?: Log } = {}): Promise<HvmImage> {
  const log = o.log ?? ((m: string) => process.stderr.write(`hvm-image: ${m}\n`));
  ensureI386(log);
  const kpkg = kernelPackage();
  const kernel = kpkg.replace(/^linux-image-/, '');
  // What goes into the image names its directory: a changed module list or /init is a new image.
  const content = createHash('sha256').update(JSON.stringify([HVM_MODULES, INIT(HVM_MODULES, kernel)])).digest('hex').slice(0, 8);
  const dir = join(cacheDir(), `hvm-linux-${kernel}-${content}`);
  const iso = join(dir, 'linux.iso');
  if (existsSync(iso) && !o.rebuild) return { iso, kernel, built: false };
  ensureTools(log);
  const work = join(dir, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'debs'), { recursive: true });
  log(`downloading ${kpkg}:i386, busybox-static:i386, isolinux, syslinux-common`);
  run('apt-get', ['download', '-q', `${kpkg}:i386`, 'busybox-static:i386', 'isolinux', 'syslinux-common'], { cwd: join(work, 'debs') });
  const root = join(work, 'root');
  for (const deb of readdirSync(join(work, 'debs'))) run('dpkg', ['-x', join(work, 'debs', deb), root]);

  const modules = withDependencies(moduleIndex(join(root, 'lib', 'modules', kernel, 'kernel')), HVM_MODULES);
  const index = moduleIndex(join(root, 'lib', 'modules', kernel, 'kernel'));
  const entries: Array<{ name: string; mode: number; data?: Buffer; target?: string }> = [
    { name: 'bin', mode: 0o40755 }, { name: 'lib', mode: 0o40755 }, { name: 'lib/modules', mode: 0o40755 },
    { name: 'bin/busybox', mode: 0o100755, data: readFileSync(join(root, 'bin', 'busybox')) },
    { name: 'init', mode: 0o100755, data: Buffer.from(INIT(modules, kernel)) },
    ...modules.map((m) => ({ name: `lib/modules/${m}.ko`, mode: 0o100644, data: readFileSync(index.get(m)!) })),
  ];
  const tree = join(work, 'iso');
  mkdirSync(join(tree, 'isolinux'), { recursive: true });
  writeFileSync(join(tree, 'initrd.gz'), gzipSync(cpioNewc(entries), { level: 9 }));
  copyFileSync(join(root, 'boot', `vmlinuz-${kernel}`), join(tree, 'vmlinuz'));
  copyFileSync(join(root, 'usr', 'lib', 'ISOLINUX', 'isolinux.bin'), join(tree, 'isolinux', 'isolinux.bin'));
  copyFileSync(join(root, 'usr', 'lib', 'syslinux', 'modules', 'bios', 'ldlinux.c32'), join(tree, 'isolinux', 'ldlinux.c32'));
  writeFileSync(join(tree, 'isolinux', 'isolinux.cfg'), [
    'default linux', 'prompt 0', 'timeout 0', 'label linux', '  kernel /vmlinuz',
    // tsc=unstable: v86's TSC follows the host's clock, not a crystal Linux can calibrate against.
    '  append initrd=/initrd.gz console=ttyS0,115200 tsc=unstable quiet loglevel=4', '',
  ].join('\n'));
  log(`making ${basename(iso)}`);
  const tmp = `${iso}.tmp`;
  run('xorriso', ['-as', 'mkisofs', '-quiet', '-o', tmp, '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
    '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', '-R', '-J', tree]);
  chmodSync(tmp, 0o644);
  renameSync(tmp, iso);
  rmSync(work, { recursive: true, force: true });
  return { iso, kernel, built: true };
}
