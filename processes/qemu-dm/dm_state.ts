// qemu-dm's device state, as QMP xen-save-devices-state writes it and
// `-incoming file:PATH` reads it back into a new qemu-dm built from the
// same arguments (docs/saverestore.md "The device model's state"):
//
//   0   "QEVM", u32 big-endian 3       QEMU's QEMU_VM_FILE_MAGIC and _VERSION
//   8   u32 xenemu's version (1)
//   12  u32 length of the JSON record
//   16  u32 number of buffers
//   20  the JSON record: { sections: { <section>: ... }, functions: ["00:01.1", ...] }
//       then each buffer: u32 length, u32 bytes stored (its trailing zeros
//       are left out: a VGA's memory is mostly zeros), the bytes, zeros to 4
//
// Sections: one per PCI function ("pci 00:04.0 e1000": its 256 bytes of
// configuration space and its fields, shared/hw/snapshot.ts), the UART,
// fw_cfg and the configuration mechanism. The timers the devices had set
// are fired first when due (a UART's or a NIC's transmit kick); the others
// are not carried.
//
// A restore writes each device's fields back, then replays its
// configuration space as the guest wrote it (every register but the
// command, then the command): the BARs decode where the guest put them
// again and each range is claimed from the hypervisor as at boot, PIIX3's
// PIRQ routes and PIIX4's PM base follow; then the saved bytes are copied
// over (status bits and all). A function the guest had unplugged (the Xen
// platform device's unplug) is unplugged again.
import type { DmMachine } from './machine.js';
import { SnapBuffers, restore, snapshot, type Snap, type SnapshotContext } from '../../shared/hw/snapshot.js';
import { PCI_COMMAND, type PciFunction } from '../../shared/hw/pci.js';

const QEVM = 0x5145564d;
const QEMU_VM_FILE_VERSION = 3;
export const DM_STATE_VERSION = 1;

/** The base class's own fields: configuration space and BAR decoding are replayed, not copied. */
const PCI_BASE_FIELDS = new Set(['config', 'view', 'writable', 'bars', 'hiOf', 'rom', 'spaces', 'device', 'fn', 'name']);

interface DmStateRecord {
  functions: string[];
  sections: Record<string, { config?: number; dev: Snap }>;
}

const fnId = (f: PciFunction) => `00:${f.device.toString(16).padStart(2, '0')}.${f.fn}`;

function roots(dm: DmMachine): Array<[string, object]> {
  const r: Array<[string, object]> = [];
  if (dm.uart) r.push(['uart 3f8', dm.uart]);
  if (dm.fwcfg) r.push(['fw_cfg', dm.fwcfg]);
  r.push(['pci-config', dm.pc.config]);
  return r;
}

export function saveDmState(dm: DmMachine, skip: ReadonlySet<object>): Uint8Array {
  const bufs = new SnapBuffers();
  const rec: DmStateRecord = { functions: [], sections: {} };
  for (const f of dm.pc.bus.functions()) {
    const id = fnId(f);
    rec.functions.push(id);
    const ctx: SnapshotContext = { skip, skipFields: PCI_BASE_FIELDS };
    rec.sections[`pci ${id} ${f.name}`] = { config: bufs.add(f.config.slice()), dev: snapshot(f, ctx, bufs) };
  }
  for (const [name, o] of roots(dm)) rec.sections[name] = { dev: snapshot(o, { skip }, bufs) };
  const json = Buffer.from(JSON.stringify(rec), 'utf8');
  const parts: Buffer[] = [];
  const head = Buffer.alloc(20);
  head.writeUInt32BE(QEVM, 0);
  head.writeUInt32BE(QEMU_VM_FILE_VERSION, 4);
  head.writeUInt32LE(DM_STATE_VERSION, 8);
  head.writeUInt32LE(json.length, 12);
  head.writeUInt32LE(bufs.list.length, 16);
  parts.push(head, json);
  for (const b of bufs.list) {
    let n = b.byteLength;
    while (n > 0 && b[n - 1] === 0) n--;
    const h = Buffer.alloc(8);
    h.writeUInt32LE(b.byteLength, 0);
    h.writeUInt32LE(n, 4);
    parts.push(h, Buffer.from(b.buffer, b.byteOffset, n), Buffer.alloc((4 - (n % 4)) % 4));
  }
  return Buffer.concat(parts);
}

/** Reads a saved state; throws naming what is wrong. */
function decode(b: Uint8Array): { rec: DmStateRecord; bufs: Uint8Array[] } {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 20 || buf.readUInt32BE(0) !== QEVM) throw new Error('not a device state (no QEVM header)');
  if (buf.readUInt32BE(4) !== QEMU_VM_FILE_VERSION) throw new Error(`device state file version ${buf.readUInt32BE(4)}`);
  if (buf.readUInt32LE(8) !== DM_STATE_VERSION) throw new Error(`device state version ${buf.readUInt32LE(8)}, not ${DM_STATE_VERSION}`);
  const jsonLen = buf.readUInt32LE(12);
  const count = buf.readUInt32LE(16);
  let off = 20 + jsonLen;
  if (off > buf.length) throw new Error('device state truncated in its record');
  const rec = JSON.parse(buf.toString('utf8', 20, off)) as DmStateRecord;
  const bufs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (off + 8 > buf.length) throw new Error('device state truncated in its buffers');
    const len = buf.readUInt32LE(off);
    const n = buf.readUInt32LE(off + 4);
    if (n > len || off + 8 + n > buf.length) throw new Error('device state buffer runs past the end');
    const out = new Uint8Array(len);
    out.set(buf.subarray(off + 8, off + 8 + n));
    bufs.push(out);
    off += 8 + n + ((4 - (n % 4)) % 4);
  }
  if (!rec || typeof rec.sections !== 'object' || !Array.isArray(rec.functions)) throw new Error('device state record incomplete');
  return { rec, bufs };
}

/** Puts a saved state into a device model just built from the same arguments, before the guest runs. */
export function loadDmState(dm: DmMachine, skip: ReadonlySet<object>, bytes: Uint8Array, log: (m: string) => void): void {
  const { rec, bufs } = decode(bytes);
  const present = new Set(rec.functions);
  for (const f of [...dm.pc.bus.functions()]) {
    if (!present.has(fnId(f))) { log(`restore: ${fnId(f)} ${f.name} was unplugged by the guest: unplugged`); dm.pc.bus.unplug(f.device, f.fn); }
  }
  for (const f of dm.pc.bus.functions()) {
    const s = rec.sections[`pci ${fnId(f)} ${f.name}`];
    if (!s || s.config === undefined) throw new Error(`no state for ${fnId(f)} ${f.name}`);
    const config = bufs[s.config];
    if (!config || config.byteLength !== 256) throw new Error(`bad configuration space for ${fnId(f)}`);
    restore(f, s.dev, { skip, skipFields: PCI_BASE_FIELDS }, bufs);
    const dv = new DataView(config.buffer, config.byteOffset, 256);
    for (let off = 0x08; off < 0x100; off += 4) f.configWrite(off, 4, dv.getUint32(off, true));
    f.configWrite(PCI_COMMAND, 2, dv.getUint16(PCI_COMMAND, true));
    f.config.set(config);
  }
  for (const [name, o] of roots(dm)) {
    const s = rec.sections[name];
    if (!s) throw new Error(`no state for ${name}`);
    restore(o, s.dev, { skip }, bufs);
  }
}
