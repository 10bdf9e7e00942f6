// xl.cfg(5) for HVM guests (shared/toolstack/xlcfg_hvm.ts): the keys, libxl's
// defaults where xenemu keeps them, xenemu's where it has one device, every
// refusal with file, line and key, the round trip over XML-RPC, and the
// device model's command line built from a config (dm_args.ts).
import t from 'tap';
import { parseXlCfg, domainConfigFromStruct, type HvmDomainConfig } from '../../shared/toolstack/xlcfg.js';
import { deviceModelArgs } from '../../processes/dom0/toolstack/hvm/dm_args.js';

const HVM = `# an HVM guest
name = "win"
type = "hvm"
memory = 256
bios = "seabios"
boot = "dc"
disk = [ 'file:/srv/win/disk.img,hda,w', 'file:/srv/win/x.iso,hdc:cdrom,r',
         '/srv/win/d.img,raw,hdb,rw', 'format=raw, vdev=hdd, access=rw, target=/srv/a,b.img' ]
vif = [ 'bridge=xenbr0,model=e1000,mac=00:16:3e:00:00:01', 'type=ioemu,bridge=xenbr1' ]
serial = "pty"
vga = "stdvga"
device_model_version = "qemu-xen"
device_model_override = "/opt/qemu-dm.js"
on_crash = "preserve"
`;

function hvm(text: string, overrides?: string[]): HvmDomainConfig {
  const c = parseXlCfg(text, { file: 'h.cfg', overrides });
  if (c.type !== 'hvm') throw new Error(`parsed as ${c.type}`);
  return c;
}

t.test('an HVM config: the keys and the defaults', async (t) => {
  const c = hvm(HVM);
  t.match(c, {
    name: 'win', type: 'hvm', memory: 256, maxmem: 256, vcpus: 1, maxvcpus: 1, bios: 'seabios', boot: 'dc',
    serial: ['pty'], vga: 'stdvga', videoram: 16, acpi: true, apic: true, hap: true, xen_platform_pci: true,
    timer_mode: 'no_delay_for_missed_ticks', device_model_version: 'qemu-xen', device_model_override: '/opt/qemu-dm.js',
    on_crash: 'preserve', device_model_args: [], device_model_args_hvm: [],
  });
  t.same(c.disk.map((d) => [d.target, d.vdev, d.devtype, d.access]), [
    ['/srv/win/disk.img', 'hda', 'disk', 'rw'], ['/srv/win/x.iso', 'hdc', 'cdrom', 'ro'],
    ['/srv/win/d.img', 'hdb', 'disk', 'rw'], ['/srv/a,b.img', 'hdd', 'disk', 'rw'],
  ]);
  t.same(c.other, {}, 'every HVM key it knows is interpreted, none carried');

  const d = hvm('name="d"\ntype="hvm"');
  t.match(d, { memory: 32, boot: 'cda', serial: [], vga: 'stdvga', videoram: 16, bios: 'seabios' },
    "libxl's defaults: 32 MiB, boot order cda, no serial port; stdvga (libxl's cirrus is not emulated)");
  t.equal(d.bios_path_override, undefined);
  t.match(hvm('name="b"\nbuilder="hvm"'), { type: 'hvm' }, 'builder="hvm" is the old spelling');
  t.match(hvm('name="b"\ntype="hvm"\nstdvga=1'), { vga: 'stdvga' }, 'stdvga=1 is the old spelling of vga="stdvga"');
  t.match(hvm('name="b"\ntype="hvm"\nbios="/fw/bios.bin"'), { bios: 'seabios', bios_path_override: '/fw/bios.bin' }, 'a path in bios=');
  t.match(hvm('name="b"\ntype="hvm"\nbios_path_override="/fw/b.bin"'), { bios_path_override: '/fw/b.bin' });
  t.match(hvm('name="b"\ntype="hvm"\nserial=["pty","none"]'), { serial: ['pty', 'none'] }, 'serial as a list');
  t.match(hvm('name="b"\ntype="hvm"\ntimer_mode=2'), { timer_mode: 'no_missed_ticks_pending' }, 'timer_mode by number');
  t.match(hvm('name="b"\ntype="hvm"\ntimer_mode="one_missed_tick_pending"'), { timer_mode: 'one_missed_tick_pending' });
  t.match(hvm('name="b"\ntype="hvm"\nkernel="/usr/lib/xen/boot/hvmloader"'), { type: 'hvm' }, 'kernel=hvmloader is ignored, as xl does');
  t.match(hvm('name="b"\ntype="hvm"\nvnc=0\nsdl=0\nhpet=0\nviridian=0\ndevice_model_stubdomain_override=0\nhdtype="ide"'),
    { type: 'hvm' }, 'keys set to "off" are taken');
  t.match(hvm('name="b"\ntype="hvm"\ndisk=[",hdc:cdrom,r"]'), { disk: [{ vdev: 'hdc', format: 'empty', devtype: 'cdrom' }] },
    'an empty CD-ROM drive');
  t.match(hvm('name="b"\ntype="hvm"'), { device_model_stubdomain_override: false, stubdomain_memory: 128 }, 'qemu-dm in Domain-0 by default; a stub domain would get 128 MiB');
  t.match(hvm('name="b"\ntype="hvm"\ndevice_model_stubdomain_override=1\nstubdomain_memory=48\nstubdomain_kernel="/k/stub.js"'),
    { device_model_stubdomain_override: true, stubdomain_memory: 48, stubdomain_kernel: '/k/stub.js' }, 'a stub domain, its memory and kernel');
  t.match(hvm('name="b"\ntype="hvm"\nacpi=0\nxen_platform_pci=0\nvideoram=32\nmemory=64'), { acpi: false, xen_platform_pci: false, videoram: 32 });
});

t.test('HVM refusals name file, line and key', async (t) => {
  const table: Array<[string, string, string]> = [
    ['two vcpus', 'vcpus = 2', "h.cfg:3: config parsing error near `vcpus': an HVM guest has one vCPU in xenemu (v86 emulates a single processor), not 2"],
    ['maxvcpus', 'maxvcpus = 4', "h.cfg:3: config parsing error near `maxvcpus': an HVM guest has one vCPU in xenemu (v86 emulates a single processor), not 4"],
    ['PoD', 'memory = 128\nmaxmem = 256', "h.cfg:4: config parsing error near `maxmem': maxmem (256) > memory (128) starts an HVM guest pre-ballooned, which needs populate-on-demand (PoD): xenemu has no PoD, make maxmem equal to memory"],
    ['direct kernel boot', 'kernel = "/boot/vmlinuz"', "h.cfg:3: config parsing error near `kernel': kernel= asks for direct kernel boot of an HVM guest (qemu's -kernel), which xenemu does not do yet: boot from a disk or CD-ROM (boot = \"c\" or \"d\")"],
    ['ramdisk', 'ramdisk = "/boot/initrd"', "h.cfg:3: config parsing error near `ramdisk': ramdisk= asks for direct kernel boot"],
    ['extra', 'extra = "console=ttyS0"', "h.cfg:3: config parsing error near `extra': extra= asks for direct kernel boot"],
    ['bootloader', 'bootloader = "pygrub"', "h.cfg:3: config parsing error near `bootloader': bootloader= picks the kernel of a PV guest"],
    ['cirrus', 'vga = "cirrus"', "h.cfg:3: config parsing error near `vga': vga `cirrus' is not emulated: xenemu's HVM guests have vga = \"stdvga\" (qemu's -device VGA)"],
    ['unknown vga', 'vga = "ega"', "h.cfg:3: config parsing error near `vga': Unknown vga \"ega\" specified"],
    ['stdvga=0', 'stdvga = 0', "h.cfg:3: config parsing error near `stdvga': stdvga = 0 asks for a Cirrus card, which is not emulated"],
    ['little videoram', 'videoram = 8', "h.cfg:3: config parsing error near `videoram': videoram must be at least 16 MB for STDVGA on QEMU_XEN"],
    ['no RAM left', 'memory = 17', "h.cfg:3: config parsing error near `memory': memory (17 MiB) leaves the guest 1 MiB of RAM after videoram (16 MiB): it needs at least 2"],
    ['ovmf', 'bios = "ovmf"', "h.cfg:3: config parsing error near `bios': bios `ovmf' is not available: xenemu's HVM guests boot SeaBIOS (bios = \"seabios\")"],
    ['bad bios', 'bios = "coreboot"', "h.cfg:3: config parsing error near `bios': invalid value \"coreboot\" for \"bios\""],
    ['relative bios path', 'bios_path_override = "bios.bin"', "h.cfg:3: config parsing error near `bios_path_override': the firmware `bios.bin' must be an absolute path (Domain-0 reads it)"],
    ['traditional', 'device_model_version = "qemu-xen-traditional"', "h.cfg:3: config parsing error near `device_model_version': qemu-xen-traditional is not available"],
    ['relative dm', 'device_model_override = "qemu-dm"', "h.cfg:3: config parsing error near `device_model_override': the device model `qemu-dm' must be an absolute path (Domain-0 starts it)"],
    ['tiny stub domain', 'device_model_stubdomain_override = 1\nstubdomain_memory = 8', "h.cfg:4: config parsing error near `stubdomain_memory': 8 MiB is too little for a stub domain (at least 16 MiB"],
    ['relative stub kernel', 'device_model_stubdomain_override = 1\nstubdomain_kernel = "ioemu.js"', "h.cfg:4: config parsing error near `stubdomain_kernel': the stub domain kernel `ioemu.js' must be an absolute path"],
    ['stub domain and a Domain-0 device model', 'device_model_stubdomain_override = 1\ndevice_model_override = "/x/dm.js"', "h.cfg:4: config parsing error near `device_model_override': device_model_override names a Domain-0 program; a stub domain runs stubdomain_kernel"],
    ['vnc', 'vnc = 1', "h.cfg:3: config parsing error near `vnc': vnc = \"1\" is not available: xenemu's device model has no VNC server (-vnc none)"],
    ['hpet', 'hpet = 1', "h.cfg:3: config parsing error near `hpet': hpet = \"1\" is not available: xenemu emulates no HPET (HVM_PARAM_HPET_ENABLED stays 0)"],
    ['viridian', 'viridian = ["base"]', "h.cfg:3: config parsing error near `viridian': viridian = \"base\" is not available: xenemu offers no Viridian (Hyper-V) enlightenments"],
    ['usb', 'usb = 1', "h.cfg:3: config parsing error near `usb': usb = \"1\" is not available: xenemu emulates no USB controller"],
    ['soundhw', 'soundhw = "hda"', "h.cfg:3: config parsing error near `soundhw': soundhw = \"hda\" is not available: xenemu emulates no sound card"],
    ['ahci', 'hdtype = "ahci"', "h.cfg:3: config parsing error near `hdtype': AHCI is not emulated"],
    ['serial file', 'serial = "file:/tmp/s"', "h.cfg:3: config parsing error near `serial': serial device `file:/tmp/s' is not supported: xenemu's qemu-dm connects a serial port to \"pty\" or \"none\""],
    ['five serials', 'serial = ["pty","pty","pty","pty","pty"]', "h.cfg:3: config parsing error near `serial': 5 serial ports: an HVM guest has at most 4 (COM1-COM4)"],
    ['bad timer_mode', 'timer_mode = "fast"', "h.cfg:3: config parsing error near `timer_mode': invalid value \"fast\" for \"timer_mode\""],
    ['bad boot', 'boot = "x"', "h.cfg:3: config parsing error near `boot': invalid boot order `x', expected letters from a, c, d, n"],
    ['xvd disk', "disk = [ '/d.img,raw,xvda,w' ]", "h.cfg:3: config parsing error near `disk': disk specification `/d.img,raw,xvda,w': vdev `xvda' is not emulated: an HVM guest's disks are IDE, hda to hdd"],
    ['hde', "disk = [ '/d.img,raw,hde,w' ]", "h.cfg:3: config parsing error near `disk': disk specification `/d.img,raw,hde,w': vdev `hde' is not emulated"],
    ['read-only IDE disk', "disk = [ '/d.img,raw,hda,r' ]", "h.cfg:3: config parsing error near `disk': disk specification `/d.img,raw,hda,r': qemu-xen doesn't support read-only IDE disk drivers"],
    ['qcow2', "disk = [ '/d.qcow2,qcow2,hda,w' ]", "h.cfg:3: config parsing error near `disk': disk specification `/d.qcow2,qcow2,hda,w': format qcow2 is not supported (raw only)"],
    ['rtl8139', "vif = [ 'model=rtl8139' ]", "h.cfg:3: config parsing error near `vif': vif specification `model=rtl8139': NIC model `rtl8139' is not emulated: the models available are e1000"],
    ['PV-only vif', "vif = [ 'type=vif' ]", "h.cfg:3: config parsing error near `vif': vif specification `type=vif': type=vif is a PV-only NIC, which needs PV drivers: use type=ioemu (the default)"],
  ];
  for (const [what, line, msg] of table) {
    const text = `name = "h"\ntype = "hvm"\n${line}\n`;
    // Each expected message is the error's start (the longer ones are cut here).
    t.throws(() => parseXlCfg(text, { file: 'h.cfg' }), { name: 'XlCfgError', message: new RegExp(`^${escape(msg)}`) }, what);
  }
  t.throws(() => parseXlCfg('name="h"\ntype="hvm"\n', { file: 'h.cfg', overrides: ['vcpus=2'] }),
    { message: "command line:1: config parsing error near `vcpus': an HVM guest has one vCPU in xenemu (v86 emulates a single processor), not 2" },
    'an override is refused the same way');
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

t.test('an HVM config that crossed the wire is checked by the same rules', async (t) => {
  const c = hvm(HVM);
  const back = domainConfigFromStruct(JSON.parse(JSON.stringify(c)));
  t.same(back, c, 'the struct xl sends reads back the same');
  t.throws(() => domainConfigFromStruct({ ...JSON.parse(JSON.stringify(c)), vcpus: 2, maxvcpus: 2 }),
    { message: /near `vcpus': an HVM guest has one vCPU in xenemu/ }, 'and is refused the same');
});

t.test("the device model's command line, as libxl__build_device_model_args_new", async (t) => {
  const c = hvm(HVM);
  const argv = deviceModelArgs(c, 7, 'win', [
    { devid: 0, model: 'e1000', mac: '00:16:3e:00:00:01', bridge: 'xenbr0' },
    { devid: 1, model: 'e1000', mac: '00:16:3e:00:00:02', bridge: 'xenbr1' },
  ]);
  t.same(argv, [
    '-xen-domid', '7', '-no-shutdown', '-nodefaults', '-no-user-config', '-name', 'win', '-vnc', 'none', '-display', 'none',
    '-serial', 'pty',
    '-device', 'VGA,vgamem_mb=16',
    '-boot', 'order=dc',
    '-device', 'e1000,id=nic0,netdev=net0,mac=00:16:3e:00:00:01', '-netdev', 'type=bridge,id=net0,br=xenbr0',
    '-device', 'e1000,id=nic1,netdev=net1,mac=00:16:3e:00:00:02', '-netdev', 'type=bridge,id=net1,br=xenbr1',
    '-machine', 'xenfv,suppress-vmdesc=on',
    '-m', '240',
    '-drive', 'file=/srv/win/disk.img,if=ide,index=0,media=disk,format=raw,cache=writeback',
    '-drive', 'if=none,readonly=on,id=ide-5632,file=/srv/win/x.iso,format=raw',
    '-device', 'ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0',
    '-drive', 'file=/srv/win/d.img,if=ide,index=1,media=disk,format=raw,cache=writeback',
    '-drive', 'file=/srv/a,b.img,if=ide,index=3,media=disk,format=raw,cache=writeback',
  ]);
  const bare = deviceModelArgs(hvm('name="b"\ntype="hvm"\nacpi=0\nxen_platform_pci=0\ndisk=[",hdc:cdrom,r"]\n' +
    'device_model_args=["-a"]\ndevice_model_args_hvm=["-b"]'), 3, 'b', []);
  t.same(bare, [
    '-xen-domid', '3', '-no-shutdown', '-nodefaults', '-no-user-config', '-name', 'b', '-vnc', 'none', '-display', 'none',
    '-device', 'VGA,vgamem_mb=16', '-boot', 'order=cda', '-no-acpi', '-net', 'none', '-a',
    '-machine', 'pc,accel=xen,suppress-vmdesc=on', '-b', '-m', '16',
    '-drive', 'if=none,readonly=on,id=ide-5632', '-device', 'ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0',
  ], 'no NIC: -net none; acpi=0: -no-acpi; no platform device: the pc machine; an empty CD-ROM drive; extra arguments around -machine');
});
