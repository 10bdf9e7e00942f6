// PIIX3 IDE (82371SB function 1, 8086:7010; Intel 82371FB/SB datasheet
// 290550): an IDE controller in compatibility ("legacy") mode,
// programming interface 0x80: both channels at the ISA addresses and IRQs of
// a PC/AT, and bus-master DMA registers (SFF-8038i) in BAR4.
//
//   primary    0x1F0-0x1F7, 0x3F6   IRQ 14
//   secondary  0x170-0x177, 0x376   IRQ 15
//   BAR4       16 ports: +0 primary command/status/PRD address, +8 secondary
//
// The legacy ports decode whatever the IDETIM decode-enable bits say (a
// real PIIX3 gates them), as QEMU's piix3-ide does; Linux's ata_piix reads those bits (0x41 and 0x43,
// bit 7) to decide whether a channel exists, so firmware sets them (SeaBIOS's
// piix_ide_setup, Xen's hvmloader) and so can a test.
//
// Under Xen the emulated disks go away when the guest's PV drivers ask
// (the unplug protocol of shared/hw/xen_platform.ts); CD-ROMs stay, as
// qemu-xen's pci_xen_ide_unplug does.
import type { Machine } from './machine.js';
import { IdeChannel, type IdeDriveSpec } from './ide.js';
import { PCI_COMMAND_MASTER, PCI_STATUS, PciFunction } from './pci.js';

export interface PiixIdeDrives {
  primaryMaster?: IdeDriveSpec | null;
  primarySlave?: IdeDriveSpec | null;
  secondaryMaster?: IdeDriveSpec | null;
  secondarySlave?: IdeDriveSpec | null;
}

export const IDE_PRIMARY = { base: 0x1f0, ctl: 0x3f6, irq: 14 } as const;
export const IDE_SECONDARY = { base: 0x170, ctl: 0x376, irq: 15 } as const;
/** IDE timing registers; bit 15 of each enables the channel's decode. */
export const PIIX_IDETIM_PRIMARY = 0x40;
export const PIIX_IDETIM_SECONDARY = 0x42;
export const PIIX_SIDETIM = 0x44;

/** xl's hda/hdb/hdc/hdd in the order QEMU numbers IDE drives (index 0-3). */
export const IDE_INDEX_NAMES = ['primaryMaster', 'primarySlave', 'secondaryMaster', 'secondarySlave'] as const;

export class PiixIde extends PciFunction {
  readonly channels: [IdeChannel, IdeChannel];

  constructor(machine: Machine, drives: PiixIdeDrives) {
    super('piix3-ide', { vendor: 0x8086, device: 0x7010, classCode: 0x010180 });
    // Fast back-to-back capable, medium DEVSEL timing (QEMU's piix3_reset).
    this.config[PCI_STATUS] = 0x80;
    this.config[PCI_STATUS + 1] = 0x02;
    for (const r of [PIIX_IDETIM_PRIMARY, PIIX_IDETIM_PRIMARY + 1, PIIX_IDETIM_SECONDARY, PIIX_IDETIM_SECONDARY + 1, PIIX_SIDETIM]) {
      this.writable[r] = 0xff;
    }
    const master = (): boolean => (this.command & PCI_COMMAND_MASTER) !== 0;
    const mk = (name: string, at: { base: number; ctl: number; irq: number }, m?: IdeDriveSpec | null, s?: IdeDriveSpec | null): IdeChannel => {
      const ch = new IdeChannel(name, machine.irq, at.irq, machine.mem, present(m), present(s), master);
      machine.ports.register(at.base, 8, ch.commandBlock, `${name} command block`);
      machine.ports.register(at.ctl, 1, ch.controlBlock, `${name} control block`);
      return ch;
    };
    this.channels = [
      mk('ide0', IDE_PRIMARY, drives.primaryMaster, drives.primarySlave),
      mk('ide1', IDE_SECONDARY, drives.secondaryMaster, drives.secondarySlave),
    ];
    this.addBar(4, {
      kind: 'io', size: 16, name: 'bmdma',
      handler: {
        read: (offset, size) => this.channels[offset >> 3]!.bmRead(offset & 7, size),
        write: (offset, size, value) => this.channels[offset >> 3]!.bmWrite(offset & 7, size, value),
      },
    });
  }

  /**
   * Xen's unplug of emulated disks (hvm-emulated-unplug.pandoc bits 0 and 2):
   * every hard disk, or with `aux` every one but the primary master, is
   * flushed and removed; CD-ROMs stay. The controller is then reset.
   */
  unplugDisks(aux: boolean): void {
    for (let i = aux ? 1 : 0; i < 4; i++) {
      const ch = this.channels[i >> 1]!;
      const unit = (i & 1) as 0 | 1;
      const d = ch.drives[unit];
      if (!d || d.kind !== 'disk') continue;
      try { d.backend?.flush(); } catch { /* the disk goes either way */ }
      ch.unplugDrive(unit);
    }
    for (const ch of this.channels) ch.reset();
  }
}

/** A disk without an image is no drive at all. */
function present(spec: IdeDriveSpec | null | undefined): IdeDriveSpec | null {
  if (!spec) return null;
  if (spec.kind === 'disk' && !spec.backend) return null;
  return spec;
}
