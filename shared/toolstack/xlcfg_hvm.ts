// xl.cfg(5)'s "Fully-virtualised (HVM) Guest Specific Options", read as xl
// (tools/xl/xl_parse.c) and defaulted as libxl (libxl_create.c
// libxl__domain_build_info_setdefault) for what xenemu's HVM guests are:
//
//   one vCPU (v86 emulates one processor), RAM = memory - videoram, no PoD
//   SeaBIOS (Debian's /usr/share/seabios/bios.bin, or bios_path_override=)
//   qemu-xen's devices that xenemu's qemu-dm emulates: stdvga, IDE disks and
//   CD-ROMs on hda..hdd, e1000 NICs on a bridge, 16550A serial ports on PTYs
//
// Where libxl's default is a device xenemu does not emulate, the default is
// the one it does (vga cirrus -> stdvga, NIC rtl8139 -> e1000, vnc 1 -> no
// VNC, hpet 1 -> no HPET); asking for the missing one is an error naming the
// key, never a different guest than the file says.
import type { CfgReader, DomainConfigCommon, HvmDomainConfig } from './xlcfg.js';

/** HVM_PARAM_TIMER_MODE's values by their xl.cfg(5) names (hvm/params.h HVMPTM_*), in value order. */
export const TIMER_MODES = ['delay_for_missed_ticks', 'no_delay_for_missed_ticks', 'no_missed_ticks_pending', 'one_missed_tick_pending'] as const;
export type TimerMode = (typeof TIMER_MODES)[number];

/** libxl's default and minimum video memory for stdvga under qemu-xen (libxl_create.c). */
export const STDVGA_VIDEORAM_MIB = 16;
/** The NIC models xenemu's qemu-dm emulates (xl's default, rtl8139, is not one of them). */
export const HVM_NIC_MODELS = ['e1000'] as const;
/** COM1..COM4: the ISA serial ports qemu's pc machine can have. */
export const HVM_MAX_SERIAL_PORTS = 4;
/** The guest's RAM must at least hold the BIOS area below 1 MiB and some room above it. */
const MIN_RAM_MIB = 2;

/**
 * Keys of xl.cfg that ask for something xenemu's HVM guests do not have:
 * refused when set to anything but "off". Each says why.
 */
const HVM_MISSING: Array<[key: string, off: (v: string | string[]) => boolean, why: string]> = [
  ['vnc', isOff, "xenemu's device model has no VNC server (-vnc none): use the serial console (serial = \"pty\")"],
  ['sdl', isOff, "xenemu's device model has no SDL window (-display none): use the serial console (serial = \"pty\")"],
  ['hpet', isOff, 'xenemu emulates no HPET (HVM_PARAM_HPET_ENABLED stays 0)'],
  ['viridian', isOff, 'xenemu offers no Viridian (Hyper-V) enlightenments'],
  ['nestedhvm', isOff, 'v86 does not virtualise VMX or SVM'],
  ['usb', isOff, 'xenemu emulates no USB controller'],
  ['usbdevice', isOff, 'xenemu emulates no USB controller'],
  ['usbctrl', isOff, 'xenemu emulates no USB controller'],
  ['usbdev', isOff, 'xenemu emulates no USB controller'],
  ['soundhw', isOff, 'xenemu emulates no sound card'],
  ['gfx_passthru', isOff, 'there is no host graphics card to pass through'],
];

/** xl.cfg(5): stubdomain_memory defaults to 128 MiB. */
export const STUBDOM_DEFAULT_MEMORY_MB = 128;
/** blkfront's 4 MiB pool and a vif's rings and buffers fit in this. */
export const STUBDOM_MIN_MEMORY_MB = 16;

function isOff(v: string | string[]): boolean {
  return Array.isArray(v) ? v.length === 0 : v === '0' || v === '' || v === 'none';
}

/** xl.cfg's boot=: devices by letter, tried in order. */
export function checkBootOrder(r: CfgReader, boot: string): string {
  if (!/^[acdn]{1,4}$/.test(boot)) r.err('boot', `invalid boot order \`${boot}', expected letters from a, c, d, n`);
  return boot;
}

/** Keys the HVM interpretation consumes: they are not carried in `other`. */
const INTERPRETED = [
  'bios', 'bios_path_override', 'vga', 'stdvga', 'videoram', 'acpi', 'acpi_s3', 'acpi_s4', 'apic', 'hap',
  'xen_platform_pci', 'timer_mode', 'localtime', 'rtc_timeoffset', 'device_model_override', 'device_model_args',
  'device_model_args_hvm', 'device_model_args_pv', 'device_model_stubdomain_override', 'stubdomain_memory', 'stubdomain_kernel',
  'stubdomain_ramdisk', 'stubdomain_cmdline', 'hpet', 'viridian',
  'nestedhvm', 'hdtype', 'usb', 'usbdevice', 'usbctrl', 'usbdev', 'soundhw', 'gfx_passthru', 'vpt_align',
];

export function interpretHvm(r: CfgReader, common: DomainConfigCommon): HvmDomainConfig {
  if (common.vcpus > 1) r.err('vcpus', `an HVM guest has one vCPU in xenemu (v86 emulates a single processor), not ${common.vcpus}`);
  if (common.maxvcpus > 1) r.err('maxvcpus', `an HVM guest has one vCPU in xenemu (v86 emulates a single processor), not ${common.maxvcpus}`);
  if (common.maxmem > common.memory) {
    r.err('maxmem', `maxmem (${common.maxmem}) > memory (${common.memory}) starts an HVM guest pre-ballooned, which needs ` +
      'populate-on-demand (PoD): xenemu has no PoD, make maxmem equal to memory');
  }

  // Direct kernel boot (qemu's -kernel/-initrd/-append) is not there yet. xl
  // itself ignores a kernel= naming hvmloader, the old way to pick firmware.
  const kernel = r.str('kernel');
  if (kernel !== undefined && kernel.replace(/.*\//, '') !== 'hvmloader') directKernel(r, 'kernel');
  for (const k of ['ramdisk', 'cmdline', 'root', 'extra']) if (r.has(k)) directKernel(r, k);
  if (r.has('bootloader')) r.err('bootloader', 'bootloader= picks the kernel of a PV guest: an HVM guest boots its own from its disks');

  for (const [key, off, why] of HVM_MISSING) {
    if (!r.has(key)) continue;
    const v = r.stringOrList(key)!;
    if (!off(v.length === 1 ? v[0]! : v)) r.err(key, `${key} = ${JSON.stringify(v.length === 1 ? v[0] : v)} is not available: ${why}`);
  }

  const videoram = r.int('videoram', 1) ?? STDVGA_VIDEORAM_MIB;
  if (videoram < STDVGA_VIDEORAM_MIB) r.err('videoram', `videoram must be at least ${STDVGA_VIDEORAM_MIB} MB for STDVGA on QEMU_XEN`);
  if (common.memory - videoram < MIN_RAM_MIB) {
    r.err(r.has('memory') ? 'memory' : 'videoram', `memory (${common.memory} MiB) leaves the guest ${common.memory - videoram} MiB ` +
      `of RAM after videoram (${videoram} MiB): it needs at least ${MIN_RAM_MIB}`);
  }
  const vga = r.str('vga');
  if (vga !== undefined && vga !== 'stdvga') {
    if (['cirrus', 'none', 'qxl'].includes(vga)) r.err('vga', `vga \`${vga}' is not emulated: xenemu's HVM guests have vga = "stdvga" (qemu's -device VGA)`);
    r.err('vga', `Unknown vga "${vga}" specified`);
  }
  if (vga === undefined && r.bool('stdvga') === false) {
    r.err('stdvga', "stdvga = 0 asks for a Cirrus card, which is not emulated: xenemu's HVM guests have stdvga");
  }

  let bios: string | undefined = r.str('bios');
  let biosPath = r.str('bios_path_override');
  if (bios !== undefined && bios.startsWith('/')) {
    // xenemu also takes the firmware's path here, for bios_path_override=.
    if (biosPath !== undefined) r.err('bios', 'bios names a file and bios_path_override is set too: give one of them');
    biosPath = bios;
    bios = 'seabios';
  }
  if (bios !== undefined && bios !== 'seabios') {
    if (bios === 'rombios' || bios === 'ovmf') r.err('bios', `bios \`${bios}' is not available: xenemu's HVM guests boot SeaBIOS (bios = "seabios")`);
    r.err('bios', `invalid value "${bios}" for "bios"`);
  }
  if (biosPath !== undefined && !biosPath.startsWith('/')) {
    r.err(r.has('bios_path_override') ? 'bios_path_override' : 'bios', `the firmware \`${biosPath}' must be an absolute path (Domain-0 reads it)`);
  }

  const dmv = r.str('device_model_version');
  if (dmv !== undefined && dmv !== 'qemu-xen') {
    if (dmv === 'qemu-xen-traditional') r.err('device_model_version', 'qemu-xen-traditional is not available: xenemu\'s device model is qemu-xen\'s');
    r.err('device_model_version', `Unknown device_model_version "${dmv}" specified`);
  }
  const dm = r.str('device_model_override');
  if (dm !== undefined && !dm.startsWith('/')) {
    r.err('device_model_override', `the device model \`${dm}' must be an absolute path (Domain-0 starts it)`);
  }
  // Stub domains (libxl__spawn_stub_dm): the device model as a PV domain of its own.
  const stubdom = r.bool('device_model_stubdomain_override') ?? false;
  const stubMem = r.int('stubdomain_memory') ?? STUBDOM_DEFAULT_MEMORY_MB;
  if (stubMem < STUBDOM_MIN_MEMORY_MB) r.err('stubdomain_memory', `${stubMem} MiB is too little for a stub domain (at least ${STUBDOM_MIN_MEMORY_MB} MiB: its block and network front ends' rings and buffers)`);
  const stubKernel = r.str('stubdomain_kernel');
  if (stubKernel !== undefined && !stubKernel.startsWith('/')) r.err('stubdomain_kernel', `the stub domain kernel \`${stubKernel}' must be an absolute path`);
  if (stubdom && dm !== undefined) r.err('device_model_override', 'device_model_override names a Domain-0 program; a stub domain runs stubdomain_kernel');
  const hdtype = r.str('hdtype');
  if (hdtype !== undefined && hdtype !== 'ide') {
    if (hdtype === 'ahci') r.err('hdtype', 'AHCI is not emulated: xenemu\'s HVM disks are on the PIIX3 IDE controller (hdtype = "ide")');
    r.err('hdtype', `invalid value "${hdtype}" for "hdtype"`);
  }

  const serial = r.stringOrList('serial') ?? [];
  if (serial.length > HVM_MAX_SERIAL_PORTS) r.err('serial', `${serial.length} serial ports: an HVM guest has at most ${HVM_MAX_SERIAL_PORTS} (COM1-COM4)`);
  for (const s of serial) {
    if (s !== 'pty' && s !== 'none') r.err('serial', `serial device \`${s}' is not supported: xenemu's qemu-dm connects a serial port to "pty" or "none"`);
  }

  for (const d of common.disk) checkHvmDisk(r, d);
  for (const v of common.vif) checkHvmNic(r, v);

  const other = { ...common.other };
  for (const k of INTERPRETED) delete other[k];
  const { other: _ignored, ...rest } = common;
  void _ignored;
  const cfg: HvmDomainConfig = {
    ...rest,
    type: 'hvm',
    bios: 'seabios',
    boot: checkBootOrder(r, r.str('boot') ?? 'cda'),
    serial,
    vga: 'stdvga',
    videoram,
    acpi: r.bool('acpi') ?? true,
    acpi_s3: r.bool('acpi_s3') ?? true,
    acpi_s4: r.bool('acpi_s4') ?? true,
    apic: r.bool('apic') ?? true,
    hap: r.bool('hap') ?? true,
    vpt_align: r.bool('vpt_align') ?? true,
    xen_platform_pci: r.bool('xen_platform_pci') ?? true,
    timer_mode: timerMode(r),
    localtime: r.bool('localtime') ?? false,
    rtc_timeoffset: r.int('rtc_timeoffset') ?? 0,
    device_model_version: 'qemu-xen',
    device_model_args: r.strings('device_model_args') ?? [],
    device_model_args_hvm: r.strings('device_model_args_hvm') ?? [],
    device_model_stubdomain_override: stubdom,
    stubdomain_memory: stubMem,
    other,
  };
  if (biosPath !== undefined) cfg.bios_path_override = biosPath;
  if (dm !== undefined) cfg.device_model_override = dm;
  if (stubKernel !== undefined) cfg.stubdomain_kernel = stubKernel;
  return cfg;
}

function directKernel(r: CfgReader, key: string): never {
  return r.err(key, `${key}= asks for direct kernel boot of an HVM guest (qemu's -kernel), which xenemu does not do yet: boot from a disk or CD-ROM (boot = "c" or "d")`);
}

/** timer_mode: a name, or its number (deprecated by xl but taken). libxl's default is no_delay_for_missed_ticks. */
function timerMode(r: CfgReader): TimerMode {
  const v = r.str('timer_mode');
  if (v === undefined) return 'no_delay_for_missed_ticks';
  const byNumber = /^[0-9]+$/.test(v) ? TIMER_MODES[Number(v)] : undefined;
  const byName = TIMER_MODES.find((m) => m === v);
  const mode = byNumber ?? byName;
  if (!mode) r.err('timer_mode', `invalid value "${v}" for "timer_mode"`);
  return mode!;
}

/** libxl_dm.c: IDE disks hda..hdd (qemu -drive if=ide), CD-ROMs among them; raw images only. */
function checkHvmDisk(r: CfgReader, d: { spec: string; vdev: string; devtype: string; access: string; format: string }): void {
  const m = /^hd([a-d])$/.exec(d.vdev);
  if (!m) {
    r.err('disk', `disk specification \`${d.spec}': vdev \`${d.vdev}' is not emulated: an HVM guest's disks are IDE, hda to hdd ` +
      '(xvd and sd disks need PV drivers or a SCSI controller, which xenemu\'s HVM guests do not have)');
  }
  if (d.devtype === 'disk' && d.access === 'ro') r.err('disk', `disk specification \`${d.spec}': qemu-xen doesn't support read-only IDE disk drivers`);
  if (d.format !== 'raw' && d.format !== 'empty') r.err('disk', `disk specification \`${d.spec}': format ${d.format} is not supported (raw only)`);
}

/** libxl_dm.c: emulated NICs (nictype VIF_IOEMU) as qemu -device <model> -netdev. */
function checkHvmNic(r: CfgReader, v: { spec: string; model?: string; type?: string; backend?: string }): void {
  if (v.model !== undefined && !(HVM_NIC_MODELS as readonly string[]).includes(v.model)) {
    r.err('vif', `vif specification \`${v.spec}': NIC model \`${v.model}' is not emulated: the models available are ${HVM_NIC_MODELS.join(', ')}`);
  }
  if (v.type === 'vif') r.err('vif', `vif specification \`${v.spec}': type=vif is a PV-only NIC, which needs PV drivers: use type=ioemu (the default)`);
  if (v.backend !== undefined && v.backend !== '0' && v.backend !== 'Domain-0') {
    r.err('vif', `vif specification \`${v.spec}': backend ${v.backend}: the device model runs in Domain-0`);
  }
}
