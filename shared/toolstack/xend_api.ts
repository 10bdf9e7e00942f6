// The management surface between `xm`/`xl` and xend (docs/design.md §2):
// one method map, XendApi, from xend's XML-RPC method names to their
// parameters and results. Both sides are typed against it: xend's method
// table (processes/dom0/xend/server.ts) must have one entry per method,
// checking that method's parameters and returning its result, and clients
// call through xendCall(), which takes exactly the method's parameters and
// gives back its result type. The records are `type` aliases so that
// XML-RPC's struct type takes them (shared/xmlrpc.ts XmlRpcEncodable).
//
// `dom` is a domain name or a domain id (int or decimal string), as in xm.
// Faults: faultCode 3 (ERROR_INVALID_DOMAIN) for an unknown domain, 2
// (ERROR_GENERIC) for a refused operation or a parameter of the wrong kind,
// 1 (ERROR_INTERNAL) otherwise; faultString is the message xl would print.
import { xmlrpcCall, type XmlRpcEndpoint } from '../xmlrpc.js';
import type { DomainConfig } from './xlcfg.js';
import type { SchedCreditGlobals, SchedCreditRecord, VcpuRecord } from './xend_sched.js';

export const XEND_SOCKET = 'xend.sock';

/** Why a domain shut down (libxl_shutdown_reason); xl shows it as the 5th state letter. */
export type ShutdownReason = 'poweroff' | 'reboot' | 'suspend' | 'crash' | 'watchdog' | 'soft_reset';
const SHUTDOWN_REASON_LETTERS: Record<ShutdownReason, string> = {
  poweroff: '-', reboot: 'r', suspend: 's', crash: 'c', watchdog: 'w', soft_reset: 'S',
};

/** What `xl shutdown` / `xl reboot` ask of a guest (xenstore control/shutdown). */
export type ShutdownRequest = 'poweroff' | 'halt' | 'reboot';

export interface DomainStateFlags {
  running: boolean;
  blocked: boolean;
  paused: boolean;
  shutdown: boolean;
  dying: boolean;
  shutdown_reason?: ShutdownReason;
}

/** xl's six state characters `rbpscd` (tools/xl/xl_info.c list_domains): "-b----". */
export function stateString(s: DomainStateFlags): string {
  const reason = s.shutdown && s.shutdown_reason ? SHUTDOWN_REASON_LETTERS[s.shutdown_reason] : '-';
  return (s.running ? 'r' : '-') + (s.blocked ? 'b' : '-') + (s.paused ? 'p' : '-')
    + (s.shutdown ? 's' : '-') + reason + (s.dying ? 'd' : '-');
}

/** One domain as xend reports it (the struct of xend.domain). */
export type DomainRecord = {
  domid: number;
  name: string;
  uuid: string;
  type: 'pv' | 'hvm' | 'pvh';
  memory: number;        // MiB, current
  maxmem: number;        // MiB
  vcpus: number;         // online
  maxvcpus: number;
  state: string;         // "r-----", see stateString
  shutdown_reason: string; // '' when running
  cpu_time: number;      // seconds
  start_time: number;    // seconds since the epoch
  /** The configuration it was created from (absent for Domain-0). */
  config?: DomainConfig;
};

/** A guest of a pool host (xenemu pool; processes/dom0/xend/pool.ts). */
export type PoolGuest = { name: string; domid: number; state: string };
/** A pool peer as a host's xend sees it over the pool's network. */
export type PoolPeer = { host: string; listen: string; reachable: boolean; error: string; guests: PoolGuest[] };
/** xend.pool: this host, its pool bridge and listen address ('' when none), and its peers. */
export type PoolView = { host: string; pool: string; listen: string; guests: PoolGuest[]; peers: PoolPeer[] };

/** `xl info` keys and values, in the order xl prints them. */
export type NodeInfo = Record<string, string | number>;

/** Where a domain's console is, and its recent output (xenconsoled's backlog, or an HVM guest's serial log). */
export type ConsoleRecord = { ptyPath: string; backlog: Uint8Array };

/** `xl console -t`: a PV console or an emulated serial port; '' for the domain's primary console. */
export type ConsoleKind = '' | 'pv' | 'serial';

/** One row of xl network-list (libxl_nicinfo). */
export type NetworkDeviceRecord = {
  devid: number; backendId: number; mac: string; handle: number; state: number; evtch: number;
  txRingRef: number; rxRingRef: number; backend: string; bridge: string; ip: string;
};

/** One row of xl block-list. */
export type BlockDeviceRecord = {
  vdev: string; devid: number; backendId: number; frontendId: number; state: number; evtch: number; rref: number;
  backend: string;
};

/** One row of xl pci-list (libxl_device_pci): the guest's slot and function (vdevfn) and the host's device. */
export type PciDeviceRecord = { vdevfn: number; domain: number; bus: number; dev: number; func: number };

/** `xl trigger`'s events xenemu sends (libxl_trigger: power and sleep are ACPI buttons of an HVM guest). */
export type DomainTrigger = 'power' | 'sleep';

/**
 * `xl screenshot`: the emulated display's text screen (null in a graphics
 * mode), its mode and size, and the PNG's path when one was written ('' when
 * none was asked for).
 */
export type ScreenshotRecord = {
  mode: string; width: number; height: number;
  text: { cols: number; rows: number; lines: string[]; cursorRow: number; cursorCol: number } | null;
  png: string;
};

/** What xl migrate reports (its -l JSON summary): each round's pages, the bytes sent, the downtime. */
export type MigrationSummary = {
  domid: number; target: string; live: boolean;
  /** How the rounds after the first found what the guest wrote: write-protection of its mapping (userfaultfd), or comparing every page. */
  logDirty?: 'write-protect' | 'compare';
  /** Each round: pages and bytes sent, its time, and the part of it not spent waiting to send (finding the pages, copying them). */
  rounds: Array<{ round: number; pages: number; bytes: number; ms: number; scanMs?: number }>;
  sentBytes: number; downtimeMs: number; totalMs: number; targetDomid: number;
  /** Where the downtime went, ms: the guest's suspend, the last round, the target's restore, go. */
  downtimeParts: { suspendMs: number; lastRoundMs: number; commitMs: number; goMs: number };
  /** Before the stop, ms: mapping the guest's memory, the target's admission, the pre-copy rounds, the guest's acknowledgement of the suspend request. */
  beforeParts: { mapMs: number; beginMs: number; precopyMs: number; ackMs?: number };
  /**
   * How the last round, the guest stopped, found its pages: from the
   * log-dirty of every writer (the guest's write-protection, the
   * hypervisor's log of grant writes, the rings), or by comparing every
   * populated frame.
   */
  stopPages?: 'log-dirty' | 'compare';
  /** The target's commit, ms per step (its log says the same), as the target reported them. */
  commitSteps?: Record<string, number>;
};

/** Where a migration is, for xl migrate's progress bar. */
export type MigrationProgress = {
  /** precopy: rounds while the guest runs; stopcopy: the last round, the guest suspended; commit: the target restores; go: it starts there. */
  phase: 'precopy' | 'stopcopy' | 'commit' | 'go';
  round: number;
  /** Of the current round's pass over memory, 0..1. */
  scanned: number;
  sentBytes: number;
  /** Bytes the guest dirtied per second while the last round was sent (0 before the second round). */
  dirtyBytesPerSec: number;
  /** The pages the last round found dirty, sent at the link's rate so far: what stopping now would cost. */
  estDowntimeMs: number;
};

/** A domain as a client names it: its name or its id. */
export type DomRef = string | number;

/**
 * xend's methods. `dom: true`: the first parameter on the wire is a domain
 * (DomRef), which xend resolves before the method runs, and `params` are
 * the ones after it.
 */
export interface XendApi {
  /** Every domain, ordered by id: names, or records when `detail`. */
  'xend.domains': { dom: false; params: [detail: boolean]; result: string[] | DomainRecord[] };
  'xend.domain': { dom: true; params: []; result: DomainRecord };
  /** `paused`: leave it paused once built (xl create -p); absent is false. */
  'xend.domain.create': { dom: false; params: [config: DomainConfig, paused: boolean]; result: DomainRecord };
  'xend.domain.destroy': { dom: true; params: []; result: true };
  'xend.domain.pause': { dom: true; params: []; result: true };
  'xend.domain.unpause': { dom: true; params: []; result: true };
  'xend.domain.shutdown': { dom: true; params: [reason: ShutdownRequest]; result: true };
  /** XEN_DOMCTL_sendtrigger (xl trigger; xl shutdown -F's ACPI power button). */
  'xend.domain.trigger': { dom: true; params: [trigger: DomainTrigger]; result: true };
  /** xl save: `file` an absolute path; `keep` (-c) leaves it running, `paused` (-p) leaves it paused; else it is destroyed. */
  'xend.domain.save': { dom: true; params: [file: string, keep: boolean, paused: boolean]; result: true };
  /** xl restore: the saved guest, same name, a new domid; `paused` (-p) leaves it paused. */
  'xend.domain.restore': { dom: false; params: [file: string, paused: boolean]; result: DomainRecord };
  /** xl migrate: to the xend listening at `target` (HOST:PORT); `live`: pre-copy rounds while it runs. */
  'xend.domain.migrate': { dom: true; params: [target: string, live: boolean]; result: MigrationSummary };
  /** The migration of this domain in progress, or null. */
  'xend.domain.migrateProgress': { dom: true; params: []; result: MigrationProgress | null };
  /** The emulated display (QMP x-xenemu-text-screen, and screendump to `png`, an absolute path, unless ''). */
  'xend.domain.screenshot': { dom: true; params: [png: string]; result: ScreenshotRecord };
  /** True once the domain shut down or went, false after `seconds` (a long poll). */
  'xend.domain.waitForShutdown': { dom: true; params: [seconds: number]; result: boolean };
  'xend.domain.setMemoryTarget': { dom: true; params: [mib: number]; result: true };
  'xend.domain.setVCpuCount': { dom: true; params: [vcpus: number]; result: true };
  /** `type` '' (absent): the primary console (PV: its PV console; HVM: serial port 0); `num`: which one (xl console -n). */
  'xend.domain.console': { dom: true; params: [type: ConsoleKind, num: number]; result: ConsoleRecord };
  /** `spec`: an xl vif spec, may be ''. */
  'xend.domain.networkAttach': { dom: true; params: [spec: string]; result: NetworkDeviceRecord };
  /** `dev`: a devid or a MAC. */
  'xend.domain.networkDetach': { dom: true; params: [dev: string]; result: true };
  'xend.domain.networkList': { dom: true; params: []; result: NetworkDeviceRecord[] };
  /** `spec`: an xl disk spec. */
  'xend.domain.blockAttach': { dom: true; params: [spec: string]; result: true };
  /** `dev`: a vdev or a devid. */
  'xend.domain.blockDetach': { dom: true; params: [dev: string]; result: true };
  'xend.domain.blockList': { dom: true; params: []; result: BlockDeviceRecord[] };
  /** `spec`: a PCI_SPEC_STRING (xl-pci-configuration(5)). */
  'xend.domain.pciAttach': { dom: true; params: [spec: string]; result: true };
  /** `force` (-f): do not wait for the guest to let go. */
  'xend.domain.pciDetach': { dom: true; params: [spec: string, force: boolean]; result: true };
  'xend.domain.pciList': { dom: true; params: []; result: PciDeviceRecord[] };
  'xend.node.info': { dom: false; params: []; result: NodeInfo };
  /** xenemu pool: this host's guests and its pool peers' (asked over their listen sockets). */
  'xend.pool': { dom: false; params: []; result: PoolView };
  /** xl pci-assignable-add / -remove: `bdf` SSSS:BB:DD.F; -list: the BDFs in quarantine. */
  'xend.node.pciAssignableAdd': { dom: false; params: [bdf: string]; result: true };
  'xend.node.pciAssignableRemove': { dom: false; params: [bdf: string]; result: true };
  'xend.node.pciAssignableList': { dom: false; params: []; result: string[] };
  /** The hypervisor's console ring; `clear` empties it after reading. */
  'xend.node.dmesg': { dom: false; params: [clear: boolean]; result: string };
  'xend.domain.schedCredit': { dom: true; params: []; result: SchedCreditRecord };
  /** -1 leaves a value unchanged. */
  'xend.domain.setSchedCredit': { dom: true; params: [weight: number, cap: number]; result: true };
  'xend.node.schedCredit': { dom: false; params: []; result: SchedCreditGlobals };
  /** -1 leaves a value unchanged. */
  'xend.node.setSchedCredit': { dom: false; params: [tslice_ms: number, ratelimit_us: number]; result: true };
  'xend.domain.vcpus': { dom: true; params: []; result: VcpuRecord[] };
  /** `vcpu` -1 pins every vCPU; `cpus` in xl syntax ("all", "0-1,^1"). */
  'xend.domain.pinVcpu': { dom: true; params: [vcpu: number, cpus: string]; result: true };
}

export type XendMethod = keyof XendApi;

/** The methods of the credit scheduler (xl sched-credit, vcpu-list, vcpu-pin). */
export type XendSchedMethod = Extract<XendMethod,
  'xend.domain.schedCredit' | 'xend.domain.setSchedCredit' | 'xend.node.schedCredit' | 'xend.node.setSchedCredit'
  | 'xend.domain.vcpus' | 'xend.domain.pinVcpu'>;

/** A method's parameters on the wire: the domain first when it names one. */
export type XendParams<M extends XendMethod> =
  XendApi[M] extends { dom: true } ? [dom: DomRef, ...XendApi[M]['params']] : XendApi[M]['params'];
export type XendResult<M extends XendMethod> = XendApi[M]['result'];

/**
 * Call one xend method: exactly its parameters in, its result type out.
 * Rejects with XmlRpcFault (codes above) or the transport's error.
 */
export async function xendCall<M extends XendMethod>(endpoint: XmlRpcEndpoint, method: M, ...params: XendParams<M>): Promise<XendResult<M>> {
  // xend's table is typed against the same map, so its answer has this type.
  return (await xmlrpcCall(endpoint, method, params)) as XendResult<M>;
}
