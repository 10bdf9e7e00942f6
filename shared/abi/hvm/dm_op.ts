// xen/include/public/hvm/dm_op.h (Xen 4.17): what a device model asks of the
// hypervisor about its target domain. xenemu's dm_op carries
// { domid, op, ...fields of the op's struct } (the same names as the C
// structs), through the one hypercall table. Constants only.
export const XEN_DMOP_create_ioreq_server = 1;
export const XEN_DMOP_get_ioreq_server_info = 2;
export const XEN_DMOP_map_io_range_to_ioreq_server = 3;
export const XEN_DMOP_unmap_io_range_from_ioreq_server = 4;
export const XEN_DMOP_set_ioreq_server_state = 5;
export const XEN_DMOP_destroy_ioreq_server = 6;
export const XEN_DMOP_track_dirty_vram = 7;
export const XEN_DMOP_set_pci_intx_level = 8;
export const XEN_DMOP_set_isa_irq_level = 9;
export const XEN_DMOP_set_pci_link_route = 10;
export const XEN_DMOP_modified_memory = 11;
export const XEN_DMOP_set_mem_type = 12;
export const XEN_DMOP_inject_event = 13;
export const XEN_DMOP_inject_msi = 14;
export const XEN_DMOP_map_mem_type_to_ioreq_server = 15;
export const XEN_DMOP_remote_shutdown = 16;
export const XEN_DMOP_relocate_memory = 17;
export const XEN_DMOP_pin_memory_cacheattr = 18;
export const XEN_DMOP_nr_vcpus = 19;

export const XEN_DMOP_no_gfns = 1 << 0;

export const XEN_DMOP_IO_RANGE_PORT = 0;
export const XEN_DMOP_IO_RANGE_MEMORY = 1;
export const XEN_DMOP_IO_RANGE_PCI = 2;

/** XEN_DMOP_PCI_SBDF(s,b,d,f): segment 16 bits, bus 8, device 5, function 3. */
export function XEN_DMOP_PCI_SBDF(s: number, b: number, d: number, f: number): number {
  return (((s & 0xffff) << 16) | ((b & 0xff) << 8) | ((d & 0x1f) << 3) | (f & 0x7)) >>> 0;
}

/** xen_dm_op_create_ioreq_server.handle_bufioreq and others take hvm_op.h's HVM_IOREQSRV_BUFIOREQ_*. */
export type ioservid_t = number;
