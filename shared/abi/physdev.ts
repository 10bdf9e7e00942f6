// xen/include/public/physdev.h (Xen 4.17): a PV domain's physical
// interrupts (pirqs) and devices. Constants and layouts only.
export const PHYSDEVOP_eoi = 12;
export const PHYSDEVOP_map_pirq = 13;
export const PHYSDEVOP_unmap_pirq = 14;

export const MAP_PIRQ_TYPE_MSI = 0x0;
export const MAP_PIRQ_TYPE_GSI = 0x1;
export const MAP_PIRQ_TYPE_UNKNOWN = 0x2;
export const MAP_PIRQ_TYPE_MSI_SEG = 0x3;
export const MAP_PIRQ_TYPE_MULTI_MSI = 0x4;

/** struct physdev_eoi: IN irq (a pirq). */
export const physdev_eoi = { irq: 0, SIZE: 4 } as const;
/** struct physdev_map_pirq. */
export const physdev_map_pirq = { domid: 0, type: 4, index: 8, pirq: 12, bus: 16, devfn: 20, entry_nr: 24, table_base: 32, SIZE: 40 } as const;
/** struct physdev_unmap_pirq. */
export const physdev_unmap_pirq = { domid: 0, pirq: 4, SIZE: 8 } as const;

/**
 * xenemu's own (above Xen's range): the owner of a host PCI device asks for
 * its BAR channel (shared/hw/bar_channel.ts): `{ machine_sbdf }` ->
 * BarChannelGrant. Only the device's owner gets it (-EPERM otherwise).
 */
export const XENEMU_PHYSDEVOP_pci_bar_channel = 0x1000;
