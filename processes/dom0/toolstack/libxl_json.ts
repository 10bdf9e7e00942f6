// libxl's record of a domain's configuration, the "libxl-json" userdata
// (libxl_dom.c libxl__set_domain_configuration): one file per domain,
//
//   /var/lib/xen/userdata-d.<domid>.<uuid>.libxl-json     (libxl_userdata_store)
//
// which xenemu keeps at <rundir>/dom0/var/lib/xen/ (the path Xen's C tools
// see there through xenemu's privcmd library, docs/xenctrl.md). It holds
// libxl_domain_config_to_json() of the domain's config, ended by a NUL as
// libxl stores it. Xen's `xl list -l`, `xl mem-set` and `xl mem-max` read it
// (libxl_retrieve_domain_configuration) and fill in the live values from the
// hypervisor and xenstore: name, uuid, vCPUs online, memory target and
// maximum, scheduler parameters.
//
// Field names and enum values are libxl_types.idl's; what the config does
// not set is left out, as libxl's generator leaves out defaults.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ActionOnShutdown, DomainConfig } from '../../../shared/toolstack/xlcfg.js';
import { dom0SystemPath } from '../../../shared/host.js';

/** libxl_action_on_shutdown's names. */
const ACTIONS: Record<ActionOnShutdown, string> = {
  destroy: 'destroy', restart: 'restart', preserve: 'preserve', 'rename-restart': 'restart_rename',
  'coredump-destroy': 'coredump_destroy', 'coredump-restart': 'coredump_restart',
};

type Json = Record<string, unknown>;

/** libxl_domain_config (as libxl_domain_config_to_json prints it) of a domain xend built from `c`. */
export function libxlDomainConfig(c: DomainConfig, uuid: string): Json {
  const sched: Json = {};
  if (c.cpu_weight !== undefined) sched.weight = c.cpu_weight;
  if (c.cap !== undefined) sched.cap = c.cap;
  const b: Json = {
    max_vcpus: c.maxvcpus,
    avail_vcpus: Array.from({ length: c.vcpus }, (_, i) => i),
    max_memkb: c.maxmem * 1024,
    target_memkb: c.memory * 1024,
    // libxl adds video_memkb to memory/target when it reads the config back
    // (libxl__get_targetmem_fudge): a PV guest has none, and left unset it counts as -1.
    video_memkb: c.type === 'hvm' ? c.videoram * 1024 : 0,
    sched_params: sched,
  };
  if (c.type === 'hvm') {
    const hvm: Json = { bios: c.bios, vga: { kind: 'std' } };
    if (c.boot) hvm.boot = c.boot;
    if (c.serial?.length) hvm.serial_list = c.serial;
    b['type.hvm'] = hvm;
  } else {
    if (c.kernel) b.kernel = c.kernel;
    if (c.ramdisk) b.ramdisk = c.ramdisk;
    if (c.cmdline) b.cmdline = c.cmdline;
    b[`type.${c.type}`] = {};
  }
  b.arch_arm = {};
  b.arch_x86 = {};
  const out: Json = {
    c_info: { type: c.type, name: c.name, uuid, run_hotplug_scripts: 'True' },
    b_info: b,
  };
  if (c.disk.length) {
    out.disks = c.disk.map((d) => ({
      pdev_path: d.target, vdev: d.vdev, format: d.format, readwrite: d.access === 'rw' ? 1 : 0,
      ...(d.devtype === 'cdrom' ? { is_cdrom: 1 } : {}),
    }));
  }
  if (c.vif.length) {
    out.nics = c.vif.map((v, i) => ({
      devid: v.devid ?? i,
      ...(v.mac ? { mac: v.mac } : {}),
      ...(v.bridge ? { bridge: v.bridge } : {}),
      ...(v.ip ? { ip: v.ip } : {}),
      ...(v.model ? { model: v.model } : {}),
      ...(v.type ? { nictype: v.type === 'ioemu' ? 'vif_ioemu' : 'vif' } : {}),
    }));
  }
  if (c.pci.length) {
    // libxl_device_pci: defaults (false, 0) left out; vfunc_mask as libxlu sets it.
    out.pcidevs = c.pci.map((p) => ({
      ...(p.func !== '*' && p.func ? { func: p.func } : {}), ...(p.dev ? { dev: p.dev } : {}), ...(p.bus ? { bus: p.bus } : {}),
      ...(p.domain ? { domain: p.domain } : {}),
      ...(p.vslot ? { vdevfn: p.vslot << 3 } : {}), vfunc_mask: p.func === '*' ? 0xffffffff : 1,
      ...(p.msitranslate ? { msitranslate: true } : {}), ...(p.power_mgmt ? { power_mgmt: true } : {}),
      ...(p.permissive ? { permissive: true } : {}), ...(p.seize ? { seize: true } : {}),
      rdm_policy: p.rdm_policy ?? 'strict', ...(p.name !== undefined ? { name: p.name } : {}),
    }));
  }
  out.on_poweroff = ACTIONS[c.on_poweroff];
  out.on_reboot = ACTIONS[c.on_reboot];
  out.on_crash = ACTIONS[c.on_crash];
  return out;
}

/**
 * The stub xen-init-dom0 stores for Domain-0 (tools/helpers/init-dom-json.c),
 * with video_memkb 0 (left unset it counts as -1, which libxl adds to
 * Domain-0's memory target when it reads the config back).
 */
export function libxlDom0Config(): Json {
  return { c_info: { type: 'pv' }, b_info: { video_memkb: 0, sched_params: {}, 'type.pv': {}, arch_arm: {}, arch_x86: {} } };
}

function userdataDir(rundir: string): string {
  return dom0SystemPath(rundir, '/var/lib/xen');
}

/** libxl_userdata_store(domid, "libxl-json"): written whole (a temporary file renamed over it). */
export function storeLibxlJson(rundir: string, domid: number, uuid: string, config: Json): void {
  const dir = userdataDir(rundir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `userdata-d.${domid}.${uuid}.libxl-json`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(config, null, 4)}\n\0`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** libxl__userdata_destroyall: every userdata file of the domain (and libxl's lock file). */
export function removeUserdata(rundir: string, domid: number): void {
  const dir = userdataDir(rundir);
  let names: string[];
  try { names = readdirSync(dir); } catch { return; }
  const prefix = `userdata-d.${domid}.`;
  for (const n of names) if (n.startsWith(prefix)) rmSync(join(dir, n), { force: true });
}
