// An HVM vCPU's context: what Xen's XEN_DOMCTL_gethvmcontext returns (the
// hvm_save records of the vCPU, its vPIC/vPIT/vRTC, its interrupt lines and
// PM timer), as xenemu's vCPU has it. xenemu's own layout (docs/saverestore.md):
//
//   0   u32  magic "XHVC"
//   4   u16  version (1)
//   6   u16  reserved
//   8   u32  length of v86's state (v86.ts saveState: processor, APIC,
//            IOAPIC, PIC, PIT, RTC/CMOS, DMA, 8042; no RAM)
//   12  u32  length of the platform record (JSON, below)
//   16  v86's state, then the platform record
//
// The platform record: v86's clock at the save (its timers are rebased on
// it), the interrupt lines of the HVM segment (Xen's ISA_IRQ, PCI_IRQ and
// PCI_LINK records) and what the vCPU last told the PIC of them, the ACPI
// PM registers and timer, the PCI address latch (0xCF8).
//
// The blob travels through the hypervisor's HVM segment (XEN_DOMCTL_get/
// sethvmcontext) and the saved file's HVM_CONTEXT record; a blob that does
// not decode is refused before anything runs.
import type { AcpiPm1State } from '../../../shared/hw/acpi_pm.js';
import type { IoRouterState } from './io_router.js';

const MAGIC = 0x43564858;
export const HVM_CONTEXT_VERSION = 1;
const HEADER = 16;

export interface HvmPlatformState {
  clock: number;
  irq: { asserted: number; local: number };
  lines: { isaLevel: number; isaRaised: number; intx: number[]; links: number[] };
  pm: AcpiPm1State;
  router: IoRouterState;
}

export interface HvmContext {
  v86: Uint8Array;
  platform: HvmPlatformState;
}

export function encodeHvmContext(c: HvmContext): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(c.platform));
  const out = new Uint8Array(HEADER + c.v86.byteLength + json.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint16(4, HVM_CONTEXT_VERSION, true);
  dv.setUint32(8, c.v86.byteLength, true);
  dv.setUint32(12, json.byteLength, true);
  out.set(c.v86, HEADER);
  out.set(json, HEADER + c.v86.byteLength);
  return out;
}

/** Decodes a context blob; throws naming what is wrong. */
export function decodeHvmContext(b: Uint8Array): HvmContext {
  if (b.byteLength < HEADER) throw new Error(`HVM context of ${b.byteLength} bytes`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw new Error('HVM context: bad magic');
  const version = dv.getUint16(4, true);
  if (version !== HVM_CONTEXT_VERSION) throw new Error(`HVM context version ${version}, not ${HVM_CONTEXT_VERSION}`);
  const v86Len = dv.getUint32(8, true);
  const jsonLen = dv.getUint32(12, true);
  if (HEADER + v86Len + jsonLen !== b.byteLength) throw new Error('HVM context: lengths do not add up');
  const platform = JSON.parse(new TextDecoder().decode(b.subarray(HEADER + v86Len))) as HvmPlatformState;
  if (typeof platform?.clock !== 'number' || !platform.irq || !platform.lines || !platform.pm || !platform.router) {
    throw new Error('HVM context: platform record incomplete');
  }
  return { v86: b.slice(HEADER, HEADER + v86Len), platform };
}
