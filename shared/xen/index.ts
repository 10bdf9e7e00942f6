// shared/xen: the library every domain process (Dom0 and DomU) uses to talk
// to its hypervisor. One index so the public surface is in one place.
export { HypervisorClient, XenError, check, type HypercallResult } from './hypervisor.js';
export { SharedInfo } from './shared_info.js';
export { EventChannels, type PortHandler } from './evtchn.js';
export { GrantTable, GNTTAB_NR_RESERVED_ENTRIES, type GrantMapping } from './gnttab.js';
export { GuestMemory, domainSegments, mapForeignDomain, mapForeignRange, mapForeignPage } from './memory.js';
export { startDomain, type XenDomain, type StartDomainOptions } from './domain.js';
