// The channel between the hypervisor and a host PCI device process
// (processes/pcidev, docs/passthrough.md), and the names both sides derive
// from a device's BDF.
//
// One ZeroMQ PAIR socket per device: the hypervisor binds
// ipc://<rundir>/pci/<bdf>.ctl, the device process connects. msgpack
// through shared/wire/codec.ts, as every channel of xenemu's own.
//
//   device                                     hypervisor
//     | hello {bdf, model, vendor, device, bars}  |
//     |------------------------------------------->|
//     |<-------- context {owner, mem, frames, ...} |  on hello, and on every change of owner
//     |          (the device resets: FLR)          |
//     | irq {intx} | irq {msi: {addr, data}}       |  no reply
//     |------------------------------------------->|
//     | faults {iommu, quarantine, last}           |  IOMMU fault counts (coalesced), for its log
//     |------------------------------------------->|
import { encode, decode } from './codec.js';

export type PciModel = 'e1000' | 'nvme';

/** A `--pci` argument: `e1000`, or `nvme:<disk image path>`. */
export interface PciSpec { model: PciModel; image?: string }

/** Parses a --pci argument; a string is the reason it is refused. */
export function parsePciSpec(s: string): PciSpec | string {
  if (s === 'e1000') return { model: 'e1000' };
  const m = /^nvme:(.+)$/.exec(s);
  if (m) return { model: 'nvme', image: m[1]! };
  return `bad --pci '${s}': e1000 or nvme:<disk image>`;
}

export function formatPciSpec(p: PciSpec): string {
  return p.model === 'nvme' ? `nvme:${p.image}` : p.model;
}

/** The host's devices sit one per bus from bus 03, in --pci order: 0000:03:00.0, 0000:04:00.0, ... */
export const FIRST_PCI_BUS = 3;

export function bdfOfIndex(i: number): string {
  return `0000:${(FIRST_PCI_BUS + i).toString(16).padStart(2, '0')}:00.0`;
}

/** `SSSS:BB:DD.F` -> machine_sbdf (seg << 16 | bus << 8 | dev << 3 | fn), or null. */
export function parseBdf(s: string): number | null {
  const m = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/.exec(s);
  if (!m) return null;
  const dev = parseInt(m[3]!, 16);
  if (dev > 31) return null;
  return ((parseInt(m[1] ?? '0', 16) << 16) | (parseInt(m[2]!, 16) << 8) | (dev << 3) | Number(m[4])) >>> 0;
}

export function formatSbdf(sbdf: number): string {
  const h = (v: number, w: number) => v.toString(16).padStart(w, '0');
  return `${h(sbdf >>> 16, 4)}:${h((sbdf >> 8) & 0xff, 2)}:${h((sbdf >> 3) & 0x1f, 2)}.${sbdf & 7}`;
}

/**
 * Where the host's firmware put each device's BARs (host "machine"
 * addresses, what iomem_permission and memory_mapping name in frames):
 * memory BARs in a 4 MiB window per bus from 0xe0000000, I/O BARs in 256
 * ports per bus from 0xc000, each BAR aligned to its size. Its INTx is GSI
 * 16 + the device's index (the IOAPIC pins above the ISA ones).
 */
export const HOST_MMIO_BASE = 0xe0000000;
export const HOST_MMIO_WINDOW = 0x400000;
export const HOST_IO_BASE = 0xc000;
export const HOST_IO_WINDOW = 0x100;
export const hostGsiOfBus = (bus: number): number => 16 + bus - FIRST_PCI_BUS;

/** Host addresses for BARs of the given kinds and sizes, in index order, on `bus`. */
export function placeBars(bus: number, bars: { kind: 'mem' | 'io'; size: number }[]): number[] {
  let mem = HOST_MMIO_BASE + (bus - FIRST_PCI_BUS) * HOST_MMIO_WINDOW;
  let io = HOST_IO_BASE + (bus - FIRST_PCI_BUS) * HOST_IO_WINDOW;
  return bars.map((b) => {
    if (b.kind === 'mem') { mem = Math.ceil(mem / b.size) * b.size; const a = mem; mem += b.size; return a; }
    io = Math.ceil(io / b.size) * b.size; const a = io; io += b.size; return a;
  });
}

/** `<rundir>/pci/<bdf>.cfg`: the configuration space socket (Domain-0's programs only). */
export const pciDir = (rundir: string): string => `${rundir}/pci`;
export const pciConfigSocket = (rundir: string, bdf: string): string => `${pciDir(rundir)}/${bdf}.cfg`;
/** `<rundir>/pci/<bdf>.irq`: the owner's posted-interrupt wake-up line (processes/pcidev/irq_socket.ts). */
export const pciIrqSocket = (rundir: string, bdf: string): string => `${pciDir(rundir)}/${bdf}.irq`;
export const pciControlEndpoint = (rundir: string, bdf: string): string => `ipc://${pciDir(rundir)}/${bdf}.ctl`;

/** `/xenemu.<host>.pci<bdf without colons>.bar`: the BAR channel (shared/hw/bar_channel.ts). */
export function pciBarSegment(host: string, bdf: string): string {
  return `/xenemu.${host}.pci${bdf.replace(/:/g, '')}.bar`;
}

/** A BAR: `addr` is where the host's firmware placed it (placeBars). */
export interface PciBarInfo { index: number; kind: 'mem' | 'io'; size: number; addr: number }

export interface PciDevHello {
  type: 'hello'; bdf: string; model: PciModel; vendor: number; device: number; bars: PciBarInfo[];
  /** A NIC's wire: its TAP's name in the host's namespace (processes/pcidev/wire.ts hostNicTap). */
  tap?: string;
}

/**
 * The device's interrupts: its INTx level, an MSI for the hypervisor to
 * deliver, or `upcall`: a posted MSI (shared/hw/posted_irq.ts) set the
 * owner's upcall_pending and the device could not kick vCPU `upcall` itself.
 */
export interface PciDevIrq { type: 'irq'; intx?: 0 | 1; msi?: { addr: number; data: number }; upcall?: number }

/** The device's IOMMU fault counts so far (coalesced) and its last fault's line. */
export interface PciDevFaults { type: 'faults'; iommu: number; quarantine: number; last: string }

/** The device's MSI counts so far (coalesced): posted to the owner itself, relayed through the hypervisor. */
export interface PciDevMsiStats { type: 'msi'; posted: number; relayed: number }

export type PciDevToHypervisor = PciDevHello | PciDevIrq | PciDevFaults | PciDevMsiStats;

/**
 * The device's IOMMU context and BAR channel owner. `owner` null is
 * quarantine (dom_io): DMA goes to a scratch page, BAR requests read
 * all-ones. `key` is the word the owner's requests carry in vp_eport; a
 * request with another key (a former owner's) is not done.
 */
export interface PciDevContext {
  type: 'context';
  owner: number | null;
  mem?: string; memBytes?: number; frames?: string; maxPfns?: number;
  /** A PV owner's shared_info segment, where the device posts the MSIs its table binds. */
  sharedInfo?: string;
  key: number; slots: number;
}

/**
 * Programs entry `entry` of the device's MSI-X table, as Xen programs the
 * machine MSI of a pirq it mapped for an HVM guest and masks or unmasks it
 * (xen/arch/x86/msi.c write_msi_msg, guest_mask_msi_irq): the message
 * address, `data` the pirq (which is what the device's messages then name),
 * and the entry's mask bit.
 */
export interface PciDevMsix { type: 'msix'; entry: number; addr: number; data: number; masked: boolean }

export type HypervisorToPciDev = PciDevContext | PciDevMsix;

export function encodePciMessage(m: PciDevToHypervisor | HypervisorToPciDev): Buffer {
  return encode(m);
}

export function decodePciMessage<T extends PciDevToHypervisor | HypervisorToPciDev>(b: Buffer): T | null {
  try {
    const m = decode<T>(b);
    return m && typeof m === 'object' && typeof (m as { type?: unknown }).type === 'string' ? m : null;
  } catch {
    return null;
  }
}
