// xend: the toolstack daemon's XML-RPC server (docs/design.md §2, management),
// HTTP on a Unix socket at <rundir>/xend.sock. Methods are looked up in one
// table (name -> handler, flags); domain arguments are resolved there, once,
// from a name or an id, so handlers only see domids.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import {
  createXmlRpcServer, XmlRpcFault, XMLRPC_ERROR_GENERIC, XMLRPC_ERROR_INTERNAL, XMLRPC_ERROR_INVALID_DOMAIN,
  type XmlRpcValue,
} from '../../../shared/xmlrpc.js';
import { domainConfigFromStruct, XlCfgError, type DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import { XEND_METHODS, stateString, type DomainRecord } from '../../../shared/toolstack/xend_api.js';
import { ToolstackError, type DomainInfo, type Toolstack } from './toolstack.js';
import { SCHED_METHODS } from './sched_methods.js';

type Params = XmlRpcValue[];

interface MethodEntry {
  /** Number of leading parameters that name a domain (resolved to a DomainInfo). */
  domainArgs: 0 | 1;
  handler: (ts: Toolstack, dom: DomainInfo | undefined, params: Params) => Promise<XmlRpcValue>;
}

function toRecord(d: DomainInfo): DomainRecord {
  const rec: DomainRecord = {
    domid: d.domid, name: d.name, uuid: d.uuid, type: d.type,
    memory: d.memory_mib, maxmem: d.maxmem_mib, vcpus: d.vcpus_online, maxvcpus: d.maxvcpus,
    state: stateString(d), shutdown_reason: d.shutdown && d.shutdown_reason ? d.shutdown_reason : '',
    cpu_time: d.cpu_time_ns / 1e9, start_time: d.start_time,
  };
  if (d.config) rec.config = d.config as unknown as Record<string, unknown>;
  return rec;
}

const generic = (msg: string) => new XmlRpcFault(XMLRPC_ERROR_GENERIC, msg);

function intParam(v: XmlRpcValue | undefined, what: string, min: number): number {
  const n = typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) throw generic(`invalid ${what}: ${JSON.stringify(v)}`);
  return n;
}

const METHODS: Record<string, MethodEntry> = {
  [XEND_METHODS.domains]: {
    domainArgs: 0,
    handler: async (ts, _d, [detail]) => {
      const doms = (await ts.list()).sort((a, b) => a.domid - b.domid);
      return detail === true || detail === 1 ? doms.map(toRecord) as unknown as XmlRpcValue : doms.map((d) => d.name);
    },
  },
  [XEND_METHODS.domain]: { domainArgs: 1, handler: async (_ts, d) => toRecord(d!) as unknown as XmlRpcValue },
  [XEND_METHODS.create]: {
    domainArgs: 0,
    handler: async (ts, _d, [cfg]) => {
      let config: DomainConfig;
      try {
        config = domainConfigFromStruct(cfg);
      } catch (e) {
        if (e instanceof XlCfgError) throw generic(e.message);
        throw e;
      }
      if ((await ts.list()).some((x) => x.name === config.name)) throw generic(`domain with name "${config.name}" already exists.`);
      return toRecord(await ts.create(config)) as unknown as XmlRpcValue;
    },
  },
  [XEND_METHODS.destroy]: { domainArgs: 1, handler: async (ts, d) => { await ts.destroy(d!.domid); return true; } },
  [XEND_METHODS.pause]: { domainArgs: 1, handler: async (ts, d) => { await ts.pause(d!.domid); return true; } },
  [XEND_METHODS.unpause]: { domainArgs: 1, handler: async (ts, d) => { await ts.unpause(d!.domid); return true; } },
  [XEND_METHODS.shutdown]: {
    domainArgs: 1,
    handler: async (ts, d, [reason]) => {
      const r = reason ?? 'poweroff';
      if (r === 'reboot') await ts.reboot(d!.domid);
      else if (r === 'poweroff' || r === 'halt') await ts.shutdown(d!.domid, r);
      else throw generic(`invalid shutdown reason: ${JSON.stringify(r)}`);
      return true;
    },
  },
  [XEND_METHODS.waitForShutdown]: {
    domainArgs: 1,
    handler: async (ts, d, [seconds]) => ts.waitForShutdown(d!.domid, intParam(seconds ?? 0, 'timeout', 0) * 1000),
  },
  [XEND_METHODS.setMemoryTarget]: {
    domainArgs: 1,
    handler: async (ts, d, [mib]) => { await ts.memSet(d!.domid, intParam(mib, 'memory target', 1)); return true; },
  },
  [XEND_METHODS.setVCpuCount]: {
    domainArgs: 1,
    handler: async (ts, d, [n]) => { await ts.vcpuSet(d!.domid, intParam(n, 'vcpu count', 1)); return true; },
  },
  [XEND_METHODS.console]: {
    domainArgs: 1,
    handler: async (ts, d) => {
      const c = await ts.console(d!.domid);
      return { ptyPath: c.ptyPath, backlog: c.backlog };
    },
  },
  [XEND_METHODS.networkAttach]: {
    domainArgs: 1,
    handler: async (ts, d, [spec]) => {
      if (!ts.networkAttach) throw generic('network devices are not supported by this toolstack');
      return (await ts.networkAttach(d!.domid, typeof spec === 'string' ? spec : '')) as unknown as XmlRpcValue;
    },
  },
  [XEND_METHODS.networkDetach]: {
    domainArgs: 1,
    handler: async (ts, d, [dev]) => {
      if (!ts.networkDetach) throw generic('network devices are not supported by this toolstack');
      await ts.networkDetach(d!.domid, String(dev));
      return true;
    },
  },
  [XEND_METHODS.networkList]: {
    domainArgs: 1,
    handler: async (ts, d) => (ts.networkList ? await ts.networkList(d!.domid) : []) as unknown as XmlRpcValue,
  },
  ...SCHED_METHODS,
  [XEND_METHODS.nodeInfo]: { domainArgs: 0, handler: async (ts) => ts.info() },
  [XEND_METHODS.dmesg]: { domainArgs: 0, handler: async (ts, _d, [clear]) => ts.dmesg(clear === true || clear === 1) },
  [XEND_METHODS.blockAttach]: {
    domainArgs: 1,
    handler: async (ts, d, [spec]) => {
      if (!ts.blockAttach) throw generic('block devices are not supported by this toolstack');
      if (typeof spec !== 'string') throw generic('a disk spec is required');
      await ts.blockAttach(d!.domid, spec);
      return true;
    },
  },
  [XEND_METHODS.blockDetach]: {
    domainArgs: 1,
    handler: async (ts, d, [dev]) => {
      if (!ts.blockDetach) throw generic('block devices are not supported by this toolstack');
      await ts.blockDetach(d!.domid, String(dev));
      return true;
    },
  },
  [XEND_METHODS.blockList]: {
    domainArgs: 1,
    handler: async (ts, d) => (ts.blockList ? await ts.blockList(d!.domid) : []) as unknown as XmlRpcValue,
  },
};

/** Find a domain by name or id, as xm does: a number is an id, anything else a name. */
async function resolveDomain(ts: Toolstack, dom: XmlRpcValue | undefined): Promise<DomainInfo> {
  if (typeof dom !== 'string' && typeof dom !== 'number') throw generic('a domain name or id is required');
  const list = await ts.list();
  const s = String(dom);
  const found = /^[0-9]+$/.test(s) ? list.find((d) => d.domid === Number(s)) : list.find((d) => d.name === s);
  if (!found) throw new XmlRpcFault(XMLRPC_ERROR_INVALID_DOMAIN, `Domain '${s}' does not exist.`);
  return found;
}

/** The method dispatcher: faults for unknown methods, bad domains and toolstack errors. */
export async function dispatch(ts: Toolstack, method: string, params: Params): Promise<XmlRpcValue> {
  const entry = Object.prototype.hasOwnProperty.call(METHODS, method) ? METHODS[method] : undefined;
  if (!entry) throw new XmlRpcFault(XMLRPC_ERROR_INTERNAL, `method "${method}" is not supported`);
  try {
    const dom = entry.domainArgs === 1 ? await resolveDomain(ts, params[0]) : undefined;
    return await entry.handler(ts, dom, entry.domainArgs === 1 ? params.slice(1) : params);
  } catch (e) {
    if (e instanceof XmlRpcFault) throw e;
    if (e instanceof ToolstackError) throw new XmlRpcFault(e.code === 'ESRCH' ? XMLRPC_ERROR_INVALID_DOMAIN : XMLRPC_ERROR_GENERIC, e.message);
    throw new XmlRpcFault(XMLRPC_ERROR_INTERNAL, (e as Error)?.message ?? String(e));
  }
}

export const xendMethodNames = (): string[] => Object.keys(METHODS);

export class XendServer {
  private server: http.Server | undefined;
  private socketPath: string | undefined;

  constructor(private readonly toolstack: Toolstack) {}

  /** Listen on a Unix socket (a stale socket file from a dead xend is replaced). */
  async listen(socketPath: string): Promise<void> {
    try { fs.unlinkSync(socketPath); } catch { /* none */ }
    const server = createXmlRpcServer((m, p) => dispatch(this.toolstack, m, p));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => { server.off('error', reject); resolve(); });
    });
    this.server = server;
    this.socketPath = socketPath;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections?.();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    if (this.socketPath) { try { fs.unlinkSync(this.socketPath); } catch { /* gone */ } }
  }
}
