// Constants from xen/include/public/domctl.h (Xen 4.17). Argument structs are
// carried as plain objects with Xen's field names (shared/wire/hypercall.ts).

export const XEN_DOMCTL_INTERFACE_VERSION = 0x00000015;

export const XEN_DOMCTL_createdomain = 1;
export const XEN_DOMCTL_destroydomain = 2;
export const XEN_DOMCTL_pausedomain = 3;
export const XEN_DOMCTL_unpausedomain = 4;
/** domain_resume: a domain shut down for suspend runs on (its SCHEDOP_shutdown returns 1). */
export const XEN_DOMCTL_resumedomain = 27;
export const XEN_DOMCTL_getdomaininfo = 5;
export const XEN_DOMCTL_setvcpuaffinity = 9;
export const XEN_DOMCTL_max_mem = 11;
export const XEN_DOMCTL_setvcpucontext = 12;
export const XEN_DOMCTL_getvcpuinfo = 14;
export const XEN_DOMCTL_max_vcpus = 15;
export const XEN_DOMCTL_scheduler_op = 16;
export const XEN_DOMCTL_setdomainhandle = 17;
export const XEN_DOMCTL_getvcpuaffinity = 25;
export const XEN_DOMCTL_sendtrigger = 28;
/** struct xen_domctl_hvmcontext: an HVM domain's saved state (xenemu's: its vCPU's context blob, docs/saverestore.md). */
export const XEN_DOMCTL_gethvmcontext = 33;
export const XEN_DOMCTL_sethvmcontext = 34;
export const XEN_DOMCTL_set_target = 46;
/** Log-dirty mode (xen_domctl_shadow_op): xenemu keeps only the log-dirty part of shadow paging. */
export const XEN_DOMCTL_shadow_op = 10;
export const XEN_DOMCTL_SHADOW_OP_OFF = 0;
export const XEN_DOMCTL_SHADOW_OP_ENABLE = 32;
export const XEN_DOMCTL_SHADOW_OP_CLEAN = 11;
export const XEN_DOMCTL_SHADOW_OP_PEEK = 12;
export const XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY = 2;
export const XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY = 1 << 2;
/** CLEAN/PEEK: the final iteration, pages mapped writably by others included. */
export const XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL = 1 << 0;
// PCI passthrough (docs/passthrough.md, processes/hypervisor/pci_domctl.ts).
export const XEN_DOMCTL_irq_permission = 19;
export const XEN_DOMCTL_iomem_permission = 20;
export const XEN_DOMCTL_ioport_permission = 21;
export const XEN_DOMCTL_assign_device = 37;
export const XEN_DOMCTL_bind_pt_irq = 38;
export const XEN_DOMCTL_memory_mapping = 39;
export const XEN_DOMCTL_ioport_mapping = 40;
export const XEN_DOMCTL_test_assign_device = 45;
export const XEN_DOMCTL_deassign_device = 47;
export const XEN_DOMCTL_unbind_pt_irq = 48;
export const XEN_DOMCTL_DEV_PCI = 0;
export const XEN_DOMCTL_DEV_DT = 1;
export const XEN_DOMCTL_DEV_RDM_RELAXED = 1;
/** enum pt_irq_type. */
export const PT_IRQ_TYPE_PCI = 0;
export const PT_IRQ_TYPE_ISA = 1;
export const PT_IRQ_TYPE_MSI = 2;
export const PT_IRQ_TYPE_MSI_TRANSLATE = 3;
/** xen_domctl_bind_pt_irq u.msi.gflags: the guest's MSI address and data fields (QEMU's xen_pt_msi.c msi_gflags). */
export const XEN_DOMCTL_VMSI_X86_DEST_ID_MASK = 0x0000ff;
export const XEN_DOMCTL_VMSI_X86_RH_MASK = 0x000100;
export const XEN_DOMCTL_VMSI_X86_DM_MASK = 0x000200;
export const XEN_DOMCTL_VMSI_X86_DELIV_MASK = 0x007000;
export const XEN_DOMCTL_VMSI_X86_TRIG_MASK = 0x008000;
export const XEN_DOMCTL_VMSI_X86_UNMASKED = 0x010000;

// XEN_DOMCTL_sendtrigger's triggers.
export const XEN_DOMCTL_SENDTRIGGER_NMI = 0;
export const XEN_DOMCTL_SENDTRIGGER_RESET = 1;
export const XEN_DOMCTL_SENDTRIGGER_INIT = 2;
export const XEN_DOMCTL_SENDTRIGGER_POWER = 3;
export const XEN_DOMCTL_SENDTRIGGER_SLEEP = 4;

/**
 * xenemu's own domctl (Xen leaves numbers above its range free): tells Dom0
 * the shared memory segments behind a domain, which is how its builder and
 * backends reach guest frames (the xc_map_foreign_range of xenemu).
 */
export const XENEMU_DOMCTL_getsegments = 0x1000;
/**
 * xl pci-assignable-add / -remove / -list (Domain-0 only): a host PCI device
 * from Domain-0 to quarantine and back, and the devices with their owners.
 * Linux's pciback does the unbinding on Xen; xenemu's hypervisor holds it.
 */
export const XENEMU_DOMCTL_pci_assignable_add = 0x1001;
export const XENEMU_DOMCTL_pci_assignable_remove = 0x1002;
export const XENEMU_DOMCTL_pci_assignable_list = 0x1003;

// xen_domctl_createdomain.flags
export const _XEN_DOMCTL_CDF_hvm = 0;
export const XEN_DOMCTL_CDF_hvm = 1 << _XEN_DOMCTL_CDF_hvm;
export const _XEN_DOMCTL_CDF_hap = 1;
export const XEN_DOMCTL_CDF_hap = 1 << _XEN_DOMCTL_CDF_hap;
export const XEN_DOMCTL_CDF_s3_integrity = 1 << 2;
export const XEN_DOMCTL_CDF_oos_off = 1 << 3;
export const XEN_DOMCTL_CDF_xs_domain = 1 << 4;
export const XEN_DOMCTL_CDF_iommu = 1 << 5;

// xen_domctl_getdomaininfo.flags
export const XEN_DOMINF_dying = 1 << 0;
export const XEN_DOMINF_hvm_guest = 1 << 1;
export const XEN_DOMINF_shutdown = 1 << 2;
export const XEN_DOMINF_paused = 1 << 3;
export const XEN_DOMINF_blocked = 1 << 4;
export const XEN_DOMINF_running = 1 << 5;
export const XEN_DOMINF_debugged = 1 << 6;
export const XEN_DOMINF_xs_domain = 1 << 7;
export const XEN_DOMINF_hap = 1 << 8;
export const XEN_DOMINF_shutdownmask = 255;
export const XEN_DOMINF_shutdownshift = 16;

/** The shutdown reason carried in getdomaininfo flags. */
export function dominfShutdownReason(flags: number): number {
  return (flags >>> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask;
}

/**
 * xen_domctl_createdomain. `xenemu` is our extension: which program the
 * domain process runs (default: the PV guest kernel, processes/domu).
 */
export interface xen_domctl_createdomain {
  flags?: number;
  max_vcpus: number;
  max_evtchn_port?: number;
  max_grant_frames?: number;
  max_maptrack_frames?: number;
  /** Initial memory in KiB (XEN_DOMCTL_max_mem is separate in Xen; here it doubles as tot_pages). */
  memory_kb: number;
  /** Upper bound in KiB for ballooning up; defaults to memory_kb. */
  max_memkb?: number;
  handle?: Uint8Array | number[];
  xenemu?: { program?: string; args?: string[] };
}

export interface xen_domctl_getdomaininfo {
  domain: number;
  flags: number;
  tot_pages: number;
  max_pages: number;
  outstanding_pages: number;
  shr_pages: number;
  paged_pages: number;
  shared_info_frame: number;
  cpu_time: number; // ns
  nr_online_vcpus: number;
  max_vcpu_id: number;
  ssidref: number;
  handle: number[];
  cpupool: number;
  /** Guest physical address bits (0: the default). */
  gpaddr_bits?: number;
  /** arch_config.emulation_flags (XEN_X86_EMU_*): what Xen emulates for an HVM guest. */
  emulation_flags?: number;
  /** xenemu: the domain process's pid (0 before first unpause). */
  pid?: number;
}

export interface xen_domctl_setvcpucontext {
  vcpu: number;
  /** x86_64 PV entry: rsi holds start_info's address (pseudo-physical in xenemu). */
  user_regs: { rsi: number; rip?: number };
}

/** Reply data of XENEMU_DOMCTL_getsegments. */
export interface xenemu_domain_segments {
  domid: number;
  mem: string; // dom<id>.mem: pseudo-physical memory, nr_pages * PAGE_SIZE bytes (max_pages sized)
  mem_bytes: number;
  shared_info: string; // one page
  gnttab: string; // grant table frames
  gnttab_frames: number;
  /** dom<id>.vcpu: runstate and slice grants, one page (shared/abi/vcpu.ts). */
  vcpu?: string;
}

/** XEN_DOMCTL_getvcpuinfo (domctl.h): IN vcpu; OUT the rest (cpu_time in ns). */
export interface xen_domctl_getvcpuinfo {
  vcpu: number;
  online: number;
  blocked: number;
  running: number;
  cpu_time: number;
  cpu: number;
}

// XEN_DOMCTL_setvcpuaffinity / XEN_DOMCTL_getvcpuaffinity
export const _XEN_VCPUAFFINITY_HARD = 0;
export const XEN_VCPUAFFINITY_HARD = 1 << _XEN_VCPUAFFINITY_HARD;
export const _XEN_VCPUAFFINITY_SOFT = 1;
export const XEN_VCPUAFFINITY_SOFT = 1 << _XEN_VCPUAFFINITY_SOFT;
export const _XEN_VCPUAFFINITY_FORCE = 2;
export const XEN_VCPUAFFINITY_FORCE = 1 << _XEN_VCPUAFFINITY_FORCE;

/** struct xenctl_bitmap (xen.h): the bitmap's bytes (bit i of byte i/8 = CPU i) and its length in bits. */
export interface xenctl_bitmap {
  bitmap: number[];
  nr_bits: number;
}

/** struct xen_domctl_vcpuaffinity. */
export interface xen_domctl_vcpuaffinity {
  vcpu: number;
  flags: number;
  cpumap_hard: xenctl_bitmap;
  cpumap_soft: xenctl_bitmap;
}

/** A CPU mask (bit i = CPU i) as a xenctl_bitmap of nr_bits bits. */
export function cpumaskToBitmap(mask: bigint, nrBits: number): xenctl_bitmap {
  const bytes: number[] = [];
  for (let i = 0; i < Math.ceil(nrBits / 8); i++) bytes.push(Number((mask >> BigInt(8 * i)) & 0xffn));
  return { bitmap: bytes, nr_bits: nrBits };
}

export function bitmapToCpumask(b: xenctl_bitmap | undefined): bigint {
  let mask = 0n;
  const bytes = Array.isArray(b?.bitmap) ? b!.bitmap : [];
  const nr = Math.min(Number(b?.nr_bits ?? bytes.length * 8), bytes.length * 8, 64);
  for (let i = 0; i < nr; i++) if ((Number(bytes[i >> 3]) >> (i & 7)) & 1) mask |= 1n << BigInt(i);
  return mask;
}

// XEN_DOMCTL_scheduler_op
export const XEN_SCHEDULER_CREDIT = 5;
export const XEN_SCHEDULER_CREDIT2 = 6;
export const XEN_SCHEDULER_ARINC653 = 7;
export const XEN_SCHEDULER_RTDS = 8;
export const XEN_SCHEDULER_NULL = 9;

export const XEN_DOMCTL_SCHEDOP_putinfo = 0;
export const XEN_DOMCTL_SCHEDOP_getinfo = 1;
export const XEN_DOMCTL_SCHEDOP_putvcpuinfo = 2;
export const XEN_DOMCTL_SCHEDOP_getvcpuinfo = 3;

/** struct xen_domctl_sched_credit. */
export interface xen_domctl_sched_credit {
  weight: number;
  cap: number;
}

/** struct xen_domctl_scheduler_op (the credit member of its union as `u.credit`). */
export interface xen_domctl_scheduler_op {
  sched_id: number;
  cmd: number;
  u: { credit: xen_domctl_sched_credit };
}

// ---------------------------------------------------------------------------
// Byte layouts (x86_64), for Xen's C tools, which pass `struct xen_domctl`
// through privcmd (processes/hypervisor/xen_hypercall.ts decodes them).
// test/hypervisor/xen_layouts.test.ts checks every offset against
// libxen-dev's domctl.h with a C offset dump.

/** struct xen_domctl: the header; `u` holds the sub-op's struct (a 128-byte union). */
export const xen_domctl = { cmd: 0, interface_version: 4, domain: 8, u: 16, SIZE: 144 } as const;

/** struct xen_domctl_getdomaininfo (all OUT). */
export const xen_domctl_getdomaininfo = {
  domain: 0, flags: 4, tot_pages: 8, max_pages: 16, outstanding_pages: 24, shr_pages: 32, paged_pages: 40,
  shared_info_frame: 48, cpu_time: 56, nr_online_vcpus: 64, max_vcpu_id: 68, ssidref: 72, handle: 76,
  cpupool: 92, gpaddr_bits: 96, arch_config: 104, SIZE: 112,
} as const;

/** struct xen_arch_domainconfig (arch-x86/xen.h): emulation_flags, misc_flags. */
export const xen_arch_domainconfig = { emulation_flags: 0, misc_flags: 4, SIZE: 8 } as const;

/** struct xen_domctl_max_mem: IN max_memkb. */
export const xen_domctl_max_mem = { max_memkb: 0, SIZE: 8 } as const;
/** struct xen_domctl_max_vcpus: IN max. */
export const xen_domctl_max_vcpus = { max: 0, SIZE: 4 } as const;
/** struct xen_domctl_getvcpuinfo: IN vcpu; OUT online, blocked, running (u8), cpu_time (ns), cpu. */
export const xen_domctl_getvcpuinfo = { vcpu: 0, online: 4, blocked: 5, running: 6, cpu_time: 8, cpu: 16, SIZE: 24 } as const;
/** struct xen_domctl_vcpuaffinity: vcpu, flags, then two xenctl_bitmap (xen.h). */
export const xen_domctl_vcpuaffinity = { vcpu: 0, flags: 4, cpumap_hard: 8, cpumap_soft: 24, SIZE: 40 } as const;
/** struct xen_domctl_scheduler_op: sched_id, cmd, then the union `u`. */
export const xen_domctl_scheduler_op = { sched_id: 0, cmd: 4, u: 8, SIZE: 24 } as const;
/** struct xen_domctl_sched_credit: weight, cap (u16 each). */
export const xen_domctl_sched_credit = { weight: 0, cap: 2, SIZE: 4 } as const;

/** struct xen_domctl_assign_device: dev (XEN_DOMCTL_DEV_*), flags, u.pci.machine_sbdf at `u`. */
export const xen_domctl_assign_device = { dev: 0, flags: 4, u: 8, SIZE: 24 } as const;
/** struct xen_domctl_irq_permission. */
export const xen_domctl_irq_permission = { pirq: 0, allow_access: 4, pad: 5, SIZE: 8 } as const;
/** struct xen_domctl_iomem_permission. */
export const xen_domctl_iomem_permission = { first_mfn: 0, nr_mfns: 8, allow_access: 16, SIZE: 24 } as const;
/** struct xen_domctl_ioport_permission. */
export const xen_domctl_ioport_permission = { first_port: 0, nr_ports: 4, allow_access: 8, SIZE: 12 } as const;
/** struct xen_domctl_memory_mapping. */
export const xen_domctl_memory_mapping = { first_gfn: 0, first_mfn: 8, nr_mfns: 16, add_mapping: 24, padding: 28, SIZE: 32 } as const;
/** struct xen_domctl_ioport_mapping. */
export const xen_domctl_ioport_mapping = { first_gport: 0, first_mport: 4, nr_ports: 8, add_mapping: 12, SIZE: 16 } as const;
/** struct xen_domctl_bind_pt_irq: machine_irq, irq_type, then the union `u` (isa, pci, msi, spi). */
export const xen_domctl_bind_pt_irq = { machine_irq: 0, irq_type: 4, u: 8, SIZE: 24 } as const;

/** Writes a getdomaininfo record at `off` (xen_domctl_getdomaininfo). */
export function encodeGetdomaininfo(dv: DataView, off: number, i: xen_domctl_getdomaininfo): void {
  const L = xen_domctl_getdomaininfo;
  for (let b = 0; b < L.SIZE; b++) dv.setUint8(off + b, 0);
  dv.setUint16(off + L.domain, i.domain, true);
  dv.setUint32(off + L.flags, i.flags >>> 0, true);
  dv.setBigUint64(off + L.tot_pages, BigInt(i.tot_pages), true);
  dv.setBigUint64(off + L.max_pages, BigInt(i.max_pages), true);
  dv.setBigUint64(off + L.outstanding_pages, BigInt(i.outstanding_pages), true);
  dv.setBigUint64(off + L.shr_pages, BigInt(i.shr_pages), true);
  dv.setBigUint64(off + L.paged_pages, BigInt(i.paged_pages), true);
  dv.setBigUint64(off + L.shared_info_frame, BigInt(i.shared_info_frame), true);
  dv.setBigUint64(off + L.cpu_time, BigInt(Math.max(0, Math.floor(i.cpu_time))), true);
  dv.setUint32(off + L.nr_online_vcpus, i.nr_online_vcpus, true);
  dv.setUint32(off + L.max_vcpu_id, i.max_vcpu_id >>> 0, true);
  dv.setUint32(off + L.ssidref, i.ssidref, true);
  for (let b = 0; b < 16; b++) dv.setUint8(off + L.handle + b, Number(i.handle[b] ?? 0) & 0xff);
  dv.setUint32(off + L.cpupool, i.cpupool, true);
  dv.setUint8(off + L.gpaddr_bits, i.gpaddr_bits ?? 0);
  dv.setUint32(off + L.arch_config + xen_arch_domainconfig.emulation_flags, i.emulation_flags ?? 0, true);
}

/** Reads a getdomaininfo record (the inverse of encodeGetdomaininfo; `pid` is not in it). */
export function decodeGetdomaininfo(dv: DataView, off: number): xen_domctl_getdomaininfo {
  const L = xen_domctl_getdomaininfo;
  const u64 = (o: number) => Number(dv.getBigUint64(off + o, true));
  const handle: number[] = [];
  for (let b = 0; b < 16; b++) handle.push(dv.getUint8(off + L.handle + b));
  return {
    domain: dv.getUint16(off + L.domain, true), flags: dv.getUint32(off + L.flags, true),
    tot_pages: u64(L.tot_pages), max_pages: u64(L.max_pages), outstanding_pages: u64(L.outstanding_pages),
    shr_pages: u64(L.shr_pages), paged_pages: u64(L.paged_pages), shared_info_frame: u64(L.shared_info_frame),
    cpu_time: u64(L.cpu_time), nr_online_vcpus: dv.getUint32(off + L.nr_online_vcpus, true),
    max_vcpu_id: dv.getUint32(off + L.max_vcpu_id, true), ssidref: dv.getUint32(off + L.ssidref, true), handle,
    cpupool: dv.getUint32(off + L.cpupool, true), gpaddr_bits: dv.getUint8(off + L.gpaddr_bits),
    emulation_flags: dv.getUint32(off + L.arch_config + xen_arch_domainconfig.emulation_flags, true),
  };
}
