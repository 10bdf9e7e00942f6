// The xenstore nodes of a new HVM guest, as libxl writes them
// (libxl_create.c libxl__domain_make and libxl__domain_build's HVM case,
// libxl_dom.c libxl__build_post, libxl_dm.c libxl__spawn_local_dm), in one
// transaction. Permissions in libxl's names, as for PV (../xenstore_layout.ts):
//
//   /local/domain/<id>                       roperm  "n0","r<id>"
//     vm, name, domid
//     memory/static-max                      max_memkb (maxmem, KiB)
//     memory/target                          target_memkb - video_memkb
//     memory/videoram                        video_memkb
//     cpu/0/availability                     online
//     store/port, store/ring-ref             the xenstore special page
//     control/                               roperm, with shutdown, feature-poweroff,
//       feature-reboot, feature-suspend, feature-s3, feature-s4, sysrq   rwperm
//       platform-feature-multiprocessor-suspend, platform-feature-xs_reset_watches
//     device/, data/, drivers/, feature/, attr/, error/                  rwperm
//     hvmloader/                             roperm: bios, allow-memory-relocate
//     platform/acpi, acpi_s3, acpi_s4, acpi_laptop_slate, device-model
//     image/device-model-pid                 written once the device model runs
//     serial/<n>/tty                         written by the device model
//   /vm/<uuid>                               roperm: uuid, name, start_time,
//                                            image/ostype = hvm, rtc/timeoffset
//   /libxl/<id>                              noperm: device/, type = hvm, dm-version
//   /local/domain/0/device-model/<id>        Domain-0's (the device model's domain):
//                                            the device model writes state = running
//
// No console/ nodes: the PV console of an HVM guest is not served yet (its
// log would be the serial port's, <rundir>/logs/console/<name>.log).
import type { XsClient } from '../../../../shared/xenstore/client.js';
import { CONTROL_NODES_GUEST_WRITES, GUEST_DIRS, domainPath, libxlPath, vmPath } from '../xenstore_layout.js';

export interface HvmDomainNodes {
  domid: number;
  name: string;
  uuid: string;
  maxKb: number;
  targetKb: number;
  videoKb: number;
  storePort: number;
  storePfn: number;
  acpi: boolean;
  acpiS3: boolean;
  acpiS4: boolean;
}

/** libxl's DEVICE_MODEL_XS_PATH(gc, 0, domid, ""): the device model's directory, Domain-0's. */
export function deviceModelPath(domid: number): string {
  return `${domainPath(0)}/device-model/${domid}`;
}

/** libxl_device_model_version_to_string(LIBXL_DEVICE_MODEL_VERSION_QEMU_XEN). */
export const DM_VERSION = 'qemu_xen';

export async function writeHvmDomainNodes(xs: XsClient, n: HvmDomainNodes): Promise<void> {
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
    await xs.rm(libxlPath(n.domid), tx).catch(() => undefined);
    await mknod(libxlPath(n.domid), noperm);
    await mknod(`${libxlPath(n.domid)}/device`, noperm);

    // libxl__domain_make
    const w = (rel: string, value: string) => xs.write(`${dom}/${rel}`, value, tx);
    await w('vm', vm);
    await w('name', n.name);
    await mknod(`${dom}/cpu`, roperm);
    await mknod(`${dom}/memory`, roperm);
    await mknod(`${dom}/control`, roperm);
    await mknod(`${dom}/hvmloader`, roperm);
    for (const c of CONTROL_NODES_GUEST_WRITES) await mknod(`${dom}/control/${c}`, rwperm);
    for (const d of GUEST_DIRS) await mknod(`${dom}/${d}`, rwperm);
    await w('control/platform-feature-multiprocessor-suspend', '1');
    await w('control/platform-feature-xs_reset_watches', '1');
    await xs.write(`${vm}/uuid`, n.uuid, tx);
    await xs.write(`${vm}/name`, n.name, tx);
    await xs.write(`${libxlPath(n.domid)}/type`, 'hvm', tx);
    await xs.write(`${libxlPath(n.domid)}/dm-version`, DM_VERSION, tx);

    // libxl__build_post: ents, then the HVM local and vm entries of libxl__domain_build
    await w('memory/static-max', String(n.maxKb));
    await w('memory/target', String(n.targetKb - n.videoKb));
    await w('memory/videoram', String(n.videoKb));
    await w('domid', String(n.domid));
    await w('store/port', String(n.storePort));
    await w('store/ring-ref', String(n.storePfn));
    await w('cpu/0/availability', 'online');
    await w('platform/acpi', n.acpi ? '1' : '0');
    await w('platform/acpi_s3', n.acpiS3 ? '1' : '0');
    await w('platform/acpi_s4', n.acpiS4 ? '1' : '0');
    await w('platform/acpi_laptop_slate', '0');
    await w('platform/device-model', DM_VERSION);
    await xs.write(`${vm}/rtc/timeoffset`, '', tx);
    await xs.write(`${vm}/image/ostype`, 'hvm', tx);
    await xs.write(`${vm}/start_time`, (Date.now() / 1000).toFixed(2), tx);

    // libxl__spawn_local_dm, before the device model starts
    await w('hvmloader/bios', 'seabios');
    await w('hvmloader/allow-memory-relocate', '0');
    await xs.rm(deviceModelPath(n.domid), tx).catch(() => undefined);
    await xs.mkdir(deviceModelPath(n.domid), tx);
  });
}
