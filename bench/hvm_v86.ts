// v86 on its own, in one plain Node process, as its own Node examples run it
// (examples/nodejs.js in v86's repository): the reference bench/hvm.ts holds
// xenemu's HVM guests against. The same SeaBIOS and VGA BIOS files, disk
// images and memory as the xenemu guest; COM1 is this process's stdout (the
// bytes as the guest wrote them) and its stdin (typed into COM1).
//
//   node dist/bench/hvm_v86.js --memory MiB --vga-memory MiB [--hda FILE] [--cdrom FILE] [--apic 0|1]
//
// --apic (1 by default) is v86's `acpi`: a local APIC and an IOAPIC, as a
// xenemu guest has them with xl.cfg's apic=1 (the default). bench/hvm.ts
// passes its HVM_APIC, the xenemu guest's setting (hvm_platforms.ts).
//
// v86 reads its disk images into memory (`buffer`), its natural mode in
// Node: its IDE then serves the guest from RAM, never from a file.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { watchParent } from '../shared/runtime/lifeline.js';

interface V86Emulator {
  v86: { cpu: { io: { register_read(port: number, dev: object, r8: () => number, r16: () => number, r32: () => number): void } } };
  add_listener(ev: string, fn: (b: number) => void): void;
  serial0_send(s: string): void;
  destroy(): Promise<void>;
}

const { values } = parseArgs({
  options: {
    memory: { type: 'string', default: '128' },
    'vga-memory': { type: 'string', default: '16' },
    bios: { type: 'string', default: '/usr/share/seabios/bios.bin' },
    'vga-bios': { type: 'string', default: '/usr/share/seabios/vgabios-stdvga.bin' },
    hda: { type: 'string' },
    cdrom: { type: 'string' },
    apic: { type: 'string', default: '1' },
  },
});

const image = (path: string) => ({ buffer: new Uint8Array(readFileSync(path)).buffer });
const require = createRequire(import.meta.url);
const { V86 } = await import('v86') as unknown as { V86: new (s: object) => V86Emulator };

const emu = new V86({
  wasm_path: join(dirname(require.resolve('v86')), 'v86.wasm'),
  bios: image(values.bios!),
  vga_bios: image(values['vga-bios']!),
  ...(values.hda ? { hda: image(values.hda) } : {}),
  ...(values.cdrom ? { cdrom: image(values.cdrom) } : {}),
  memory_size: Number(values.memory) << 20,
  vga_memory_size: Number(values['vga-memory']) << 20,
  autostart: true,
  disable_keyboard: true, disable_mouse: true, disable_speaker: true,
  screen: { disabled: true },
  acpi: values.apic !== '0',
});

// With its APIC v86 has a PIIX4 PM function and SeaBIOS builds its ACPI
// tables, whose DSDT reads QEMU's PCI hotplug registers (PCIU 0xae00, PCID
// 0xae04): v86 has none and reads all-ones, every slot "removed", and Linux's
// ACPI hotplug ejects v86's devices, its IDE with them. They read 0 here,
// nothing pending, as QEMU's and qemu-dm's PIIX4 answer.
if (values.apic !== '0') {
  emu.add_listener('emulator-ready', () => {
    const zero = () => 0;
    for (let p = 0xae00; p < 0xae10; p++) emu.v86.cpu.io.register_read(p, {}, zero, zero, zero);
  });
}

// Bytes are gathered and written once per turn of the event loop, as a PTY would pass them on.
let pending: number[] = [];
emu.add_listener('serial0-output-byte', (b: number) => {
  if (pending.length === 0) setImmediate(flush);
  pending.push(b);
});
function flush(): void {
  process.stdout.write(Uint8Array.from(pending));
  pending = [];
}
process.stdin.on('data', (d: Buffer) => emu.serial0_send(d.toString('latin1')));
process.stdin.on('end', () => { void emu.destroy().finally(() => process.exit(0)); });
process.on('SIGTERM', () => process.exit(0));
watchParent(() => process.exit(1));
