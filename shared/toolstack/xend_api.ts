// The management surface between `xm`/`xl` and xend (docs/design.md §2): XML-RPC
// method names in xend's spelling and the shapes of what they return.
// Both sides import this file; xend is the only implementation.
//
//   xend.domains(detail)                 -> names, or DomainRecord[]
//   xend.domain(dom)                     -> DomainRecord
//   xend.domain.create(config)           -> DomainRecord   (config: DomainConfig struct)
//   xend.domain.destroy(dom)             -> true
//   xend.domain.pause(dom) / .unpause    -> true
//   xend.domain.shutdown(dom, reason)    -> true           (reason: poweroff | halt | reboot)
//   xend.domain.waitForShutdown(dom, s)  -> true when gone or shut down within s seconds
//   xend.domain.setMemoryTarget(dom, MiB)-> true
//   xend.domain.setVCpuCount(dom, n)     -> true
//   xend.domain.console(dom)             -> { ptyPath, backlog: base64 }
//   xend.domain.networkAttach(dom, spec) -> {devid, mac, ...} (spec: an xl vif spec, may be '')
//   xend.domain.networkDetach(dom, dev)  -> true           (dev: devid or mac)
//   xend.domain.networkList(dom)         -> [{devid, backendId, mac, handle, state, evtch, txRingRef, rxRingRef, backend, bridge, ip}]
//   xend.node.info()                     -> NodeInfo (ordered as `xl info` prints it)
//   xend.node.dmesg(clear)               -> string
//   xend.domain.blockAttach(dom, spec)   -> true           (spec: an xl disk spec)
//   xend.domain.blockDetach(dom, dev)    -> true           (dev: vdev or devid)
//   xend.domain.blockList(dom)           -> [{vdev, devid, backendId, frontendId, state, evtch, rref, backend}]
//
// `dom` is a domain name or a domain id (int or decimal string), as in xm.
// Faults: faultCode 3 (ERROR_INVALID_DOMAIN) for an unknown domain, 2
// (ERROR_GENERIC) for a refused operation, 1 (ERROR_INTERNAL) otherwise;
// faultString is the message xl would print.

export const XEND_METHODS = {
  domains: 'xend.domains',
  domain: 'xend.domain',
  create: 'xend.domain.create',
  destroy: 'xend.domain.destroy',
  pause: 'xend.domain.pause',
  unpause: 'xend.domain.unpause',
  shutdown: 'xend.domain.shutdown',
  waitForShutdown: 'xend.domain.waitForShutdown',
  setMemoryTarget: 'xend.domain.setMemoryTarget',
  setVCpuCount: 'xend.domain.setVCpuCount',
  console: 'xend.domain.console',
  nodeInfo: 'xend.node.info',
  networkAttach: 'xend.domain.networkAttach',
  networkDetach: 'xend.domain.networkDetach',
  networkList: 'xend.domain.networkList',
  dmesg: 'xend.node.dmesg',
  blockAttach: 'xend.domain.blockAttach',
  blockDetach: 'xend.domain.blockDetach',
  blockList: 'xend.domain.blockList',
} as const;

export const XEND_SOCKET = 'xend.sock';

/** Why a domain shut down (libxl_shutdown_reason); xl shows it as the 5th state letter. */
export type ShutdownReason = 'poweroff' | 'reboot' | 'suspend' | 'crash' | 'watchdog' | 'soft_reset';
const SHUTDOWN_REASON_LETTERS: Record<ShutdownReason, string> = {
  poweroff: '-', reboot: 'r', suspend: 's', crash: 'c', watchdog: 'w', soft_reset: 'S',
};

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
export interface DomainRecord {
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
  config?: Record<string, unknown>;
}

/** `xl info` keys and values, in the order xl prints them. */
export type NodeInfo = Record<string, string | number>;
