// xenstore wire protocol, from xen/include/public/io/xs_wire.h (Xen 4.17)
// and docs/misc/xenstore.txt. Constants and codecs only: no I/O.

// enum xsd_sockmsg_type
export const XS_CONTROL = 0;
export const XS_DEBUG = XS_CONTROL;
export const XS_DIRECTORY = 1;
export const XS_READ = 2;
export const XS_GET_PERMS = 3;
export const XS_WATCH = 4;
export const XS_UNWATCH = 5;
export const XS_TRANSACTION_START = 6;
export const XS_TRANSACTION_END = 7;
export const XS_INTRODUCE = 8;
export const XS_RELEASE = 9;
export const XS_GET_DOMAIN_PATH = 10;
export const XS_WRITE = 11;
export const XS_MKDIR = 12;
export const XS_RM = 13;
export const XS_SET_PERMS = 14;
export const XS_WATCH_EVENT = 15;
export const XS_ERROR = 16;
export const XS_IS_DOMAIN_INTRODUCED = 17;
export const XS_RESUME = 18;
export const XS_SET_TARGET = 19;
/* XS_RESTRICT (20) has been removed */
export const XS_RESET_WATCHES = XS_SET_TARGET + 2;
export const XS_DIRECTORY_PART = 22;
export const XS_TYPE_COUNT = 23;
export const XS_INVALID = 0xffff;

export const XS_TYPE_NAMES: readonly string[] = [
  'CONTROL', 'DIRECTORY', 'READ', 'GET_PERMS', 'WATCH', 'UNWATCH', 'TRANSACTION_START',
  'TRANSACTION_END', 'INTRODUCE', 'RELEASE', 'GET_DOMAIN_PATH', 'WRITE', 'MKDIR', 'RM',
  'SET_PERMS', 'WATCH_EVENT', 'ERROR', 'IS_DOMAIN_INTRODUCED', 'RESUME', 'SET_TARGET',
  'RESTRICT', 'RESET_WATCHES', 'DIRECTORY_PART',
];

// struct xsd_errors xsd_errors[]: errors travel as these strings.
export const XSD_ERRORS = [
  'EINVAL', 'EACCES', 'EEXIST', 'EISDIR', 'ENOENT', 'ENOMEM', 'ENOSPC', 'EIO', 'ENOTEMPTY',
  'ENOSYS', 'EROFS', 'EBUSY', 'EAGAIN', 'EISCONN', 'E2BIG', 'EPERM',
] as const;
export type XsdError = (typeof XSD_ERRORS)[number];

// enum xs_watch_type: fields of an XS_WATCH_EVENT payload.
export const XS_WATCH_PATH = 0;
export const XS_WATCH_TOKEN = 1;

// struct xsd_sockmsg { uint32_t type, req_id, tx_id, len; } little-endian on x86.
export const XSD_SOCKMSG_SIZE = 16;

export interface XsdSockmsg {
  type: number;
  req_id: number;
  tx_id: number;
  len: number;
}

export function readSockmsg(buf: Uint8Array, off = 0): XsdSockmsg {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, XSD_SOCKMSG_SIZE);
  return {
    type: dv.getUint32(0, true),
    req_id: dv.getUint32(4, true),
    tx_id: dv.getUint32(8, true),
    len: dv.getUint32(12, true),
  };
}

/** One whole message: header then payload, in one buffer. */
export function encodeMsg(type: number, reqId: number, txId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(XSD_SOCKMSG_SIZE + payload.length);
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(reqId >>> 0, 4);
  out.writeUInt32LE(txId >>> 0, 8);
  out.writeUInt32LE(payload.length, 12);
  payload.copy(out, XSD_SOCKMSG_SIZE);
  return out;
}

// Shared ring page, struct xenstore_domain_interface.
export const XENSTORE_RING_SIZE = 1024;
export const XENSTORE_REQ_OFF = 0;
export const XENSTORE_RSP_OFF = 1024;
export const XENSTORE_REQ_CONS_OFF = 2048;
export const XENSTORE_REQ_PROD_OFF = 2052;
export const XENSTORE_RSP_CONS_OFF = 2056;
export const XENSTORE_RSP_PROD_OFF = 2060;
export const XENSTORE_SERVER_FEATURES_OFF = 2064;
export const XENSTORE_CONNECTION_OFF = 2068;
export const XENSTORE_ERROR_OFF = 2072;
export const XENSTORE_DOMAIN_INTERFACE_SIZE = 2076;

export function MASK_XENSTORE_IDX(idx: number): number {
  return idx & (XENSTORE_RING_SIZE - 1);
}

/* Violating this is very bad.  See docs/misc/xenstore.txt. */
export const XENSTORE_PAYLOAD_MAX = 4096;
/* Violating these just gets you an error back */
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;

// Permission characters of GET_PERMS/SET_PERMS (xenstore.txt "Permissions").
export const XS_PERM_NONE = 0;
export const XS_PERM_READ = 1;
export const XS_PERM_WRITE = 2;
export const XS_PERM_BOTH = 3;
export const XS_PERM_OWNER = 8; // internal: the owner has every right

export const XS_WRITE_NONE = 'NONE';
export const XS_WRITE_CREATE = 'CREATE';
export const XS_WRITE_CREATE_EXCL = 'CREATE|EXCL';
