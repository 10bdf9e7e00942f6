// xend: the toolstack daemon's XML-RPC server (docs/design.md §2, management),
// HTTP on a Unix socket at <rundir>/xend.sock. Methods are looked up in one
// table typed against the method map XendApi (methods.ts says how): each
// entry checks its parameters at the edge, a domain argument resolved by
// resolveDomain() from a name or an id, so handlers see typed values and
// DomainInfo.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import {
  createXmlRpcServer, XmlRpcFault, XMLRPC_ERROR_GENERIC, XMLRPC_ERROR_INTERNAL, XMLRPC_ERROR_INVALID_DOMAIN,
  type XmlRpcEncodable, type XmlRpcValue,
} from '../../../shared/xmlrpc.js';
import { stateString, type DomainRecord, type XendMethod, type XendSchedMethod } from '../../../shared/toolstack/xend_api.js';
import { ToolstackError, type DomainInfo, type Toolstack } from './toolstack.js';
import {
  bool, config, devName, generic, int, oneOf, str, type MethodEntry, type MethodTable, type ResolveDomain,
} from './methods.js';
import { SCHED_METHODS } from './sched_methods.js';

function toRecord(d: DomainInfo): DomainRecord {
  const rec: DomainRecord = {
    domid: d.domid, name: d.name, uuid: d.uuid, type: d.type,
    memory: d.memory_mib, maxmem: d.maxmem_mib, vcpus: d.vcpus_online, maxvcpus: d.maxvcpus,
    state: stateString(d), shutdown_reason: d.shutdown && d.shutdown_reason ? d.shutdown_reason : '',
    cpu_time: d.cpu_time_ns / 1e9, start_time: d.start_time,
  };
  if (d.config) rec.config = d.config;
  return rec;
}

function network(ts: Toolstack): Required<Pick<Toolstack, 'networkAttach' | 'networkDetach' | 'networkList'>> {
  if (!ts.networkAttach || !ts.networkDetach || !ts.networkList) throw generic('network devices are not supported by this toolstack');
  return { networkAttach: ts.networkAttach.bind(ts), networkDetach: ts.networkDetach.bind(ts), networkList: ts.networkList.bind(ts) };
}

function pciControl(ts: Toolstack): NonNullable<Toolstack['pci']> {
  if (!ts.pci) throw generic('PCI passthrough is not supported by this toolstack');
  return ts.pci;
}

function block(ts: Toolstack): Required<Pick<Toolstack, 'blockAttach' | 'blockDetach' | 'blockList'>> {
  if (!ts.blockAttach || !ts.blockDetach || !ts.blockList) throw generic('block devices are not supported by this toolstack');
  return { blockAttach: ts.blockAttach.bind(ts), blockDetach: ts.blockDetach.bind(ts), blockList: ts.blockList.bind(ts) };
}

function pci(ts: Toolstack): Required<Pick<Toolstack, 'pciAttach' | 'pciDetach' | 'pciList'>> {
  if (!ts.pciAttach || !ts.pciDetach || !ts.pciList) throw generic('PCI passthrough is not supported by this toolstack');
  return { pciAttach: ts.pciAttach.bind(ts), pciDetach: ts.pciDetach.bind(ts), pciList: ts.pciList.bind(ts) };
}

const DOMAIN_METHODS: MethodTable<Exclude<XendMethod, XendSchedMethod>> = {
  'xend.domains': {
    params: (p) => [bool(p[0], 'detail', false)],
    run: async (ts, [detail]) => {
      const doms = (await ts.list()).sort((a, b) => a.domid - b.domid);
      return detail ? doms.map(toRecord) : doms.map((d) => d.name);
    },
  },
  'xend.domain': { params: async (p, dom) => [await dom(p[0])], run: async (_ts, [d]) => toRecord(d) },
  'xend.domain.create': {
    params: (p) => [config(p[0]), bool(p[1], 'paused', false)],
    run: async (ts, [cfg, paused]) => {
      if ((await ts.list()).some((x) => x.name === cfg.name)) throw generic(`domain with name "${cfg.name}" already exists.`);
      return toRecord(await ts.create(cfg, paused));
    },
  },
  'xend.domain.destroy': { params: async (p, dom) => [await dom(p[0])], run: async (ts, [d]) => { await ts.destroy(d.domid); return true; } },
  'xend.domain.pause': { params: async (p, dom) => [await dom(p[0])], run: async (ts, [d]) => { await ts.pause(d.domid); return true; } },
  'xend.domain.unpause': { params: async (p, dom) => [await dom(p[0])], run: async (ts, [d]) => { await ts.unpause(d.domid); return true; } },
  'xend.domain.shutdown': {
    params: async (p, dom) => [await dom(p[0]), oneOf(p[1], 'shutdown reason', ['poweroff', 'halt', 'reboot'], 'poweroff')],
    run: async (ts, [d, reason]) => {
      if (reason === 'reboot') await ts.reboot(d.domid);
      else await ts.shutdown(d.domid, reason);
      return true;
    },
  },
  'xend.domain.trigger': {
    params: async (p, dom) => [await dom(p[0]), oneOf(p[1], 'trigger', ['power', 'sleep'] as const, 'power')],
    run: async (ts, [d, trigger]) => {
      if (!ts.trigger) throw generic('triggers are not supported by this toolstack');
      await ts.trigger(d.domid, trigger);
      return true;
    },
  },
  'xend.domain.save': {
    params: async (p, dom) => [await dom(p[0]), str(p[1], 'save file'), bool(p[2], 'keep', false), bool(p[3], 'paused', false)],
    run: async (ts, [d, file, keep, paused]) => {
      if (!ts.save) throw generic('save is not supported by this toolstack');
      if (!file.startsWith('/')) throw generic(`save file must be an absolute path: ${file}`);
      await ts.save(d.domid, file, { keep, paused });
      return true;
    },
  },
  'xend.domain.restore': {
    params: (p) => [str(p[0], 'save file'), bool(p[1], 'paused', false)],
    run: async (ts, [file, paused]) => {
      if (!ts.restore) throw generic('restore is not supported by this toolstack');
      if (!file.startsWith('/')) throw generic(`save file must be an absolute path: ${file}`);
      return toRecord(await ts.restore(file, paused));
    },
  },
  'xend.domain.migrate': {
    params: async (p, dom) => [await dom(p[0]), str(p[1], 'migration target'), bool(p[2], 'live', true)],
    run: async (ts, [d, target, live]) => {
      if (!ts.migrate) throw generic('migration is not supported by this toolstack');
      return ts.migrate(d.domid, target, live);
    },
  },
  'xend.domain.migrateProgress': {
    params: async (p, dom) => [await dom(p[0])],
    run: async (ts, [d]) => ts.migrateProgress?.(d.domid) ?? null,
  },
  'xend.domain.screenshot': {
    params: async (p, dom) => [await dom(p[0]), p[1] === undefined ? '' : str(p[1], 'screenshot file')],
    run: async (ts, [d, png]) => {
      if (!ts.screenshot) throw generic('screenshots are not supported by this toolstack');
      if (png !== '' && !png.startsWith('/')) throw generic(`screenshot file must be an absolute path: ${png}`);
      return ts.screenshot(d.domid, png);
    },
  },
  'xend.domain.waitForShutdown': {
    params: async (p, dom) => [await dom(p[0]), p[1] === undefined ? 0 : int(p[1], 'timeout', 0)],
    run: async (ts, [d, seconds]) => ts.waitForShutdown(d.domid, seconds * 1000),
  },
  'xend.domain.setMemoryTarget': {
    params: async (p, dom) => [await dom(p[0]), int(p[1], 'memory target', 1)],
    run: async (ts, [d, mib]) => { await ts.memSet(d.domid, mib); return true; },
  },
  'xend.domain.setVCpuCount': {
    params: async (p, dom) => [await dom(p[0]), int(p[1], 'vcpu count', 1)],
    run: async (ts, [d, n]) => { await ts.vcpuSet(d.domid, n); return true; },
  },
  'xend.domain.console': {
    params: async (p, dom) => [await dom(p[0]), oneOf(p[1], 'console type', ['', 'pv', 'serial'] as const, ''),
      p[2] === undefined ? 0 : int(p[2], 'console number', 0)],
    run: async (ts, [d, type, num]) => {
      const c = await ts.console(d.domid, type || undefined, num);
      return { ptyPath: c.ptyPath, backlog: c.backlog };
    },
  },
  'xend.domain.networkAttach': {
    params: async (p, dom) => [await dom(p[0]), p[1] === undefined ? '' : str(p[1], 'network spec')],
    run: async (ts, [d, spec]) => network(ts).networkAttach(d.domid, spec),
  },
  'xend.domain.networkDetach': {
    params: async (p, dom) => [await dom(p[0]), devName(p[1], 'network device')],
    run: async (ts, [d, dev]) => { await network(ts).networkDetach(d.domid, dev); return true; },
  },
  'xend.domain.networkList': {
    params: async (p, dom) => [await dom(p[0])],
    run: async (ts, [d]) => (ts.networkList ? ts.networkList(d.domid) : []),
  },
  'xend.domain.blockAttach': {
    params: async (p, dom) => [await dom(p[0]), str(p[1], 'disk spec')],
    run: async (ts, [d, spec]) => { await block(ts).blockAttach(d.domid, spec); return true; },
  },
  'xend.domain.blockDetach': {
    params: async (p, dom) => [await dom(p[0]), devName(p[1], 'block device')],
    run: async (ts, [d, dev]) => { await block(ts).blockDetach(d.domid, dev); return true; },
  },
  'xend.domain.blockList': {
    params: async (p, dom) => [await dom(p[0])],
    run: async (ts, [d]) => (ts.blockList ? ts.blockList(d.domid) : []),
  },
  'xend.domain.pciAttach': {
    params: async (p, dom) => [await dom(p[0]), str(p[1], 'PCI_SPEC_STRING')],
    run: async (ts, [d, spec]) => { await pci(ts).pciAttach(d.domid, spec); return true; },
  },
  'xend.domain.pciDetach': {
    params: async (p, dom) => [await dom(p[0]), str(p[1], 'PCI_SPEC_STRING'), bool(p[2], 'force', false)],
    run: async (ts, [d, spec, force]) => { await pci(ts).pciDetach(d.domid, spec, force); return true; },
  },
  'xend.domain.pciList': {
    params: async (p, dom) => [await dom(p[0])],
    run: async (ts, [d]) => (ts.pciList ? ts.pciList(d.domid) : []),
  },
  'xend.node.info': { params: () => [], run: async (ts) => ts.info() },
  'xend.pool': {
    params: () => [],
    run: async (ts) => {
      if (!ts.poolView) throw generic('pools are not supported by this toolstack');
      return ts.poolView();
    },
  },
  'xend.node.pciAssignableAdd': { params: (p) => [str(p[0], 'BDF')], run: async (ts, [bdf]) => { await pciControl(ts).assignableAdd(bdf); return true; } },
  'xend.node.pciAssignableRemove': { params: (p) => [str(p[0], 'BDF')], run: async (ts, [bdf]) => { await pciControl(ts).assignableRemove(bdf); return true; } },
  'xend.node.pciAssignableList': { params: () => [], run: async (ts) => pciControl(ts).assignableList() },
  'xend.node.dmesg': { params: (p) => [bool(p[0], 'clear', false)], run: async (ts, [clear]) => ts.dmesg(clear) },
};

const METHODS: MethodTable<XendMethod> = { ...DOMAIN_METHODS, ...SCHED_METHODS };

const isXendMethod = (m: string): m is XendMethod => Object.prototype.hasOwnProperty.call(METHODS, m);

/** Find a domain by name or id, as xm does: a number is an id, anything else a name. */
async function resolveDomain(ts: Toolstack, dom: XmlRpcValue | undefined): Promise<DomainInfo> {
  if (typeof dom !== 'string' && typeof dom !== 'number') throw generic('a domain name or id is required');
  const list = await ts.list();
  const s = String(dom);
  const found = /^[0-9]+$/.test(s) ? list.find((d) => d.domid === Number(s)) : list.find((d) => d.name === s);
  if (!found) throw new XmlRpcFault(XMLRPC_ERROR_INVALID_DOMAIN, `Domain '${s}' does not exist.`);
  return found;
}

async function invoke<M extends XendMethod>(ts: Toolstack, entry: MethodEntry<M>, params: XmlRpcValue[]): Promise<XmlRpcEncodable> {
  const dom: ResolveDomain = (v) => resolveDomain(ts, v);
  return entry.run(ts, await entry.params(params, dom));
}

/** The method dispatcher: faults for unknown methods, bad parameters, bad domains and toolstack errors. */
export async function dispatch(ts: Toolstack, method: string, params: XmlRpcValue[]): Promise<XmlRpcEncodable> {
  if (!isXendMethod(method)) throw new XmlRpcFault(XMLRPC_ERROR_INTERNAL, `method "${method}" is not supported`);
  try {
    return await invoke(ts, METHODS[method], params);
  } catch (e) {
    if (e instanceof XmlRpcFault) throw e;
    if (e instanceof ToolstackError) throw new XmlRpcFault(e.code === 'ESRCH' ? XMLRPC_ERROR_INVALID_DOMAIN : XMLRPC_ERROR_GENERIC, e.message);
    throw new XmlRpcFault(XMLRPC_ERROR_INTERNAL, (e as Error)?.message ?? String(e));
  }
}

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
