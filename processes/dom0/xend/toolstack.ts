// What xend drives: the toolstack operations on domains and on the node.
// xend speaks XML-RPC and resolves names; an implementation of this
// interface does the work with hypercalls (domctl/sysctl) and xenstore.
// Kept small so that xend's protocol can be tested against an in-process
// fake, and the real implementation plugged in without touching xend.
import type { MigrationProgress, MigrationSummary, PoolView } from '../../../shared/toolstack/xend_api.js';
import type { DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import type {
  BlockDeviceRecord, DomainStateFlags, PciDeviceRecord, DomainTrigger, NetworkDeviceRecord, NodeInfo, ScreenshotRecord, ShutdownReason, ShutdownRequest,
} from '../../../shared/toolstack/xend_api.js';
import type { SchedControl } from './sched_control.js';

export interface DomainInfo extends DomainStateFlags {
  domid: number;
  name: string;
  uuid: string;
  type: 'pv' | 'hvm' | 'pvh';
  memory_mib: number;
  maxmem_mib: number;
  vcpus_online: number;
  maxvcpus: number;
  cpu_time_ns: number;
  start_time: number;   // seconds since the epoch
  config?: DomainConfig;
}

export interface ConsoleAttach {
  ptyPath: string;
  /** Recent output, replayed before the client reads the PTY (xenconsoled attach). */
  backlog: Uint8Array;
}

/**
 * Errors a toolstack reports. `code` selects the XML-RPC fault: ESRCH (no
 * such domain) is ERROR_INVALID_DOMAIN, anything else ERROR_GENERIC.
 * `message` is what xl would print.
 */
export class ToolstackError extends Error {
  constructor(readonly code: 'ESRCH' | 'EINVAL' | 'ENOMEM' | 'EEXIST' | 'EBUSY' | 'EPERM' | 'ENOSYS' | 'EIO', message: string) {
    super(message);
    this.name = 'ToolstackError';
  }
}

export interface Toolstack {
  /** Scheduler controls (sched-credit, vcpu-list, vcpu-pin); absent in toolstacks without them. */
  readonly sched?: SchedControl;
  /** xl pci-assignable-*: the host's PCI devices between Domain-0 and quarantine (pci_control.ts); absent without them. */
  readonly pci?: {
    assignableAdd(bdf: string): Promise<void>;
    assignableRemove(bdf: string): Promise<void>;
    assignableList(): Promise<string[]>;
  };
  list(): Promise<DomainInfo[]>;
  get(domid: number): Promise<DomainInfo>;
  /** Builds and starts a domain; `paused` leaves it paused (xl create -p). */
  create(config: DomainConfig, paused?: boolean): Promise<DomainInfo>;
  destroy(domid: number): Promise<void>;
  pause(domid: number): Promise<void>;
  unpause(domid: number): Promise<void>;
  /** Ask the guest to shut down (xenstore control/shutdown). */
  shutdown(domid: number, reason: Exclude<ShutdownRequest, 'reboot'>): Promise<void>;
  reboot(domid: number): Promise<void>;
  /** Resolves true once the domain is gone or shut down, false after timeoutMs. */
  waitForShutdown(domid: number, timeoutMs: number): Promise<boolean>;
  memSet(domid: number, mib: number): Promise<void>;
  vcpuSet(domid: number, count: number): Promise<void>;
  info(): Promise<NodeInfo>;
  dmesg(clear: boolean): Promise<string>;
  /** `type` undefined: the domain's primary console (PV console, or an HVM guest's serial port 0). */
  console(domid: number, type?: 'pv' | 'serial', num?: number): Promise<ConsoleAttach>;
  /** XEN_DOMCTL_sendtrigger: an HVM guest's ACPI power or sleep button (optional: the test fakes have none). */
  trigger?(domid: number, trigger: DomainTrigger): Promise<void>;
  /** xl save / xl restore (optional: the test fakes have no guests' pages). */
  save?(domid: number, file: string, opts: { keep: boolean; paused: boolean }): Promise<void>;
  restore?(file: string, paused: boolean): Promise<DomainInfo>;
  /** xenemu pool: this host's guests and its pool peers' (optional: the test fakes have no pool). */
  poolView?(): Promise<PoolView>;
  /** xl migrate to the xend listening at `target` (HOST:PORT). */
  migrate?(domid: number, target: string, live: boolean): Promise<MigrationSummary>;
  /** Where the migration of `domid` is (xl migrate's progress bar), null when none runs. */
  migrateProgress?(domid: number): MigrationProgress | null;
  /** The guest's emulated display, and its PNG written to `png` unless '' (optional: PV-only toolstacks have none). */
  screenshot?(domid: number, png: string): Promise<ScreenshotRecord>;
  /** xl network-attach / network-detach / network-list (optional: the test fakes have no vifs). */
  networkAttach?(domid: number, spec: string): Promise<NetworkDeviceRecord>;
  networkDetach?(domid: number, dev: string): Promise<void>;
  networkList?(domid: number): Promise<NetworkDeviceRecord[]>;
  /** xl block-attach / block-detach / block-list (optional: the test fakes have no disks). */
  blockAttach?(domid: number, spec: string): Promise<void>;
  blockDetach?(domid: number, dev: string): Promise<void>;
  blockList?(domid: number): Promise<BlockDeviceRecord[]>;
  /** xl pci-attach / pci-detach / pci-list / pci-assignable-list (optional: the test fakes have no devices). */
  pciAttach?(domid: number, spec: string): Promise<void>;
  pciDetach?(domid: number, spec: string, force: boolean): Promise<void>;
  pciList?(domid: number): Promise<PciDeviceRecord[]>;
}

export type { BlockDeviceRecord, NetworkDeviceRecord, PciDeviceRecord, ShutdownReason, ShutdownRequest };
