// xen/include/public/hvm/ioreq.h (Xen 4.17): the requests a vCPU hands its
// device model. One ioreq_t per vCPU in the shared page (shared_iopage_t),
// and the buffered ring (buffered_iopage_t) for writes that need no answer.
// Layouts and codecs only.
//
//   struct ioreq {                         offset
//       uint64_t addr;                      0   port, physical address, or PCI SBDF|reg
//       uint64_t data;                      8   value, or the guest paddr of the data
//       uint32_t count;                    16   repetitions (rep ins/outs, rep movs)
//       uint32_t size;                     20   bytes per repetition
//       uint32_t vp_eport;                 24   the vCPU's event channel to the device model
//       uint16_t _pad0;                    28
//       uint8_t  state:4, data_is_ptr:1,   30
//                dir:1, df:1, _pad1:1;
//       uint8_t  type;                     31
//   };                                     32 bytes
export const IOREQ_READ = 1;
export const IOREQ_WRITE = 0;

export const STATE_IOREQ_NONE = 0;
export const STATE_IOREQ_READY = 1;
export const STATE_IOREQ_INPROCESS = 2;
export const STATE_IORESP_READY = 3;

export const IOREQ_TYPE_PIO = 0;
export const IOREQ_TYPE_COPY = 1;
export const IOREQ_TYPE_PCI_CONFIG = 2;
export const IOREQ_TYPE_TIMEOFFSET = 7;
export const IOREQ_TYPE_INVALIDATE = 8;

export const IOREQ_SIZE = 32;
export const ioreq = {
  addr: 0, data: 8, count: 16, size: 20, vp_eport: 24, _pad0: 28, bits: 30, type: 31,
} as const;
/** The 32-bit word holding _pad0, the state byte and type: the word a futex waits on. */
export const IOREQ_STATE_WORD = 28;

export interface Ioreq {
  addr: bigint;
  data: bigint;
  count: number;
  size: number;
  vp_eport: number;
  state: number;
  data_is_ptr: boolean;
  dir: number;
  df: boolean;
  type: number;
}

/** The state/flags byte (bit-fields low to high, as GCC lays them out on x86). */
export function ioreqBits(state: number, dataIsPtr: boolean, dir: number, df: boolean): number {
  return (state & 0xf) | (dataIsPtr ? 0x10 : 0) | ((dir & 1) << 5) | (df ? 0x40 : 0);
}

export function decodeIoreq(dv: DataView, at: number): Ioreq {
  const bits = dv.getUint8(at + ioreq.bits);
  return {
    addr: dv.getBigUint64(at + ioreq.addr, true),
    data: dv.getBigUint64(at + ioreq.data, true),
    count: dv.getUint32(at + ioreq.count, true),
    size: dv.getUint32(at + ioreq.size, true),
    vp_eport: dv.getUint32(at + ioreq.vp_eport, true),
    state: bits & 0xf,
    data_is_ptr: (bits & 0x10) !== 0,
    dir: (bits >> 5) & 1,
    df: (bits & 0x40) !== 0,
    type: dv.getUint8(at + ioreq.type),
  };
}

/** Writes every field but the state byte's state, which the caller publishes last. */
export function encodeIoreqBody(dv: DataView, at: number, r: Omit<Ioreq, 'state'>): void {
  dv.setBigUint64(at + ioreq.addr, r.addr, true);
  dv.setBigUint64(at + ioreq.data, r.data, true);
  dv.setUint32(at + ioreq.count, r.count, true);
  dv.setUint32(at + ioreq.size, r.size, true);
  dv.setUint32(at + ioreq.vp_eport, r.vp_eport, true);
  dv.setUint8(at + ioreq.type, r.type);
}

/** shared_iopage_t: vcpu_ioreq[vcpu] at vcpu * 32. */
export const sharedIopageSlot = (vcpu: number): number => vcpu * IOREQ_SIZE;

//   struct buf_ioreq {                     8 bytes
//       uint8_t  type;                      0
//       uint8_t  pad:1, dir:1, size:2;      1   size: 0=>1, 1=>2, 2=>4, 3=>8 (two slots)
//       uint32_t addr:20;                   1   bits 4..23 of the 32-bit word at 0
//       uint32_t data;                      4
//   };
//   struct buffered_iopage { uint32_t read_pointer, write_pointer; buf_ioreq_t buf_ioreq[511]; }
export const IOREQ_BUFFER_SLOT_NUM = 511;
export const buffered_iopage = { read_pointer: 0, write_pointer: 4, buf_ioreq: 8 } as const;
export const BUF_IOREQ_SIZE = 8;

export interface BufIoreq { type: number; dir: number; size: 1 | 2 | 4 | 8; addr: number; data: number }

/** The first 32-bit word of a buf_ioreq: type | pad | dir | size | addr:20. */
export function bufIoreqWord(type: number, dir: number, size: 1 | 2 | 4 | 8, addr: number): number {
  const sz = size === 1 ? 0 : size === 2 ? 1 : size === 4 ? 2 : 3;
  return ((type & 0xff) | ((dir & 1) << 9) | (sz << 10) | ((addr & 0xfffff) << 12)) >>> 0;
}

export function decodeBufIoreq(dv: DataView, at: number): BufIoreq {
  const w = dv.getUint32(at, true);
  const sz = (w >> 10) & 3;
  return {
    type: w & 0xff,
    dir: (w >> 9) & 1,
    size: (sz === 0 ? 1 : sz === 1 ? 2 : sz === 2 ? 4 : 8),
    addr: (w >>> 12) & 0xfffff,
    data: dv.getUint32(at + 4, true),
  };
}

// ACPI register locations, chosen by HVM_PARAM_ACPI_IOPORTS_LOCATION (0: V0, 1: V1).
export const ACPI_PM1A_EVT_BLK_ADDRESS_V0 = 0x1f40;
export const ACPI_PM1A_CNT_BLK_ADDRESS_V0 = ACPI_PM1A_EVT_BLK_ADDRESS_V0 + 0x04;
export const ACPI_PM_TMR_BLK_ADDRESS_V0 = ACPI_PM1A_EVT_BLK_ADDRESS_V0 + 0x08;
export const ACPI_GPE0_BLK_ADDRESS_V0 = ACPI_PM_TMR_BLK_ADDRESS_V0 + 0x20;
export const ACPI_GPE0_BLK_LEN_V0 = 0x08;
export const ACPI_PM1A_EVT_BLK_ADDRESS_V1 = 0xb000;
export const ACPI_PM1A_CNT_BLK_ADDRESS_V1 = ACPI_PM1A_EVT_BLK_ADDRESS_V1 + 0x04;
export const ACPI_PM_TMR_BLK_ADDRESS_V1 = ACPI_PM1A_EVT_BLK_ADDRESS_V1 + 0x08;
export const ACPI_GPE0_BLK_ADDRESS_V1 = 0xafe0;
export const ACPI_GPE0_BLK_LEN_V1 = 0x04;
