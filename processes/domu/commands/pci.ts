// Shell commands on PCI devices through pcifront: lspci (pciutils' default
// and -n formats) and setpci (one register read or written, as pciutils'
// `setpci -s SLOT REG[.B|.W|.L][=VALUE]`).
import type { Command } from '../services.js';
import { PciError, type Pcifront, type PcifrontDevice } from '../drivers/pcifront.js';

/** pciutils' names of the classes xenemu's devices have (pci.ids). */
const CLASS_NAMES: Record<number, string> = {
  0x0100: 'SCSI storage controller', 0x0101: 'IDE interface', 0x0106: 'SATA controller', 0x0108: 'Non-Volatile memory controller',
  0x0200: 'Ethernet controller', 0x0300: 'VGA compatible controller', 0x0600: 'Host bridge', 0x0680: 'Bridge',
  0x0c03: 'USB controller',
};

/** setpci's register names (pciutils lib/header.h) and their widths. */
const REGISTERS: Record<string, [number, 1 | 2 | 4]> = {
  VENDOR_ID: [0x00, 2], DEVICE_ID: [0x02, 2], COMMAND: [0x04, 2], STATUS: [0x06, 2], REVISION: [0x08, 1],
  CLASS_PROG: [0x09, 1], CLASS_DEVICE: [0x0a, 2], CACHE_LINE_SIZE: [0x0c, 1], LATENCY_TIMER: [0x0d, 1],
  HEADER_TYPE: [0x0e, 1], BIST: [0x0f, 1], BASE_ADDRESS_0: [0x10, 4], BASE_ADDRESS_1: [0x14, 4], BASE_ADDRESS_2: [0x18, 4],
  BASE_ADDRESS_3: [0x1c, 4], BASE_ADDRESS_4: [0x20, 4], BASE_ADDRESS_5: [0x24, 4], SUBSYSTEM_VENDOR_ID: [0x2c, 2],
  SUBSYSTEM_ID: [0x2e, 2], ROM_ADDRESS: [0x30, 4], CAPABILITIES: [0x34, 1], INTERRUPT_LINE: [0x3c, 1], INTERRUPT_PIN: [0x3d, 1],
};

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
/** lspci leaves out a zero domain: 00:01.0. */
const slotName = (d: PcifrontDevice) => (d.domain ? d.bdf : d.bdf.slice(5));

export function pciCommands(pci: () => Pcifront | null): Command[] {
  const lspci: Command = {
    name: 'lspci', help: 'lspci [-n]: the PCI devices pcifront found',
    run(argv, io) {
      const front = pci();
      for (const d of front ? [...front.devices.values()] : []) {
        const { vendor, device, classCode, revision } = d.info;
        const cls = classCode >>> 8;
        const rev = revision ? ` (rev ${hex(revision, 2)})` : '';
        if (argv.includes('-n')) io.out(`${slotName(d)} ${hex(cls, 4)}: ${hex(vendor, 4)}:${hex(device, 4)}${rev}\n`);
        else io.out(`${slotName(d)} ${CLASS_NAMES[cls] ?? `Class ${hex(cls, 4)}`} [${hex(cls, 4)}]: Device [${hex(vendor, 4)}:${hex(device, 4)}]${rev}\n`);
      }
      return 0;
    },
  };

  const setpci: Command = {
    name: 'setpci', help: 'setpci -s SLOT REG[.B|.W|.L][=VALUE]: read or write one configuration register',
    async run(argv, io) {
      const front = pci();
      const s = argv.indexOf('-s');
      const slot = s >= 0 ? argv[s + 1] : undefined;
      const ops = argv.slice(1).filter((_, i) => i !== s - 1 && i !== s);
      if (!slot || ops.length === 0) { io.out('setpci: usage: setpci -s SLOT REG[.B|.W|.L][=VALUE]\n'); return 1; }
      const want = slot.includes(':') && slot.split(':').length === 3 ? slot : `0000:${slot}`;
      const d = front?.devices.get(want);
      if (!d) { io.out(`setpci: Warning: No devices selected for "${slot}".\n`); return 1; }
      for (const op of ops) {
        const m = /^([A-Za-z_0-9]+?)(?:\.([BWLbwl]))?(?:=([0-9a-fA-F]+))?$/.exec(op);
        if (!m) { io.out(`setpci: Invalid register "${op}".\n`); return 1; }
        const named = REGISTERS[m[1]!.toUpperCase()];
        const off = named ? named[0] : parseInt(m[1]!, 16);
        if (!named && !/^[0-9a-fA-F]+$/.test(m[1]!)) { io.out(`setpci: Unknown register "${m[1]}".\n`); return 1; }
        const width = m[2] ? ({ b: 1, w: 2, l: 4 } as const)[m[2].toLowerCase() as 'b' | 'w' | 'l'] : named ? named[1] : undefined;
        if (!width) { io.out(`setpci: Missing width.\n`); return 1; }
        // Through sysfs's config file, as pciutils' linux-sysfs access: an
        // access the PCI layer fails with ENODEV (pciback answered
        // dev_not_found, or never answered) reads all-ones
        // (PCI_ERROR_RESPONSE) and writes nothing, silently
        // (pci_read_config/pci_write_config ignore the error); the kernel's
        // log says why. Offsets and sizes real setpci would refuse itself
        // reach pciback here, and its refusal is printed.
        const enodev = (e: unknown) => { if (!(e instanceof PciError && e.code === 'ENODEV')) throw e; };
        try {
          if (m[3] !== undefined) await d.cfgWrite(off, width, parseInt(m[3], 16) >>> 0).catch(enodev);
          else io.out(`${hex(await d.cfgRead(off, width).catch((e) => { enodev(e); return 2 ** (8 * width) - 1; }), width * 2)}\n`);
        } catch (e) {
          io.out(`setpci: ${(e as Error).message}\n`);
          return 1;
        }
      }
      return 0;
    },
  };
  return [lspci, setpci];
}
