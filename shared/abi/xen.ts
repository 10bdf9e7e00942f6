// Layouts and constants from xen/include/public/xen.h, arch-x86/xen.h and
// arch-x86/xen-x86_64.h (Xen 4.17, x86_64). Byte offsets are those of the C
// structs on x86_64 little-endian; xen_ulong_t and unsigned long are 8 bytes.
// Constants and codecs only: no I/O.

// The page, 4 KiB whatever the architecture. xen.h does not define it; the
// public headers do as XEN_PAGE_SHIFT 12 in io/ring.h ("The PAGE_SIZE for
// ring protocols and hypercall interfaces is always 4K, regardless of the
// architecture"), and io/displif.h, io/sndif.h, io/cameraif.h and
// xengnttab.h count buffers in XEN_PAGE_SIZE. Guest frames, grant frames,
// ring pages, shared_info, start_info and the offsets of shared memory
// windows are all counted in these pages.
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

// Hypercall numbers (xen.h). xenemu's wire protocol names hypercalls by these.
export const __HYPERVISOR_memory_op = 12;
export const __HYPERVISOR_xen_version = 17;
export const __HYPERVISOR_console_io = 18;
export const __HYPERVISOR_grant_table_op = 20;
export const __HYPERVISOR_vcpu_op = 24;
export const __HYPERVISOR_sched_op = 29;
export const __HYPERVISOR_event_channel_op = 32;
export const __HYPERVISOR_hvm_op = 34;
export const __HYPERVISOR_sysctl = 35;
export const __HYPERVISOR_domctl = 36;
export const __HYPERVISOR_dm_op = 41;

// Virtual interrupts (xen.h).
export const VIRQ_TIMER = 0;
export const VIRQ_DEBUG = 1;
export const VIRQ_CONSOLE = 2;
export const VIRQ_DOM_EXC = 3;
export const VIRQ_TBUF = 4;
export const VIRQ_DEBUGGER = 6;
export const VIRQ_XENOPROF = 7;
export const VIRQ_CON_RING = 8;
export const VIRQ_PCPU_STATE = 9;
export const VIRQ_MEM_EVENT = 10;
export const VIRQ_ARGO = 11;
export const VIRQ_ENOMEM = 12;
export const VIRQ_XENPMU = 13;
export const NR_VIRQS = 24;
/** Global VIRQs are bound by one domain only (Dom0 in practice); the rest are per-vCPU. */
export const GLOBAL_VIRQS: ReadonlySet<number> = new Set([
  VIRQ_CONSOLE, VIRQ_DOM_EXC, VIRQ_TBUF, VIRQ_DEBUGGER, VIRQ_CON_RING, VIRQ_PCPU_STATE,
  VIRQ_MEM_EVENT, VIRQ_ENOMEM,
]);

// Domain ids (xen.h).
export type domid_t = number;
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_COW = 0x7ff3;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_IDLE = 0x7fff;
export const DOMID_MASK = 0x7fff;

// console_io (xen.h).
export const CONSOLEIO_write = 0;
export const CONSOLEIO_read = 1;

export const XEN_LEGACY_MAX_VCPUS = 32;
/** Bits in an xen_ulong_t on x86_64. */
export const BITS_PER_XEN_ULONG = 64;
/** 2-level event channels: 64 selector bits x 64 port bits. */
export const EVTCHN_2L_NR_CHANNELS = BITS_PER_XEN_ULONG * BITS_PER_XEN_ULONG;

// struct vcpu_time_info (32 bytes).
export const vcpu_time_info = {
  version: 0, pad0: 4, tsc_timestamp: 8, system_time: 16, tsc_to_system_mul: 24,
  tsc_shift: 28, flags: 29, SIZE: 32,
} as const;

// struct arch_vcpu_info, x86_64 (16 bytes).
export const arch_vcpu_info = { cr2: 0, pad: 8, SIZE: 16 } as const;

// struct vcpu_info (64 bytes on x86).
export const vcpu_info = {
  evtchn_upcall_pending: 0,
  evtchn_upcall_mask: 1,
  evtchn_pending_sel: 8,
  arch: 16,
  time: 32,
  SIZE: 64,
} as const;

// struct arch_shared_info, x86_64 (48 bytes).
export const arch_shared_info = {
  max_pfn: 0, pfn_to_mfn_frame_list_list: 8, nmi_reason: 16, p2m_cr3: 24, p2m_vaddr: 32,
  p2m_generation: 40, SIZE: 48,
} as const;

// struct shared_info (one page).
export const shared_info = {
  vcpu_info: 0, // XEN_LEGACY_MAX_VCPUS x vcpu_info
  evtchn_pending: XEN_LEGACY_MAX_VCPUS * vcpu_info.SIZE, // 2048: 64 x xen_ulong_t
  evtchn_mask: XEN_LEGACY_MAX_VCPUS * vcpu_info.SIZE + 512, // 2560
  wc_version: 3072,
  wc_sec: 3076,
  wc_nsec: 3080,
  wc_sec_hi: 3084,
  arch: 3088,
  SIZE: 3088 + arch_shared_info.SIZE,
} as const;

/** Byte offset of vcpu_info[vcpu] inside shared_info. */
export function vcpuInfoOffset(vcpu: number): number {
  return shared_info.vcpu_info + vcpu * vcpu_info.SIZE;
}

// struct start_info, x86_64 (1168 bytes).
export const MAX_GUEST_CMDLINE = 1024;
export const start_info = {
  magic: 0, // char[32] "xen-<version>-<platform>"
  nr_pages: 32,
  shared_info: 40,
  flags: 48,
  store_mfn: 56,
  store_evtchn: 64,
  console_domU_mfn: 72,
  console_domU_evtchn: 80,
  console_dom0_info_off: 72,
  console_dom0_info_size: 76,
  pt_base: 88,
  nr_pt_frames: 96,
  mfn_list: 104,
  mod_start: 112,
  mod_len: 120,
  cmd_line: 128,
  first_p2m_pfn: 128 + MAX_GUEST_CMDLINE,
  nr_p2m_frames: 136 + MAX_GUEST_CMDLINE,
  SIZE: 144 + MAX_GUEST_CMDLINE,
} as const;

// start_info.flags (xen.h).
export const SIF_PRIVILEGED = 1 << 0;
export const SIF_INITDOMAIN = 1 << 1;
export const SIF_MULTIBOOT_MOD = 1 << 2;
export const SIF_MOD_START_PFN = 1 << 3;
export const SIF_VIRT_P2M_4TOOLS = 1 << 4;

export const XEN_START_INFO_MAGIC = 'xen-3.0-x86_64';

/** The fields of start_info xenemu's PV guests use. */
export interface StartInfo {
  magic: string;
  nr_pages: number;
  shared_info: number;
  flags: number;
  store_mfn: number;
  store_evtchn: number;
  console_mfn: number;
  console_evtchn: number;
  mod_start: number;
  mod_len: number;
  cmd_line: string;
}

function cstr(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.subarray(0, end)).toString('utf8');
}

/** Writes start_info (DomU console union) at `view`'s start. */
export function encodeStartInfo(view: DataView, si: StartInfo): void {
  const u8 = new Uint8Array(view.buffer, view.byteOffset, start_info.SIZE);
  u8.fill(0);
  u8.set(Buffer.from(si.magic, 'utf8').subarray(0, 31), start_info.magic);
  view.setBigUint64(start_info.nr_pages, BigInt(si.nr_pages), true);
  view.setBigUint64(start_info.shared_info, BigInt(si.shared_info), true);
  view.setUint32(start_info.flags, si.flags, true);
  view.setBigUint64(start_info.store_mfn, BigInt(si.store_mfn), true);
  view.setUint32(start_info.store_evtchn, si.store_evtchn, true);
  view.setBigUint64(start_info.console_domU_mfn, BigInt(si.console_mfn), true);
  view.setUint32(start_info.console_domU_evtchn, si.console_evtchn, true);
  view.setBigUint64(start_info.mod_start, BigInt(si.mod_start), true);
  view.setBigUint64(start_info.mod_len, BigInt(si.mod_len), true);
  u8.set(Buffer.from(si.cmd_line, 'utf8').subarray(0, MAX_GUEST_CMDLINE - 1), start_info.cmd_line);
}

/** Reads start_info (copied once: the guest may scribble on it). */
export function decodeStartInfo(view: DataView): StartInfo {
  const copy = new DataView(new Uint8Array(new Uint8Array(view.buffer, view.byteOffset, start_info.SIZE)).buffer);
  const u8 = new Uint8Array(copy.buffer);
  return {
    magic: cstr(u8.subarray(start_info.magic, start_info.magic + 32)),
    nr_pages: Number(copy.getBigUint64(start_info.nr_pages, true)),
    shared_info: Number(copy.getBigUint64(start_info.shared_info, true)),
    flags: copy.getUint32(start_info.flags, true),
    store_mfn: Number(copy.getBigUint64(start_info.store_mfn, true)),
    store_evtchn: copy.getUint32(start_info.store_evtchn, true),
    console_mfn: Number(copy.getBigUint64(start_info.console_domU_mfn, true)),
    console_evtchn: copy.getUint32(start_info.console_domU_evtchn, true),
    mod_start: Number(copy.getBigUint64(start_info.mod_start, true)),
    mod_len: Number(copy.getBigUint64(start_info.mod_len, true)),
    cmd_line: cstr(u8.subarray(start_info.cmd_line, start_info.cmd_line + MAX_GUEST_CMDLINE)),
  };
}

// --- Bitmaps of xen_ulong_t words, accessed atomically as 32-bit halves. ---
//
// Why halves: the pending and mask bitmaps are arrays of 64-bit words, but
// Atomics on BigInt64Array is slow. On a little-endian host bit b of 64-bit word
// w is bit (b % 32) of 32-bit word 2w + (b >> 5), so an Int32Array view over
// the same bytes sees exactly Xen's layout, and Atomics.or/and/load on it are
// real atomic read-modify-writes shared with every process mapping the page.

/** Index into an Int32Array (over the whole page) and bit mask for bitmap bit n. */
export function bitWord(byteOffset: number, n: number): [index: number, mask: number] {
  return [(byteOffset >> 2) + (n >>> 5), 1 << (n & 31)];
}

// More hypercall numbers (xen.h) that Xen's C tools make through privcmd.
export const __HYPERVISOR_multicall = 13;
export const __HYPERVISOR_xsm_op = 27;
export const __HYPERVISOR_physdev_op = 33;
export const __HYPERVISOR_hypfs_op = 42;

/** struct multicall_entry (xen.h, x86_64): op, result, args[6], each an xen_ulong_t. */
export const multicall_entry = { op: 0, result: 8, args: 16, SIZE: 64 } as const;

/** struct xenctl_bitmap (xen.h): XEN_GUEST_HANDLE_64(uint8) bitmap; uint32_t nr_bits. */
export const xenctl_bitmap = { bitmap: 0, nr_bits: 8, SIZE: 16 } as const;

/** xen_domain_handle_t (xen.h): the domain's 16-byte UUID. */
export const XEN_DOMAIN_HANDLE_SIZE = 16;
