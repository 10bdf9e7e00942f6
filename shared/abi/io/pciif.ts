// PCI split driver (pcifront <-> pciback), from xen/include/public/io/pciif.h
// (libxen-dev 4.17), little-endian as on x86:
//
//   struct xen_msix_entry { uint16_t vector; uint16_t entry; };        size   4
//   struct xen_pci_op {
//       uint32_t cmd;         XEN_PCI_OP_*                              offset  0
//       int32_t  err;         XEN_PCI_ERR_*                             offset  4
//       uint32_t domain;      PCI segment                               offset  8
//       uint32_t bus;                                                   offset 12
//       uint32_t devfn;                                                 offset 16
//       int32_t  offset;      configuration register                    offset 20
//       int32_t  size;        1, 2 or 4                                 offset 24
//       uint32_t value;       read result / value to write              offset 28
//       uint32_t info;        e.g. the vector count of enable_msix      offset 32
//       struct xen_msix_entry msix_entries[SH_INFO_MAX_VEC];            offset 36
//   };                                                                  size 548
//   struct xen_pcie_aer_op { uint32_t cmd; int32_t err; uint32_t domain, bus, devfn; };  size 20
//   struct xen_pci_sharedinfo {
//       uint32_t flags;       XEN_PCIF_active | XEN_PCIB_*              offset   0
//       struct xen_pci_op op;                                           offset   4
//       struct xen_pcie_aer_op aer_op;                                  offset 552
//   };                                                                  size   572
//
// One page holds the xen_pci_sharedinfo; the front end fills `op`, sets
// XEN_PCIF_active in `flags` and kicks the event channel; the back end
// copies the op out once, answers in `op.err`/`op.value` (and `op.info`,
// `msix_entries` for enable_msix), clears XEN_PCIF_active and kicks back.
// There is one op in flight per device connection.

/** Bump with the header (xenstore `magic` of the front end). */
export const XEN_PCI_MAGIC = '7';

// xen_pci_sharedinfo flags (bit numbers and masks).
export const _XEN_PCIF_active = 0;
export const XEN_PCIF_active = 1 << _XEN_PCIF_active;
export const _XEN_PCIB_AERHANDLER = 1;
export const XEN_PCIB_AERHANDLER = 1 << _XEN_PCIB_AERHANDLER;
export const _XEN_PCIB_active = 2;
export const XEN_PCIB_active = 1 << _XEN_PCIB_active;

// xen_pci_op commands.
export const XEN_PCI_OP_conf_read = 0;
export const XEN_PCI_OP_conf_write = 1;
export const XEN_PCI_OP_enable_msi = 2;
export const XEN_PCI_OP_disable_msi = 3;
export const XEN_PCI_OP_enable_msix = 4;
export const XEN_PCI_OP_disable_msix = 5;
export const XEN_PCI_OP_aer_detected = 6;
export const XEN_PCI_OP_aer_resume = 7;
export const XEN_PCI_OP_aer_mmio = 8;
export const XEN_PCI_OP_aer_slotreset = 9;
export const XEN_PCI_OP_enable_multi_msi = 10;

// xen_pci_op error numbers.
export const XEN_PCI_ERR_success = 0;
export const XEN_PCI_ERR_dev_not_found = -1;
export const XEN_PCI_ERR_invalid_offset = -2;
export const XEN_PCI_ERR_access_denied = -3;
export const XEN_PCI_ERR_not_implemented = -4;
/** The back end failed to complete the operation. */
export const XEN_PCI_ERR_op_failed = -5;

/** MSI-X entries one op carries. */
export const SH_INFO_MAX_VEC = 128;

export const xen_msix_entry = { vector: 0, entry: 2, SIZE: 4 } as const;
export const xen_pci_op = {
  cmd: 0, err: 4, domain: 8, bus: 12, devfn: 16, offset: 20, size: 24, value: 28, info: 32, msix_entries: 36,
  SIZE: 36 + SH_INFO_MAX_VEC * xen_msix_entry.SIZE,
} as const;
export const xen_pcie_aer_op = { cmd: 0, err: 4, domain: 8, bus: 12, devfn: 16, SIZE: 20 } as const;
export const xen_pci_sharedinfo = { flags: 0, op: 4, aer_op: 4 + xen_pci_op.SIZE, SIZE: 4 + xen_pci_op.SIZE + xen_pcie_aer_op.SIZE } as const;

/** A xen_pci_op as a plain record (msix_entries apart: only enable_msix uses them). */
export interface XenPciOp {
  cmd: number; err: number; domain: number; bus: number; devfn: number; offset: number; size: number; value: number; info: number;
}

/** Reads the op at `base` (the sharedinfo's op) once, field by field, into a private copy. */
export function readPciOp(dv: DataView, base = xen_pci_sharedinfo.op): XenPciOp {
  return {
    cmd: dv.getUint32(base + xen_pci_op.cmd, true), err: dv.getInt32(base + xen_pci_op.err, true),
    domain: dv.getUint32(base + xen_pci_op.domain, true), bus: dv.getUint32(base + xen_pci_op.bus, true),
    devfn: dv.getUint32(base + xen_pci_op.devfn, true), offset: dv.getInt32(base + xen_pci_op.offset, true),
    size: dv.getInt32(base + xen_pci_op.size, true), value: dv.getUint32(base + xen_pci_op.value, true),
    info: dv.getUint32(base + xen_pci_op.info, true),
  };
}

/** Writes every field of `op` at `base`. */
export function writePciOp(dv: DataView, op: XenPciOp, base = xen_pci_sharedinfo.op): void {
  dv.setUint32(base + xen_pci_op.cmd, op.cmd >>> 0, true);
  dv.setInt32(base + xen_pci_op.err, op.err | 0, true);
  dv.setUint32(base + xen_pci_op.domain, op.domain >>> 0, true);
  dv.setUint32(base + xen_pci_op.bus, op.bus >>> 0, true);
  dv.setUint32(base + xen_pci_op.devfn, op.devfn >>> 0, true);
  dv.setInt32(base + xen_pci_op.offset, op.offset | 0, true);
  dv.setInt32(base + xen_pci_op.size, op.size | 0, true);
  dv.setUint32(base + xen_pci_op.value, op.value >>> 0, true);
  dv.setUint32(base + xen_pci_op.info, op.info >>> 0, true);
}

/** PCI_DEVFN / PCI_SLOT / PCI_FUNC (Linux include/uapi/linux/pci.h). */
export const PCI_DEVFN = (slot: number, func: number): number => ((slot & 0x1f) << 3) | (func & 0x07);
export const PCI_SLOT = (devfn: number): number => (devfn >> 3) & 0x1f;
export const PCI_FUNC = (devfn: number): number => devfn & 0x07;
