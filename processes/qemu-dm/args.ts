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
//   -drive file=/x.img,if=ide,index=0,media=disk,format=raw,cache=writeback
//   -drive if=none,readonly=on,id=ide-5632[,file=/x.iso,format=raw]
//   -device ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0      (libxl 4.17's CD-ROMs)
//   -machine xenfv,suppress-vmdesc=on  [-no-acpi]  [-net none]
//   -device xen-pci-passthrough,id=pci-pt-03_00.0,hostaddr=0000:03:00.0[,addr=06.0][,permissive=on]
//                                                  (what libxl's QMP device_add passes, on the command line)

export interface DriveArg { file: string; index: number; media: 'disk' | 'cdrom'; readOnly: boolean }
/** `devid` from libxl's id=nic<devid>: the NIC's tap is vif<domid>.<devid>-emu. */
export interface NicArg { id: string; devid: number; mac: string; bridge: string; model: 'e1000' }

/** A host device passed through (QEMU's xen-pci-passthrough): its BDF, the guest slot when given. */
export interface PtArg { id: string; hostaddr: string; slot?: number; permissive: boolean }

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
  /** -machine xenfv: the Xen platform device at 00:02.0 (pc,accel=xen: none). */
  xenPlatform: boolean;
  /** ACPI (the PIIX4 power management function at 00:01.3); -no-acpi turns it off. */
  acpi: boolean;
  /** -device xen-pci-passthrough, in order. */
  pt: PtArg[];
  /** -incoming file:PATH: the device state a restored guest's devices start from (dm_state.ts). */
  incoming?: string;
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
  const a: QemuDmArgs = { domid: -1, name: '', memoryMiB: 0, bootOrder: 'cd', serial: 'none', vga: 'none', vgaMemMiB: 16, drives: [], nics: [], xenPlatform: true, acpi: true, pt: [] };
  const netdevs = new Map<string, string>();
  const devices: Array<Map<string, string>> = [];
  /** -drive if=none, by id, for a -device ide-cd to name. */
  const backends = new Map<string, { file: string; readOnly: boolean }>();
  let serials = 0;
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
      case '-no-acpi': a.acpi = false; break;
      case '-incoming': {
        const v = value();
        if (!v.startsWith('file:') || v.length === 5) throw new ArgError(`-incoming ${v}: only file:PATH is supported`);
        a.incoming = v.slice(5);
        break;
      }
      case '-name': a.name = parseOpts(value(), 'guest').get('guest') ?? ''; break;
      case '-m': a.memoryMiB = Number(parseOpts(value(), 'size').get('size')?.replace(/M$/i, '')); break;
      case '-boot': a.bootOrder = parseOpts(value(), 'order').get('order') ?? 'cd'; break;
      case '-serial': {
        const v = value();
        if (v !== 'pty' && v !== 'none') throw new ArgError(`-serial ${v}: only pty and none are emulated`);
        if (serials++ === 0) a.serial = v;
        else if (v !== 'none') throw new ArgError(`-serial ${v}: only COM1 is emulated`);
        break;
      }
      case '-net': {
        const v = value();
        if (v !== 'none') throw new ArgError(`-net ${v}: NICs are -device e1000 with -netdev type=bridge`);
        break;
      }
      case '-vga': {
        const v = value();
        if (v !== 'std' && v !== 'none') throw new ArgError(`-vga ${v}: only std is emulated`);
        a.vga = v;
        break;
      }
      case '-machine': {
        const o = parseOpts(value(), 'type');
        const t = o.get('type');
        if (t !== 'xenfv' && !(t === 'pc' && o.get('accel') === 'xen')) throw new ArgError(`-machine ${t}: only xenfv (or pc,accel=xen) is emulated`);
        a.xenPlatform = t === 'xenfv';
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
        if (o.get('if') === 'none') {
          const id = o.get('id');
          if (!id) throw new ArgError('-drive if=none needs id=');
          if ((o.get('format') ?? 'raw') !== 'raw') throw new ArgError(`-drive format=${o.get('format')}: only raw images`);
          backends.set(id, { file, readOnly: o.get('readonly') === 'on' });
          break;
        }
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
    if (drv === 'ide-cd' || drv === 'ide-hd') {
      const be = backends.get(d.get('drive') ?? '');
      if (!be) throw new ArgError(`-device ${drv}: drive=${d.get('drive')} is not defined`);
      const bus = /^ide\.([01])$/.exec(d.get('bus') ?? '');
      const unit = Number(d.get('unit') ?? 0);
      if (!bus || (unit !== 0 && unit !== 1)) throw new ArgError(`-device ${drv}: bus=ide.0|ide.1 and unit=0|1`);
      const index = Number(bus[1]) * 2 + unit;
      if (a.drives.some((x) => x.index === index)) throw new ArgError(`-device ${drv}: IDE ${index} given twice`);
      if (drv === 'ide-hd' && !be.file) throw new ArgError('-device ide-hd needs a drive with file=');
      a.drives.push({ file: be.file, index, media: drv === 'ide-cd' ? 'cdrom' : 'disk', readOnly: be.readOnly || drv === 'ide-cd' });
      continue;
    }
    if (drv === 'e1000') {
      const netdev = d.get('netdev') ?? '';
      const bridge = netdevs.get(netdev);
      if (bridge === undefined) throw new ArgError(`-device e1000: netdev=${netdev} is not defined`);
      const mac = d.get('mac') ?? '';
      if (!MAC_RE.test(mac)) throw new ArgError(`-device e1000: mac=${mac} is not a MAC address`);
      const id = d.get('id') ?? `nic${a.nics.length}`;
      const devid = /^nic(\d+)$/.exec(id) ? Number(/^nic(\d+)$/.exec(id)![1]) : a.nics.length;
      a.nics.push({ id, devid, mac: mac.toLowerCase(), bridge, model: 'e1000' });
      continue;
    }
    if (drv === 'xen-pci-passthrough') {
      const hostaddr = d.get('hostaddr') ?? '';
      if (!/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(hostaddr)) throw new ArgError(`-device ${drv}: hostaddr=${hostaddr} is not DDDD:BB:DD.F`);
      const addr = d.get('addr');
      const slot = addr === undefined ? undefined : parseInt(addr.split('.')[0]!, 16);
      if (slot !== undefined && (!Number.isInteger(slot) || slot < 1 || slot > 31)) throw new ArgError(`-device ${drv}: addr=${addr}`);
      a.pt.push({ id: d.get('id') ?? `pci-pt-${hostaddr}`, hostaddr: hostaddr.toLowerCase(), ...(slot !== undefined ? { slot } : {}),
                  permissive: d.get('permissive') === 'on' || d.get('permissive') === 'true' });
      continue;
    }
    throw new ArgError(`-device ${drv}: not emulated (VGA, e1000 and xen-pci-passthrough are)`);
  }
  if (!Number.isInteger(a.domid) || a.domid <= 0) throw new ArgError('-xen-domid: a guest domain id');
  if (!Number.isInteger(a.memoryMiB) || a.memoryMiB <= 0) throw new ArgError('-m: the guest memory in MiB');
  if (!/^[a-dn]+$/.test(a.bootOrder)) throw new ArgError(`-boot order=${a.bootOrder}: letters a-d, n`);
  return a;
}
