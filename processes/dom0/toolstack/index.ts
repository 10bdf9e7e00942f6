// processes/dom0/toolstack: Domain-0's domain builders, one per kind of guest
// behind one table (kinds.ts, guest_kind.ts), and the lifecycle operations on
// a built domain. xend's Toolstack implementation drives these; docs/domu.md
// has the PV boot protocol, docs/toolstack.md the HVM builder and device model.
export { buildPvDomain, BuildError, type BuilderContext, type PvBuildConfig, type PvDomain } from './builder.js';
export { destroyDomain, destroyPvDomain, shutdownDomain, setMemoryTarget, setVcpus, type ShutdownRequest } from './lifecycle.js';
export { DomainExceptions, type DomainFate } from './dom_exc.js';
export { writeDomainNodes, removeDomainNodes, domainPath, vmPath, type DomainNodes } from './xenstore_layout.js';
export { DEFAULT_LAYOUT, IMAGE_PFNS, START_INFO_PFN, XENSTORE_PFN, CONSOLE_PFN, type SpecialPages } from './start_info.js';
export { GUEST_KINDS, createGuest, refuseGuest } from './kinds.js';
export type { ConsoleType, Guest, GuestConsole, GuestContext, GuestKind } from './guest_kind.js';
