// The chipset of an HVM guest's PC, as qemu-xen's "xenfv" machine builds it
// for Xen 4.17's libxl (tools/libs/light/libxl_dm.c passes -machine xenfv
// and -nodefaults, then VGA and NICs as -device; QEMU's pc_xen_hvm_init
// adds the platform device right after the board, before any -device):
//
//   00.0  i440FX host bridge              (shared/hw/i440fx.ts)
//   01.0  PIIX3 ISA bridge                (shared/hw/piix3.ts)
//   01.1  PIIX3 IDE                       (shared/hw/piix_ide.ts)
//   01.2  PIIX3 USB UHCI                  only with usb=1 (not modelled)
//   01.3  PIIX4 ACPI power management     (shared/hw/piix4_pm.ts), absent with -no-acpi
//   02.0  Xen platform device             (shared/hw/xen_platform.ts), absent with xen_platform_pci=0
//   03.0  VGA: cirrus-vga by default, VGA with stdvga=1 (02.0 without the platform device)
//   04.0  first NIC, then 05.0, ...       (one slot per vif, in order)
//
// `buildPc` plugs 00.0, 01.0, 01.1 and (unless told not to) 02.0, wires
// 0xCF9 to the PIIX3 and the platform device's unplug requests to the IDE
// controller and the bus, and returns the bus and `freeSlot()` (QEMU's
// first free slot, as a -device without addr= gets) so VGA and NICs plug
// in where a real Xen guest has them.
import type { Machine } from './machine.js';
import { I440fx, PciConfigMech1 } from './i440fx.js';
import { Piix3Isa, type Piix3Options } from './piix3.js';
import { PiixIde, type PiixIdeDrives } from './piix_ide.js';
import { Piix4Pm, type Piix4PmOptions } from './piix4_pm.js';
import { PCI_CLASS_DEVICE, PciBus, type PciFunction } from './pci.js';
import {
  UNPLUG_ALL_IDE_DISKS, UNPLUG_ALL_NICS, UNPLUG_AUX_IDE_DISKS, UNPLUG_NVME_DISKS, XenPlatform, type XenPlatformOptions,
} from './xen_platform.js';

export const PC_SLOT_I440FX = 0;
export const PC_SLOT_PIIX3 = 1;
export const PC_SLOT_XEN_PLATFORM = 2;

const PCI_CLASS_NETWORK_ETHERNET = 0x0200;
const PCI_CLASS_STORAGE_EXPRESS = 0x0108;

export interface PcOptions extends Piix3Options {
  ide?: PiixIdeDrives;
  /** The Xen platform device at 02.0 (xl.cfg xen_platform_pci, default on), with its callbacks. */
  xenPlatform?: false | XenPlatformOptions;
  /** The PIIX4 power management function at 01.3 (QEMU's pc machine plugs it unless -no-acpi). */
  acpiPm?: Piix4PmOptions;
}

export interface Pc {
  bus: PciBus;
  config: PciConfigMech1;
  i440fx: I440fx;
  piix3: Piix3Isa;
  ide: PiixIde;
  pm: Piix4Pm | null;
  platform: XenPlatform | null;
  /** The first free device number (the slot QEMU gives a -device without addr=). */
  freeSlot(): number;
}

export function buildPc(machine: Machine, opts: PcOptions = {}): Pc {
  const bus = new PciBus({ ports: machine.ports, mmio: machine.mmio });
  const config = new PciConfigMech1(bus, machine.ports);
  const i440fx = new I440fx();
  const piix3 = new Piix3Isa(opts);
  const ide = new PiixIde(machine, opts.ide ?? {});
  bus.plug(i440fx, PC_SLOT_I440FX);
  bus.plug(piix3, PC_SLOT_PIIX3, 0);
  bus.plug(ide, PC_SLOT_PIIX3, 1);
  config.resetControl = piix3.resetControl;
  const pm = opts.acpiPm ? new Piix4Pm(machine, opts.acpiPm) : null;
  if (pm) bus.plug(pm, PC_SLOT_PIIX3, 3);

  let platform: XenPlatform | null = null;
  if (opts.xenPlatform !== false) {
    const user = opts.xenPlatform ?? {};
    platform = new XenPlatform(machine.ports, {
      ...user,
      onUnplug: (mask) => {
        unplug(bus, ide, mask);
        user.onUnplug?.(mask);
      },
    });
    bus.plug(platform, PC_SLOT_XEN_PLATFORM);
  }

  const freeSlot = (): number => {
    for (let dev = 0; dev < 32; dev++) if (!bus.get(dev, 0)) return dev;
    throw new RangeError('PCI bus 0 is full');
  };
  return { bus, config, i440fx, piix3, ide, pm, platform, freeSlot };
}

/** What qemu-xen's unplug_disks/unplug_nic do with the mask (passthrough devices are not ours to keep). */
function unplug(bus: PciBus, ide: PiixIde, mask: number): void {
  if (mask & UNPLUG_ALL_IDE_DISKS) ide.unplugDisks(false);
  else if (mask & UNPLUG_AUX_IDE_DISKS) ide.unplugDisks(true);
  const gone: PciFunction[] = [];
  for (const f of bus.functions()) {
    if (f.name.startsWith('xen-pt ')) continue; // a host device passed through (qemu-dm's xen_pt)
    const cls = f.configRead(PCI_CLASS_DEVICE, 2);
    if ((mask & UNPLUG_ALL_NICS && cls === PCI_CLASS_NETWORK_ETHERNET) ||
      (mask & UNPLUG_NVME_DISKS && cls === PCI_CLASS_STORAGE_EXPRESS)) gone.push(f);
  }
  for (const f of gone) bus.unplug(f.device, f.fn);
}
