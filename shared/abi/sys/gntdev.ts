// Linux's grant device, xen/sys/gntdev.h as libxen-dev ships it: the ioctls
// libxengnttab makes on /dev/xen/gntdev.
import { _IOC, _IOC_NONE } from './privcmd.js';

export const ioctl_gntdev_set_max_grants = { count: 0, SIZE: 4 } as const;

const G = 'G'.charCodeAt(0);
export const IOCTL_GNTDEV_MAP_GRANT_REF = _IOC(_IOC_NONE, G, 0, 24);
export const IOCTL_GNTDEV_UNMAP_GRANT_REF = _IOC(_IOC_NONE, G, 1, 16);
export const IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR = _IOC(_IOC_NONE, G, 2, 24);
export const IOCTL_GNTDEV_SET_MAX_GRANTS = _IOC(_IOC_NONE, G, 3, ioctl_gntdev_set_max_grants.SIZE);
export const IOCTL_GNTDEV_SET_UNMAP_NOTIFY = _IOC(_IOC_NONE, G, 7, 16);
export const IOCTL_GNTDEV_GRANT_COPY = _IOC(_IOC_NONE, G, 8, 16);
