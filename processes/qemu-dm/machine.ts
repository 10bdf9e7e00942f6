// The PC qemu-dm emulates for one HVM guest, as qemu-xen's xenfv machine with
// libxl's arguments builds it (shared/hw/pc.ts has the slot layout):
// i440FX, PIIX3 with IDE (hda-hdd from -drive), the PIIX4 power management
// function at 01.3 (unless -no-acpi), the Xen platform device,
// VGA (-vga std / -device VGA, its BIOS in its PCI ROM, where SeaBIOS looks),
// an e1000 per -device e1000, COM1 (-serial pty), QEMU's fw_cfg (RAM, CPUs,
// boot order) and QEMU's isa-debugcon on 0x402, where SeaBIOS logs.
import { readFileSync } from 'node:fs';
import { AddressSpace, type AddressSpaceListener } from '../../shared/hw/iospace.js';
import type { Clock, GuestMemory, IrqLines, Machine } from '../../shared/hw/machine.js';
import type { BlockBackend, CharBackend, NetBackend } from '../../shared/hw/backend.js';
import { buildPc, type Pc } from '../../shared/hw/pc.js';
import type { IdeDriveSpec } from '../../shared/hw/ide.js';
import { Uart16550 } from '../../shared/hw/uart16550.js';
import { VgaPci } from '../../shared/hw/vga.js';
import { E1000Pci } from '../../shared/hw/e1000.js';
import { FwCfg, bootorderFile } from '../../shared/hw/fw_cfg.js';
import type { QemuDmArgs } from './args.js';

export const VGABIOS_STDVGA = '/usr/share/seabios/vgabios-stdvga.bin';
/** QEMU's isa-debugcon port (SeaBIOS's DebugOutputPort when not on Xen's hvmloader). */
export const DEBUGCON_PORT = 0x402;

export interface DmBackends {
  drive(index: number): BlockBackend | null;
  serial: CharBackend | null;
  nic(n: number): NetBackend;
  debugcon(line: string): void;
}

export interface DmHooks {
  onPirqRoute(link: number, irq: number): void;
  onReset(): void;
  /** The guest wrote SLP_EN to PM1a_CNT with SLP_TYP `typ` (0: S5, soft off). */
  onSleep(typ: number): void;
  log(line: string): void;
}

export interface DmMachine {
  machine: Machine;
  ports: AddressSpace;
  mmio: AddressSpace;
  pc: Pc;
  vga: VgaPci | null;
  uart: Uart16550 | null;
  nics: E1000Pci[];
  fwcfg: FwCfg;
}

export function buildDmMachine(a: QemuDmArgs, env: { mem: GuestMemory; irq: IrqLines; clock: Clock },
                               be: DmBackends, hooks: DmHooks, claims: { ports: AddressSpaceListener; mmio: AddressSpaceListener }): DmMachine {
  const ports = new AddressSpace('ports', 0x10000, claims.ports);
  const mmio = new AddressSpace('mmio', 2 ** 32, claims.mmio);
  const machine: Machine = { ports, mmio, mem: env.mem, irq: env.irq, clock: env.clock };
  const spec = (index: number): IdeDriveSpec | null => {
    const d = a.drives.find((x) => x.index === index);
    if (!d) return null;
    return { kind: d.media, backend: be.drive(index), serial: `QM0000${index + 1}` };
  };
  const pc = buildPc(machine, {
    ide: { primaryMaster: spec(0), primarySlave: spec(1), secondaryMaster: spec(2), secondarySlave: spec(3) },
    onPirqRoute: hooks.onPirqRoute,
    onReset: () => hooks.onReset(),
    ...(a.acpi ? { acpiPm: { onSleep: (typ: number) => hooks.onSleep(typ) } } : {}),
    xenPlatform: a.xenPlatform ? { onLog: (l) => hooks.log(`xen-platform: ${l}`) } : false,
  });
  let vga: VgaPci | null = null;
  if (a.vga === 'std') {
    vga = new VgaPci({ vramSize: a.vgaMemMiB << 20, rom: readFileSync(VGABIOS_STDVGA) });
    pc.bus.plug(vga, pc.freeSlot());
  }
  const nics = a.nics.map((n, i) => {
    const nic = new E1000Pci({ mem: env.mem, clock: env.clock, irq: env.irq }, be.nic(i), { mac: n.mac });
    pc.bus.plug(nic, pc.freeSlot());
    return nic;
  });
  // QEMU's fw_cfg, where SeaBIOS reads the machine's RAM, CPUs and boot order.
  const fwcfg = new FwCfg(ports, { ramBytes: a.memoryMiB << 20, cpus: 1, files: { bootorder: bootorderFile(a.bootOrder, a.drives) } });
  const uart = be.serial ? new Uart16550({ ports, irq: env.irq, clock: env.clock }, be.serial, { base: 0x3f8, irq: 4 }) : null;
  let line = '';
  ports.register(DEBUGCON_PORT, 1, {
    read: () => 0xe9, // isa-debugcon's readback, which SeaBIOS probes
    write: (_o, _s, v) => {
      const c = v & 0xff;
      if (c === 0x0a) { be.debugcon(line); line = ''; } else if (c !== 0x0d) line += String.fromCharCode(c);
      if (line.length >= 256) { be.debugcon(line); line = ''; }
    },
  }, 'debugcon');
  return { machine, ports, mmio, pc, vga, uart, nics, fwcfg };
}
