// qemu-dm's command line: the subset of upstream qemu-xen's arguments that
// libxl__build_device_model_args_new writes for an HVM guest, parsed as QEMU
// parses them (`-opt value`, values as `key=value,key=value` with a leading
// implied key). Anything libxl passes that xenemu does not emulate is
// accepted and ignored only where it changes nothing a guest sees (-vnc
// none, -display none, -nodefaults, ...); anything else is an error naming
// the option, so a config asking for what is not there fails at create.
//
//   -xen-domid 5 -name g -m 64 -boot order=cd -serial pty -vga std
//   -device VGA,vgamem_mb=16  -device e1000,id=nic0,netdev=net0,mac=00:16:3e:..
//   -netdev type=bridge,id=net0,br=xenbr0      (xenemu: netback's software bridge, not a tap)
//   -drive file=/x.img,if=ide,index=0,media=disk,format=raw[,readonly=on]
//   -machine xenfv

export interface DriveArg { file: string; index: number; media: 'disk' | 'cdrom'; readOnly: boolean }
export interface NicArg { id: string; mac: string; bridge: string; model: 'e1000' }

export interface QemuDmArgs {
  domid: number;
  name: string;
  memoryMiB: number;
  bootOrder: string;
  serial: 'pty' | 'none';
  vga: 'std' | 'none';
  vgaMemMiB: number;
  drives: DriveArg[];
  nics: NicArg[];
}

/** Ignored because they change nothing a guest of xenemu sees. */
const NO_VALUE_IGNORED = new Set(['-nodefaults', '-no-user-config', '-no-shutdown', '-S', '-daemonize']);
const VALUE_IGNORED = new Set(['-display', '-vnc', '-chardev', '-mon', '-pidfile', '-xen-attach', '-runas', '-smp', '-global', '-trace']);

/** `a=1,b=2` (with an implied first key) as QEMU's option parser reads it. */
export function parseOpts(s: string, implied?: string): Map<string, string> {
  const m = new Map<string, string>();
  s.split(',').forEach((part, i) => {
    if (part === '') return;
    const eq = part.indexOf('=');
    if (eq < 0) m.set(i === 0 && implied ? implied : part, i === 0 && implied ? part : 'on');
    else m.set(part.slice(0, eq), part.slice(eq + 1));
  });
  return m;
}

export class ArgError extends Error {
  constructor(msg: string) { super(msg); this.name = 'ArgError'; }
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function parseQemuDmArgs(argv: readonly string[]): QemuDmArgs {
  const a: QemuDmArgs = { domid: -1, name: '', memoryMiB: 0, bootOrder: 'cd', serial: 'none', vga: 'none', vgaMemMiB: 16, drives: [], nics: [] };
  const netdevs = new Map<string, string>();
  const devices: Array<Map<string, string>> = [];
  for (let i = 0; i < argv.length; i++) {
    const opt = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new ArgError(`option ${opt} needs an argument`);
      return v;
    };
    if (NO_VALUE_IGNORED.has(opt)) continue;
    if (VALUE_IGNORED.has(opt)) { value(); continue; }
    switch (opt) {
      case '-xen-domid': a.domid = Number(value()); break;
      case '-name': a.name = parseOpts(value(), 'guest').get('guest') ?? ''; break;
      case '-m': a.memoryMiB = Number(parseOpts(value(), 'size').get('size')?.replace(/M$/i, '')); break;
      case '-boot': a.bootOrder = parseOpts(value(), 'order').get('order') ?? 'cd'; break;
      case '-serial': {
        const v = value();
        if (v !== 'pty' && v !== 'none') throw new ArgError(`-serial ${v}: only pty and none are emulated`);
        a.serial = v;
        break;
      }
      case '-vga': {
        const v = value();
        if (v !== 'std' && v !== 'none') throw new ArgError(`-vga ${v}: only std is emulated`);
        a.vga = v;
        break;
      }
      case '-machine': {
        const t = parseOpts(value(), 'type').get('type');
        if (t !== 'xenfv' && t !== 'pc') throw new ArgError(`-machine ${t}: only xenfv is emulated`);
        break;
      }
      case '-device': devices.push(parseOpts(value(), 'driver')); break;
      case '-netdev': {
        const o = parseOpts(value(), 'type');
        const id = o.get('id');
        if (!id) throw new ArgError('-netdev needs id=');
        if (o.get('type') !== 'bridge') throw new ArgError(`-netdev type=${o.get('type')}: xenemu connects NICs to a bridge (type=bridge,br=xenbr0)`);
        netdevs.set(id, o.get('br') ?? 'xenbr0');
        break;
      }
      case '-drive': {
        const o = parseOpts(value());
        const file = o.get('file') ?? '';
        const media = o.get('media') ?? 'disk';
        if (o.get('if') !== 'ide') throw new ArgError(`-drive if=${o.get('if')}: only IDE drives are emulated`);
        if ((o.get('format') ?? 'raw') !== 'raw') throw new ArgError(`-drive format=${o.get('format')}: only raw images`);
        if (media !== 'disk' && media !== 'cdrom') throw new ArgError(`-drive media=${media}`);
        const index = Number(o.get('index'));
        if (!Number.isInteger(index) || index < 0 || index > 3) throw new ArgError(`-drive index=${o.get('index')}: 0-3 (hda-hdd)`);
        if (a.drives.some((d) => d.index === index)) throw new ArgError(`-drive index=${index} given twice`);
        if (!file && media === 'disk') throw new ArgError('-drive of a disk needs file=');
        a.drives.push({ file, index, media, readOnly: o.get('readonly') === 'on' || media === 'cdrom' });
        break;
      }
      default:
        throw new ArgError(`unsupported option ${opt}`);
    }
  }
  for (const d of devices) {
    const drv = d.get('driver');
    if (drv === 'VGA') { a.vga = 'std'; a.vgaMemMiB = Number(d.get('vgamem_mb') ?? 16); continue; }
    if (drv === 'e1000') {
      const netdev = d.get('netdev') ?? '';
      const bridge = netdevs.get(netdev);
      if (bridge === undefined) throw new ArgError(`-device e1000: netdev=${netdev} is not defined`);
      const mac = d.get('mac') ?? '';
      if (!MAC_RE.test(mac)) throw new ArgError(`-device e1000: mac=${mac} is not a MAC address`);
      a.nics.push({ id: d.get('id') ?? `nic${a.nics.length}`, mac: mac.toLowerCase(), bridge, model: 'e1000' });
      continue;
    }
    throw new ArgError(`-device ${drv}: not emulated (VGA and e1000 are)`);
  }
  if (!Number.isInteger(a.domid) || a.domid <= 0) throw new ArgError('-xen-domid: a guest domain id');
  if (!Number.isInteger(a.memoryMiB) || a.memoryMiB <= 0) throw new ArgError('-m: the guest memory in MiB');
  if (!/^[a-dn]+$/.test(a.bootOrder)) throw new ArgError(`-boot order=${a.bootOrder}: letters a-d, n`);
  return a;
}
