// The xenstore nodes a new PV domain gets, as libxl writes them
// (libxl_create.c libxl__domain_make, libxl_dom.c libxl__build_post,
// libxl_console.c libxl__device_console_add), in one transaction.
//
// Permissions, in libxl's names (xenstore perms: first entry = owner and
// everyone else's access; then per-domain entries):
//
//   roperm  "n0","r<id>"   owned by Dom0, the guest may read
//   rwperm  "n<id>"        owned by the guest (Dom0 is privileged anyway)
//   noperm  "n0"           Dom0 only
//
//   /local/domain/<id>                     roperm
//     vm, name, domid                      (inherit roperm)
//     memory/static-max, target, videoram  (inherit)
//     cpu/<n>/availability                 (inherit)
//     store/port, store/ring-ref           (inherit)
//     control/                             roperm: the guest cannot add nodes
//       shutdown, feature-poweroff, feature-reboot, feature-suspend,
//       feature-s3, feature-s4, sysrq      rwperm: pre-created so the guest may write them
//       platform-feature-*                 (inherit: read-only to the guest)
//     device/, data/, drivers/, feature/, attr/, error/   rwperm
//     console/                             rwperm (the frontend's directory)
//       backend, backend-id, limit, type, output, tty, port, ring-ref
//                                          roperm (libxl's ro_front entries)
//   /local/domain/0/backend/console/<id>/0 Dom0's, readable by the guest
//   /vm/<uuid>                             roperm: uuid, name, start_time
//   /libxl/<id>                            noperm
import type { XsClient } from '../../../shared/xenstore/client.js';

/** libxl's LIBXL_XENCONSOLE_LIMIT. */
export const XENCONSOLE_LIMIT = 1048576;

export interface DomainNodes {
  domid: number;
  name: string;
  uuid: string;
  /** memory/target and static-max, KiB. */
  targetKb: number;
  maxKb: number;
  vcpus: number;
  maxVcpus: number;
  storePort: number;
  storeMfn: number;
  consolePort: number;
  consoleMfn: number;
  /** Console backend domain (xenconsoled's): 0. */
  consoleBackend: number;
}

export function domainPath(domid: number): string { return `/local/domain/${domid}`; }
export function vmPath(uuid: string): string { return `/vm/${uuid}`; }
export function libxlPath(domid: number): string { return `/libxl/${domid}`; }
export function consoleBackendPath(domid: number, backend = 0): string {
  return `${domainPath(backend)}/backend/console/${domid}/0`;
}

export const CONTROL_NODES_GUEST_WRITES = [
  'shutdown', 'feature-poweroff', 'feature-reboot', 'feature-suspend', 'feature-s3', 'feature-s4', 'sysrq',
];
export const GUEST_DIRS = ['device', 'data', 'drivers', 'feature', 'attr', 'error'];

/** Writes every node of a new domain in one transaction (retried on EAGAIN). */
export async function writeDomainNodes(xs: XsClient, n: DomainNodes): Promise<void> {
  const dom = domainPath(n.domid);
  const vm = vmPath(n.uuid);
  const roperm = ['n0', `r${n.domid}`];
  const rwperm = [`n${n.domid}`];
  const noperm = ['n0'];
  await xs.transaction(async (tx) => {
    const mknod = async (path: string, perms: string[], value = '') => {
      await xs.write(path, value, tx);
      await xs.setPerms(path, perms, tx);
    };
    await xs.rm(dom, tx).catch(() => undefined);
    await mknod(dom, roperm);
    await xs.rm(vm, tx).catch(() => undefined);
    await mknod(vm, roperm);
    await mknod(libxlPath(n.domid), noperm);

    const w = (rel: string, value: string) => xs.write(`${dom}/${rel}`, value, tx);
    await w('vm', vm);
    await w('name', n.name);
    await w('domid', String(n.domid));
    await w('control/platform-feature-multiprocessor-suspend', '1');
    await w('control/platform-feature-xs_reset_watches', '1');
    await xs.setPerms(`${dom}/control`, roperm, tx);
    for (const c of CONTROL_NODES_GUEST_WRITES) await mknod(`${dom}/control/${c}`, rwperm);
    for (const d of GUEST_DIRS) await mknod(`${dom}/${d}`, rwperm);

    // libxl__build_post
    await w('memory/static-max', String(n.maxKb));
    await w('memory/target', String(n.targetKb));
    // libxl 4.17 defaults a PV guest's video_memkb to 0 (libxl__domain_build_info_setdefault);
    // libxl_set_memory_target takes it off each new target.
    await w('memory/videoram', '0');
    await w('store/port', String(n.storePort));
    await w('store/ring-ref', String(n.storeMfn));
    for (let i = 0; i < n.maxVcpus; i++) await w(`cpu/${i}/availability`, i < n.vcpus ? 'online' : 'offline');

    // The primary console (libxl__device_console_add): frontend owned by the
    // guest, the entries it must not change owned by Dom0.
    const be = consoleBackendPath(n.domid, n.consoleBackend);
    await mknod(`${dom}/console`, [`n${n.domid}`, `r${n.consoleBackend}`]);
    const ro = (rel: string, value: string) => mknod(`${dom}/console/${rel}`, roperm, value);
    await ro('backend', be);
    await ro('backend-id', String(n.consoleBackend));
    await ro('limit', String(XENCONSOLE_LIMIT));
    await ro('type', 'xenconsoled');
    await ro('output', 'pty');
    await ro('tty', '');
    await ro('port', String(n.consolePort));
    await ro('ring-ref', String(n.consoleMfn));
    const bperm = [`n${n.consoleBackend}`, `r${n.domid}`];
    await mknod(be, bperm);
    const bw = (rel: string, value: string) => xs.write(`${be}/${rel}`, value, tx);
    await bw('frontend', `${dom}/console`);
    await bw('frontend-id', String(n.domid));
    await bw('online', '1');
    await bw('state', '1'); // XenbusStateInitialising
    await bw('protocol', 'x86_64-abi');

    await xs.write(`${vm}/uuid`, n.uuid, tx);
    await xs.write(`${vm}/name`, n.name, tx);
    await xs.write(`${vm}/start_time`, (Date.now() / 1000).toFixed(2), tx);
  });
}

/** Removes what writeDomainNodes wrote (libxl__destroy_domid's xs_rm calls). */
export async function removeDomainNodes(xs: XsClient, domid: number, backend = 0): Promise<void> {
  const dom = domainPath(domid);
  const vm = await xs.tryRead(`${dom}/vm`).catch(() => null);
  const paths = [dom, libxlPath(domid), `${domainPath(backend)}/backend/console/${domid}`];
  if (vm && vm.startsWith('/vm/')) paths.push(vm);
  for (const p of paths) await xs.rm(p).catch(() => undefined);
}

/**
 * libxl_domain_rename: the domain's name in /local/domain/<id>/name and
 * /vm/<uuid>/name (an incoming migration's `NAME--incoming` becomes NAME).
 * Two writes at once rather than a transaction: the domain is paused and
 * only its toolstack writes these, and a transaction that other writers
 * make retry costs the migration's downtime.
 */
export async function renameDomainNodes(xs: XsClient, domid: number, uuid: string, name: string): Promise<void> {
  await Promise.all([xs.write(`${domainPath(domid)}/name`, name), xs.write(`${vmPath(uuid)}/name`, name)]);
}
