// xen/include/public/hvm/params.h and hvm_op.h (Xen 4.17): HVM parameters
// (HVMOP_get_param / HVMOP_set_param), and the hvm_op sub-operations xenemu
// answers. Constants only.
export const HVMOP_set_param = 0;
export const HVMOP_get_param = 1;
export const HVMOP_set_pci_intx_level = 2;
export const HVMOP_set_isa_irq_level = 3;
export const HVMOP_set_pci_link_route = 4;
export const HVMOP_get_time = 10;

export const HVM_PARAM_CALLBACK_IRQ = 0;
export const HVM_PARAM_STORE_PFN = 1;
export const HVM_PARAM_STORE_EVTCHN = 2;
export const HVM_PARAM_PAE_ENABLED = 4;
export const HVM_PARAM_IOREQ_PFN = 5;
export const HVM_PARAM_BUFIOREQ_PFN = 6;
export const HVM_PARAM_VIRIDIAN = 9;
export const HVM_PARAM_TIMER_MODE = 10;
export const HVM_PARAM_HPET_ENABLED = 11;
export const HVM_PARAM_IDENT_PT = 12;
export const HVM_PARAM_DM_DOMAIN = 13;
export const HVM_PARAM_ACPI_S_STATE = 14;
export const HVM_PARAM_VPT_ALIGN = 16;
export const HVM_PARAM_CONSOLE_PFN = 17;
export const HVM_PARAM_CONSOLE_EVTCHN = 18;
export const HVM_PARAM_ACPI_IOPORTS_LOCATION = 19;
export const HVM_PARAM_NESTEDHVM = 24;
export const HVM_PARAM_BUFIOREQ_EVTCHN = 26;
export const HVM_PARAM_PAGING_RING_PFN = 27;
export const HVM_PARAM_MONITOR_RING_PFN = 28;
export const HVM_PARAM_SHARING_RING_PFN = 29;
export const HVM_PARAM_TRIPLE_FAULT_REASON = 31;
export const HVM_PARAM_IOREQ_SERVER_PFN = 32;
export const HVM_PARAM_NR_IOREQ_SERVER_PAGES = 33;
export const HVM_PARAM_ALTP2M = 35;
export const HVM_PARAM_MCA_CAP = 38;
export const HVM_NR_PARAMS = 39;

// HVM_PARAM_TIMER_MODE's values.
export const HVMPTM_delay_for_missed_ticks = 0;
export const HVMPTM_no_delay_for_missed_ticks = 1;
export const HVMPTM_no_missed_ticks_pending = 2;
export const HVMPTM_one_missed_tick_pending = 3;

/** Params a guest may not write itself (hvm.c's hvm_allow_set_param: the toolstack's). */
export const HVM_PARAMS_TOOLSTACK_ONLY: ReadonlySet<number> = new Set([
  HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_IOREQ_PFN, HVM_PARAM_BUFIOREQ_PFN,
  HVM_PARAM_DM_DOMAIN, HVM_PARAM_CONSOLE_PFN, HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_BUFIOREQ_EVTCHN,
  HVM_PARAM_IOREQ_SERVER_PFN, HVM_PARAM_NR_IOREQ_SERVER_PAGES, HVM_PARAM_ACPI_IOPORTS_LOCATION,
]);

// hvm_op.h: whether an ioreq server takes buffered requests.
export const HVM_IOREQSRV_BUFIOREQ_OFF = 0;
export const HVM_IOREQSRV_BUFIOREQ_LEGACY = 1;
export const HVM_IOREQSRV_BUFIOREQ_ATOMIC = 2;
