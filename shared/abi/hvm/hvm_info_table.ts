// xen/include/public/hvm/hvm_info_table.h (Xen 4.17): the table the HVM
// domain builder leaves for the firmware at HVM_INFO_PADDR.
//
//   struct hvm_info_table {              offset
//       char     signature[8];  "HVM INFO"  0
//       uint32_t length;                      8
//       uint8_t  checksum;                   12   the bytes of the table sum to 0
//       uint8_t  apic_mode;                  13
//       uint32_t nr_vcpus;                   16   (padded to 4)
//       uint32_t low_mem_pgend;              20
//       uint32_t reserved_mem_pgstart;       24
//       uint32_t high_mem_pgend;             28
//       uint8_t  vcpu_online[(128+7)/8];     32
//   };                                       48
export const HVM_INFO_PFN = 0x09f;
export const HVM_INFO_OFFSET = 0x800;
export const HVM_INFO_PADDR = (HVM_INFO_PFN << 12) + HVM_INFO_OFFSET;
export const HVM_MAX_VCPUS = 128;
export const HVM_INFO_TABLE_SIZE = 48;
export const hvm_info_table = {
  signature: 0, length: 8, checksum: 12, apic_mode: 13, nr_vcpus: 16, low_mem_pgend: 20, reserved_mem_pgstart: 24,
  high_mem_pgend: 28, vcpu_online: 32,
} as const;

export interface HvmInfo {
  apicMode: number;
  nrVcpus: number;
  lowMemPgend: number;
  reservedMemPgstart: number;
  highMemPgend: number;
}

/** The table's bytes, checksum included. */
export function encodeHvmInfoTable(i: HvmInfo): Uint8Array {
  const b = new Uint8Array(HVM_INFO_TABLE_SIZE);
  const dv = new DataView(b.buffer);
  b.set(new TextEncoder().encode('HVM INFO'), 0);
  const o = hvm_info_table;
  dv.setUint32(o.length, HVM_INFO_TABLE_SIZE, true);
  b[o.apic_mode] = i.apicMode;
  dv.setUint32(o.nr_vcpus, i.nrVcpus, true);
  dv.setUint32(o.low_mem_pgend, i.lowMemPgend, true);
  dv.setUint32(o.reserved_mem_pgstart, i.reservedMemPgstart, true);
  dv.setUint32(o.high_mem_pgend, i.highMemPgend, true);
  for (let v = 0; v < i.nrVcpus; v++) b[o.vcpu_online + (v >> 3)]! |= 1 << (v & 7);
  let sum = 0;
  for (const x of b) sum = (sum + x) & 0xff;
  b[o.checksum] = (0x100 - sum) & 0xff;
  return b;
}

/** True when `b` starts with a well-formed table (signature, length, checksum). */
export function checkHvmInfoTable(b: Uint8Array): boolean {
  if (b.length < HVM_INFO_TABLE_SIZE || new TextDecoder().decode(b.subarray(0, 8)) !== 'HVM INFO') return false;
  const len = new DataView(b.buffer, b.byteOffset).getUint32(hvm_info_table.length, true);
  if (len !== HVM_INFO_TABLE_SIZE) return false;
  let sum = 0;
  for (let i = 0; i < len; i++) sum = (sum + b[i]!) & 0xff;
  return sum === 0;
}
