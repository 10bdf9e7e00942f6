// Why pciback refuses a front end's input: one name per check, counted and
// logged under that name (../backend_stats.ts). The checks are Linux
// xen-pciback's (pciback_ops.c xen_pcibk_do_op, conf_space.c valid_request,
// xenbus.c xen_pcibk_attach / xen_pcibk_do_attach), with what each answers.
import { reasonNames } from '../backend_stats.js';

export const PCIIF_REJECT_REASONS = {
  /** XEN_PCI_ERR_not_implemented. Linux: the default of xen_pcibk_do_op's switch. */
  bad_op: 'a xen_pci_op cmd pciback does not serve (not one of conf_read, conf_write, enable/disable_msi, enable/disable_msix, enable_multi_msi)',
  /** XEN_PCI_ERR_dev_not_found. Linux: xen_pcibk_get_pci_dev found nothing. */
  dev_not_found: 'a domain, bus and devfn that name none of the guest\'s devices',
  /** XEN_PCI_ERR_invalid_offset. Linux: valid_request. */
  invalid_offset: 'a configuration access of a size other than 1, 2, 4, not aligned to it, or outside the first 256 bytes',
  /** XEN_PCI_ERR_op_failed. Linux: enable_msix with more vectors than SH_INFO_MAX_VEC (-EINVAL). */
  bad_msix_count: 'XEN_PCI_OP_enable_msix with no vector or more than SH_INFO_MAX_VEC (128)',
  /** XEN_PCI_ERR_op_failed. Linux: -EALREADY / -ENXIO of xen_pcibk_enable_msi(x). */
  msi_state: 'enable_msi while MSI or MSI-X is already on, or enable_msix while MSI is on',
  /** Does not connect. Linux xen_pcibk_attach: "version mismatch (%s/%s) with pcifront - halting". */
  bad_magic: 'a front end whose magic is not XEN_PCI_MAGIC ("7")',
  /** Does not connect. Linux xen_pcibk_do_attach: xenbus_map_ring_valloc failing. */
  bad_pci_op_ref: 'a pci-op-ref missing, not a number, or refused by the hypervisor',
  /** Does not connect. Linux xen_pcibk_do_attach: bind_interdomain_evtchn_to_irqhandler failing. */
  bad_event_channel: 'an event-channel missing, not a number, or that cannot be bound',
} as const;

export type PciifReject = keyof typeof PCIIF_REJECT_REASONS;
export const PciifReject = reasonNames(PCIIF_REJECT_REASONS);
export const PCIIF_REJECTS = Object.keys(PCIIF_REJECT_REASONS) as PciifReject[];
