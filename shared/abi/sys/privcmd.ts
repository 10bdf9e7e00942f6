// Linux's privcmd device interface, xen/sys/privcmd.h as libxen-dev ships it
// (tools/include/xen-sys/Linux/privcmd.h): what libxencall, libxenforeignmemory
// and libxendevicemodel ask of /dev/xen/privcmd. xenemu's LD_PRELOAD library
// (shared/native/xenemu_privcmd.c) presents the device; docs/xenctrl.md.

/** _IOC(dir, type, nr, size) of asm-generic/ioctl.h. */
export const _IOC_NONE = 0;
export const _IOC_WRITE = 1;
export const _IOC_READ = 2;
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
export function _IOC_SIZE(cmd: number): number { return (cmd >>> 16) & 0x3fff; }
export function _IOC_NR(cmd: number): number { return cmd & 0xff; }
export function _IOC_TYPE(cmd: number): number { return (cmd >>> 8) & 0xff; }

/** typedef struct privcmd_hypercall { __u64 op; __u64 arg[5]; }. */
export const privcmd_hypercall = { op: 0, arg: 8, SIZE: 48 } as const;
/** typedef struct privcmd_dm_op { domid_t dom; __u16 num; const privcmd_dm_op_buf_t *ubufs; }. */
export const privcmd_dm_op = { dom: 0, num: 2, ubufs: 8, SIZE: 16 } as const;

const P = 'P'.charCodeAt(0);
export const IOCTL_PRIVCMD_HYPERCALL = _IOC(_IOC_NONE, P, 0, privcmd_hypercall.SIZE); // 0x305000
export const IOCTL_PRIVCMD_MMAP = _IOC(_IOC_NONE, P, 2, 16);
export const IOCTL_PRIVCMD_MMAPBATCH = _IOC(_IOC_NONE, P, 3, 24);
export const IOCTL_PRIVCMD_MMAPBATCH_V2 = _IOC(_IOC_NONE, P, 4, 32);
export const IOCTL_PRIVCMD_DM_OP = _IOC(_IOC_NONE, P, 5, privcmd_dm_op.SIZE); // 0x105005
export const IOCTL_PRIVCMD_RESTRICT = _IOC(_IOC_NONE, P, 6, 2);
export const IOCTL_PRIVCMD_MMAP_RESOURCE = _IOC(_IOC_NONE, P, 7, 32);
export const IOCTL_PRIVCMD_UNIMPLEMENTED = _IOC(_IOC_NONE, P, 0xff, 0); // 0x50ff

/**
 * Linux's ENOTTY (asm-generic/errno-base.h; Xen's errno.h has none): what
 * the devices answer to an ioctl they do not know. The other errors of
 * these devices are Xen's numbers, which are Linux's on x86.
 */
export const LINUX_ENOTTY = 25;
