// Xen's errno values, from xen/include/public/errno.h.
// Hypercalls return these negated (-EPERM); xenstore sends their names as
// strings (see io/xs_wire.ts). Guest-visible failures are data, never throws.

export const XEN_EPERM = 1;
export const XEN_ENOENT = 2;
export const XEN_ESRCH = 3;
export const XEN_EINTR = 4;
export const XEN_EIO = 5;
export const XEN_ENXIO = 6;
export const XEN_E2BIG = 7;
export const XEN_ENOEXEC = 8;
export const XEN_EBADF = 9;
export const XEN_ECHILD = 10;
export const XEN_EAGAIN = 11;
export const XEN_ENOMEM = 12;
export const XEN_EACCES = 13;
export const XEN_EFAULT = 14;
export const XEN_EBUSY = 16;
export const XEN_EEXIST = 17;
export const XEN_EXDEV = 18;
export const XEN_ENODEV = 19;
export const XEN_ENOTDIR = 20;
export const XEN_EISDIR = 21;
export const XEN_EINVAL = 22;
export const XEN_ENFILE = 23;
export const XEN_EMFILE = 24;
export const XEN_ENOSPC = 28;
export const XEN_EROFS = 30;
export const XEN_EMLINK = 31;
export const XEN_EDOM = 33;
export const XEN_ERANGE = 34;
export const XEN_EDEADLK = 35;
export const XEN_ENAMETOOLONG = 36;
export const XEN_ENOLCK = 37;
export const XEN_ENOSYS = 38;
export const XEN_ENOTEMPTY = 39;
export const XEN_ENODATA = 61;
export const XEN_ETIME = 62;
export const XEN_EBADMSG = 74;
export const XEN_EOVERFLOW = 75;
export const XEN_EILSEQ = 84;
export const XEN_ERESTART = 85;
export const XEN_ENOTSOCK = 88;
export const XEN_EMSGSIZE = 90;
export const XEN_EOPNOTSUPP = 95;
export const XEN_EADDRINUSE = 98;
export const XEN_EADDRNOTAVAIL = 99;
export const XEN_ENOBUFS = 105;
export const XEN_EISCONN = 106;
export const XEN_ENOTCONN = 107;
export const XEN_ETIMEDOUT = 110;
export const XEN_ECONNREFUSED = 111;

/** Name of a Xen errno value ("EPERM"), for messages and xenstore errors. */
const NAMES: Record<number, string> = {};
for (const [k, v] of Object.entries({
  EPERM: XEN_EPERM, ENOENT: XEN_ENOENT, ESRCH: XEN_ESRCH, EINTR: XEN_EINTR, EIO: XEN_EIO,
  ENXIO: XEN_ENXIO, E2BIG: XEN_E2BIG, ENOEXEC: XEN_ENOEXEC, EBADF: XEN_EBADF, ECHILD: XEN_ECHILD,
  EAGAIN: XEN_EAGAIN, ENOMEM: XEN_ENOMEM, EACCES: XEN_EACCES, EFAULT: XEN_EFAULT, EBUSY: XEN_EBUSY,
  EEXIST: XEN_EEXIST, EXDEV: XEN_EXDEV, ENODEV: XEN_ENODEV, ENOTDIR: XEN_ENOTDIR, EISDIR: XEN_EISDIR,
  EINVAL: XEN_EINVAL, ENFILE: XEN_ENFILE, EMFILE: XEN_EMFILE, ENOSPC: XEN_ENOSPC, EROFS: XEN_EROFS,
  EMLINK: XEN_EMLINK, EDOM: XEN_EDOM, ERANGE: XEN_ERANGE, EDEADLK: XEN_EDEADLK,
  ENAMETOOLONG: XEN_ENAMETOOLONG, ENOLCK: XEN_ENOLCK, ENOSYS: XEN_ENOSYS, ENOTEMPTY: XEN_ENOTEMPTY,
  ENODATA: XEN_ENODATA, ETIME: XEN_ETIME, EBADMSG: XEN_EBADMSG, EOVERFLOW: XEN_EOVERFLOW,
  EILSEQ: XEN_EILSEQ, ERESTART: XEN_ERESTART, ENOTSOCK: XEN_ENOTSOCK, EMSGSIZE: XEN_EMSGSIZE,
  EOPNOTSUPP: XEN_EOPNOTSUPP, EADDRINUSE: XEN_EADDRINUSE, EADDRNOTAVAIL: XEN_EADDRNOTAVAIL,
  ENOBUFS: XEN_ENOBUFS, EISCONN: XEN_EISCONN, ENOTCONN: XEN_ENOTCONN, ETIMEDOUT: XEN_ETIMEDOUT,
  ECONNREFUSED: XEN_ECONNREFUSED,
})) NAMES[v] = k;

export function errnoName(errno: number): string {
  return NAMES[Math.abs(errno)] ?? `E${Math.abs(errno)}`;
}
