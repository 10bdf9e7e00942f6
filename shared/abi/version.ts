// Layouts and constants from xen/include/public/version.h (Xen 4.17):
// HYPERVISOR_xen_version(cmd, arg). Most sub-ops fill a fixed-size buffer
// at arg with a NUL-terminated string; XENVER_version and XENVER_pagesize
// answer in the return value.

export const XENVER_version = 0;
export const XENVER_extraversion = 1;
export const XENVER_compile_info = 2;
export const XENVER_capabilities = 3;
export const XENVER_changeset = 4;
export const XENVER_platform_parameters = 5;
export const XENVER_get_features = 6;
export const XENVER_pagesize = 7;
export const XENVER_guest_handle = 8;
export const XENVER_commandline = 9;
export const XENVER_build_id = 10;

/** typedef char xen_extraversion_t[16]. */
export const XEN_EXTRAVERSION_LEN = 16;
/** typedef char xen_capabilities_info_t[1024]. */
export const XEN_CAPABILITIES_INFO_LEN = 1024;
/** typedef char xen_changeset_info_t[64]. */
export const XEN_CHANGESET_INFO_LEN = 64;
/** typedef char xen_commandline_t[1024]. */
export const XEN_COMMANDLINE_LEN = 1024;

/** struct xen_compile_info: four char arrays. */
export const xen_compile_info = { compiler: 0, compile_by: 64, compile_domain: 80, compile_date: 112, SIZE: 144 } as const;
/** struct xen_platform_parameters: xen_ulong_t virt_start. */
export const xen_platform_parameters = { virt_start: 0, SIZE: 8 } as const;
/** struct xen_feature_info: IN submap_idx, OUT submap. */
export const xen_feature_info = { submap_idx: 0, submap: 4, SIZE: 8 } as const;
/** struct xen_build_id: IN len (of buf), OUT buf[len]. */
export const xen_build_id = { len: 0, buf: 4, SIZE: 4 } as const;

/** What XENVER_compile_info answers (char arrays as strings). */
export interface xen_compile_info_t {
  compiler: string;
  compile_by: string;
  compile_domain: string;
  compile_date: string;
}
