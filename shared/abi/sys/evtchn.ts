// Linux's event channel device, xen/sys/evtchn.h as libxen-dev ships it: the
// ioctls libxenevtchn makes on /dev/xen/evtchn. read() gives pending ports
// (evtchn_port_t each), write() of ports unmasks them.
import { _IOC, _IOC_NONE } from './privcmd.js';

export const ioctl_evtchn_bind_virq = { virq: 0, SIZE: 4 } as const;
export const ioctl_evtchn_bind_interdomain = { remote_domain: 0, remote_port: 4, SIZE: 8 } as const;
export const ioctl_evtchn_bind_unbound_port = { remote_domain: 0, SIZE: 4 } as const;
export const ioctl_evtchn_unbind = { port: 0, SIZE: 4 } as const;
export const ioctl_evtchn_notify = { port: 0, SIZE: 4 } as const;
export const ioctl_evtchn_restrict_domid = { domid: 0, SIZE: 2 } as const;

const E = 'E'.charCodeAt(0);
/** Each returns the bound local port. */
export const IOCTL_EVTCHN_BIND_VIRQ = _IOC(_IOC_NONE, E, 0, ioctl_evtchn_bind_virq.SIZE);
export const IOCTL_EVTCHN_BIND_INTERDOMAIN = _IOC(_IOC_NONE, E, 1, ioctl_evtchn_bind_interdomain.SIZE);
export const IOCTL_EVTCHN_BIND_UNBOUND_PORT = _IOC(_IOC_NONE, E, 2, ioctl_evtchn_bind_unbound_port.SIZE);
export const IOCTL_EVTCHN_UNBIND = _IOC(_IOC_NONE, E, 3, ioctl_evtchn_unbind.SIZE);
export const IOCTL_EVTCHN_NOTIFY = _IOC(_IOC_NONE, E, 4, ioctl_evtchn_notify.SIZE);
/** Clear and reinitialise the event buffer; clear errors. */
export const IOCTL_EVTCHN_RESET = _IOC(_IOC_NONE, E, 5, 0);
export const IOCTL_EVTCHN_RESTRICT_DOMID = _IOC(_IOC_NONE, E, 6, ioctl_evtchn_restrict_domid.SIZE);
