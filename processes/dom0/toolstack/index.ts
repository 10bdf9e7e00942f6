// processes/dom0/toolstack: Domain-0's PV domain builder and the lifecycle
// operations on a built domain. xend's Toolstack implementation drives these;
// docs/domu.md has the boot protocol.
export { buildPvDomain, BuildError, type BuilderContext, type PvBuildConfig, type PvDomain } from './builder.js';
export { destroyPvDomain, shutdownDomain, setMemoryTarget, setVcpus, type ShutdownRequest } from './lifecycle.js';
export { DomainExceptions, type DomainFate } from './dom_exc.js';
export { writeDomainNodes, removeDomainNodes, domainPath, vmPath, type DomainNodes } from './xenstore_layout.js';
export { DEFAULT_LAYOUT, IMAGE_PFNS, START_INFO_PFN, XENSTORE_PFN, CONSOLE_PFN, type SpecialPages } from './start_info.js';
