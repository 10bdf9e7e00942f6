// The device model's command line, as libxl__build_device_model_args_new
// (libxl_dm.c, Xen 4.17) builds it for upstream qemu-xen running in
// Domain-0, for the devices xenemu's HVM guests have:
//
//   -xen-domid <id> -no-shutdown -nodefaults -no-user-config -name <name>
//   -vnc none -display none
//   [-serial pty|none]...                          serial=, COM1 first
//   -device VGA,vgamem_mb=<videoram>               vga="stdvga"
//   -boot order=<boot>
//   [-no-acpi]                                     acpi=0
//   -device e1000,id=nic<devid>,netdev=net<devid>,mac=<mac>
//   -netdev type=bridge,id=net<devid>,br=<bridge>  for each vif; -net none if there is none
//   [device_model_args...]
//   -machine xenfv,suppress-vmdesc=on              (pc,accel=xen,suppress-vmdesc=on with xen_platform_pci=0)
//   [device_model_args_hvm...]
//   -m <memory - videoram>
//   -drive file=<path>,if=ide,index=<n>,media=disk,format=raw,cache=writeback     disk hda..hdd (n 0..3)
//   -drive if=none,readonly=on,id=ide-<devnum>[,file=<path>,format=raw]           CD-ROM, then
//   -device ide-cd,id=ide-<devnum>,drive=ide-<devnum>,bus=ide.<n/2>,unit=<n%2>
//
// Where xenemu departs from libxl: no QMP sockets (-chardev socket,... -mon;
// the toolstack learns that the device model runs from its xenstore state
// node, libxl's way without QMP), and a NIC's back end is
// `-netdev type=bridge,br=<bridge>` (xenbr0 is netback's software bridge in
// Domain-0) where libxl gives a tap device and its vif script.
import type { DiskSpec, HvmDomainConfig } from '../../../../shared/toolstack/xlcfg.js';
import { vdevToDevid } from '../vbd.js';

/** An emulated NIC as the toolstack settled it (its MAC chosen). */
export interface DmNic {
  devid: number;
  model: string;
  mac: string;
  bridge: string;
}

/** The IDE drive number of hda..hdd (libxl__device_disk_dev_number's `disk`). */
export function ideIndex(vdev: string): number {
  const m = /^hd([a-d])$/.exec(vdev);
  return m ? m[1]!.charCodeAt(0) - 97 : -1;
}

/**
 * A stub domain's qemu opens the guest's disks as its own vbds: libxl writes
 * /dev/xvd<a + disk number> into the stub's arguments.
 */
function driveFile(d: DiskSpec, stubdom: boolean): string {
  return stubdom ? `/dev/xvd${String.fromCharCode(97 + ideIndex(d.vdev))}` : d.target;
}

function driveArgs(d: DiskSpec, stubdom: boolean): string[] {
  const index = ideIndex(d.vdev);
  if (d.devtype === 'cdrom') {
    const id = `ide-${vdevToDevid(d.vdev)}`;
    const drive = `if=none,readonly=on,id=${id}${d.format === 'empty' || !d.target ? '' : `,file=${driveFile(d, stubdom)},format=raw`}`;
    return ['-drive', drive, '-device', `ide-cd,id=${id},drive=${id},bus=ide.${index >> 1},unit=${index & 1}`];
  }
  return ['-drive', `file=${driveFile(d, stubdom)},if=ide,index=${index},media=disk,format=raw,cache=writeback`];
}

/** argv after the program, for domain `domid` named `name`; `stubdom`: for its stub domain. */
export function deviceModelArgs(cfg: HvmDomainConfig, domid: number, name: string, nics: readonly DmNic[], stubdom = false): string[] {
  const a: string[] = ['-xen-domid', String(domid), '-no-shutdown', '-nodefaults', '-no-user-config', '-name', name,
    '-vnc', 'none', '-display', 'none'];
  for (const s of cfg.serial) a.push('-serial', s);
  a.push('-device', `VGA,vgamem_mb=${cfg.videoram}`);
  a.push('-boot', `order=${cfg.boot}`);
  if (!cfg.acpi) a.push('-no-acpi');
  for (const n of nics) {
    a.push('-device', `${n.model},id=nic${n.devid},netdev=net${n.devid},mac=${n.mac}`);
    a.push('-netdev', `type=bridge,id=net${n.devid},br=${n.bridge}`);
  }
  if (nics.length === 0) a.push('-net', 'none');
  a.push(...cfg.device_model_args);
  a.push('-machine', cfg.xen_platform_pci ? 'xenfv,suppress-vmdesc=on' : 'pc,accel=xen,suppress-vmdesc=on');
  a.push(...cfg.device_model_args_hvm);
  a.push('-m', String(cfg.memory - cfg.videoram));
  for (const d of cfg.disk) a.push(...driveArgs(d, stubdom));
  return a;
}

/**
 * A host device for QEMU's xen-pci-passthrough, as libxl's qemu_pci_add_qmp
 * passes it to device_add (id pci-pt-BB_DD.F, hostaddr, addr with a vslot,
 * permissive); xenemu gives it on the command line.
 */
export function xenPtDeviceArg(p: { domain: number; bus: number; dev: number; func: number }, vslot?: number, permissive = false): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  let s = `xen-pci-passthrough,id=pci-pt-${h(p.bus, 2)}_${h(p.dev, 2)}.${p.func},hostaddr=${h(p.domain, 4)}:${h(p.bus, 2)}:${h(p.dev, 2)}.${p.func}`;
  if (vslot !== undefined) s += `,addr=${h(vslot, 2)}.${p.func}`;
  if (permissive) s += ',permissive=on';
  return s;
}
