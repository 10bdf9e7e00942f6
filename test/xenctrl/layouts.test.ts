// Every byte layout xenemu decodes for Xen's C tools, and every constant of
// the ABI modules they use, compared with libxen-dev's headers: a C program
// built at test time prints offsetof/sizeof of each struct member and the
// value of each macro, and each must equal shared/abi's. A member or struct
// that the headers do not have fails the build, so a layout cannot drift
// from Xen's without this test failing.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ccBuild, ccMissing } from '../helpers/cc.js';
import * as xen from '../../shared/abi/xen.js';
import * as domctl from '../../shared/abi/domctl.js';
import * as sysctl from '../../shared/abi/sysctl.js';
import * as version from '../../shared/abi/version.js';
import * as features from '../../shared/abi/features.js';
import * as evtchn from '../../shared/abi/event_channel.js';
import * as memory from '../../shared/abi/memory.js';
import * as gnttab from '../../shared/abi/grant_table.js';
import * as sched from '../../shared/abi/sched.js';
import * as vcpu from '../../shared/abi/vcpu.js';
import * as privcmd from '../../shared/abi/sys/privcmd.js';
import * as sysEvtchn from '../../shared/abi/sys/evtchn.js';
import * as gntdev from '../../shared/abi/sys/gntdev.js';
import * as physdev from '../../shared/abi/physdev.js';
import * as pciif from '../../shared/abi/io/pciif.js';

const HEADERS = ['xen/xen.h', 'xen/domctl.h', 'xen/sysctl.h', 'xen/version.h', 'xen/features.h', 'xen/event_channel.h',
  'xen/memory.h', 'xen/grant_table.h', 'xen/sched.h', 'xen/vcpu.h', 'xen/sys/privcmd.h', 'xen/sys/evtchn.h', 'xen/sys/gntdev.h', 'xen/physdev.h',
  'xen/io/pciif.h'];
const missing = ccMissing(HEADERS) ?? false;

const MODULES: Record<string, Record<string, unknown>> = {
  xen, domctl, sysctl, version, features, evtchn, memory, gnttab, sched, vcpu, privcmd, sysEvtchn, gntdev, physdev, pciif,
};

/** TS keys that flatten a C union's member path. */
const DESIGNATORS: Record<string, string> = {
  'start_info.console_domU_mfn': 'console.domU.mfn', 'start_info.console_domU_evtchn': 'console.domU.evtchn',
  'start_info.console_dom0_info_off': 'console.dom0.info_off', 'start_info.console_dom0_info_size': 'console.dom0.info_size',
};
/** Constants that are xenemu's or a header's derived value under another name. */
const isXenName = (n: string) => /^(__HYPERVISOR_|XEN|EVTCHNOP_|GNTTABOP_|GNTST_|GTF_|_GTF_|SCHEDOP_|SHUTDOWN_|VCPUOP_|RUNSTATE_|VIRQ_|DOMID_|IOCTL_|SIF_|CONSOLEIO_|MEMOP_|EVTCHNSTAT_|ECS_|_XEN_|PHYSDEVOP_|MAP_PIRQ_TYPE_|SH_INFO_MAX_VEC$)/.test(n)
  && !n.startsWith('XENEMU_');

interface Layout { module: string; struct: string; fields: [string, number][]; size: number }

function layouts(): Layout[] {
  const out: Layout[] = [];
  for (const [module, ns] of Object.entries(MODULES)) {
    for (const [name, v] of Object.entries(ns)) {
      // xenemu_* layouts are xenemu's own (the vCPU area): no C struct to compare with.
      if (typeof v !== 'object' || v === null || typeof (v as { SIZE?: unknown }).SIZE !== 'number' || name.startsWith('xenemu_')) continue;
      const fields = Object.entries(v as Record<string, number>).filter(([k, off]) => k !== 'SIZE' && typeof off === 'number');
      out.push({ module, struct: name, fields, size: (v as { SIZE: number }).SIZE });
    }
  }
  return out;
}

function constants(): { module: string; name: string; value: number }[] {
  const out: { module: string; name: string; value: number }[] = [];
  const seen = new Set<string>();
  for (const [module, ns] of Object.entries(MODULES)) {
    for (const [name, v] of Object.entries(ns)) {
      if (typeof v !== 'number' || !isXenName(name) || seen.has(name)) continue;
      seen.add(name);
      out.push({ module, name, value: v });
    }
  }
  return out;
}

t.test('shared/abi agrees with libxen-dev: every layout member and size, every constant', { skip: missing }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xenemu-layouts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ls = layouts();
  const cs = constants();
  const lines = [
    '#define __XEN_TOOLS__ 1',
    '#include <stdio.h>', '#include <stddef.h>', '#include <stdint.h>', '#include <sys/ioctl.h>',
    ...HEADERS.map((h) => `#include <${h}>`),
    'int main(void) {',
  ];
  for (const l of ls) {
    for (const [f] of l.fields) {
      lines.push(`  printf("L ${l.struct}.${f} %zu\\n", offsetof(struct ${l.struct}, ${DESIGNATORS[`${l.struct}.${f}`] ?? f}));`);
    }
    lines.push(`  printf("L ${l.struct}.SIZE %zu\\n", sizeof(struct ${l.struct}));`);
  }
  for (const c of cs) {
    lines.push(`#ifdef ${c.name}`, `  printf("C ${c.name} %lld\\n", (long long)(${c.name}));`, '#else', `  printf("U ${c.name}\\n");`, '#endif');
  }
  lines.push('  return 0;', '}');
  const src = join(dir, 'layouts.c');
  writeFileSync(src, lines.join('\n'));
  const exe = join(dir, 'layouts');
  if (!ccBuild(t, src, exe, ['-Wall'])) return;
  const run = spawnSync(exe, { encoding: 'utf8' });
  t.equal(run.status, 0, 'the dump runs');
  const c = new Map<string, number>();
  const undefinedInC: string[] = [];
  for (const line of run.stdout.trim().split('\n')) {
    const [kind, name, value] = line.split(' ');
    if (kind === 'U') undefinedInC.push(name!);
    else c.set(`${kind}:${name}`, Number(value));
  }
  let checked = 0;
  for (const l of ls) {
    for (const [f, off] of [...l.fields, ['SIZE', l.size] as [string, number]]) {
      const got = c.get(`L:${l.struct}.${f}`);
      if (got !== off) t.equal(off, got, `${l.module}: struct ${l.struct} ${f === 'SIZE' ? 'size' : `.${f} offset`}`);
      checked++;
    }
  }
  t.ok(checked > 150, `${checked} offsets and sizes of ${ls.length} structs checked`);
  for (const want of ['xen_domctl', 'xen_domctl_getdomaininfo', 'xen_sysctl', 'xen_sysctl_physinfo', 'multicall_entry', 'privcmd_hypercall',
    'xen_domctl_vcpuaffinity', 'xen_domctl_getvcpuinfo', 'xen_sysctl_cpupool_op', 'evtchn_status', 'ioctl_evtchn_bind_interdomain',
    // PCI passthrough (docs/passthrough.md)
    'xen_domctl_assign_device', 'xen_domctl_irq_permission', 'xen_domctl_iomem_permission', 'xen_domctl_ioport_permission',
    'xen_domctl_memory_mapping', 'xen_domctl_ioport_mapping', 'xen_domctl_bind_pt_irq', 'physdev_map_pirq', 'physdev_eoi',
    'physdev_unmap_pirq', 'xen_pci_op', 'xen_msix_entry', 'xen_pcie_aer_op', 'xen_pci_sharedinfo']) {
    t.ok(ls.some((l) => l.struct === want), `struct ${want} is among them`);
  }
  t.equal(c.get('L:xen_domctl.SIZE'), 144, 'struct xen_domctl is 144 bytes');
  t.equal(c.get('L:xen_sysctl.SIZE'), 136, 'struct xen_sysctl is 136 bytes');
  t.equal(c.get('L:xen_domctl_getdomaininfo.SIZE'), 112, 'struct xen_domctl_getdomaininfo is 112 bytes');
  let consts = 0;
  for (const k of cs) {
    const got = c.get(`C:${k.name}`);
    if (got === undefined) continue;
    if (got !== k.value) t.equal(k.value, got, `${k.module}: ${k.name}`);
    consts++;
  }
  t.ok(consts > 150, `${consts} constants equal the headers' macros`);
  for (const want of ['IOCTL_PRIVCMD_HYPERCALL', 'IOCTL_EVTCHN_BIND_VIRQ', 'IOCTL_GNTDEV_SET_MAX_GRANTS', 'XEN_DOMCTL_INTERFACE_VERSION',
    'XEN_SYSCTL_INTERFACE_VERSION', 'XENVER_commandline', '__HYPERVISOR_multicall', 'XENMEM_get_sharing_freed_pages',
    'XEN_DOMCTL_assign_device', 'XEN_DOMCTL_test_assign_device', 'XEN_DOMCTL_deassign_device', 'XEN_DOMCTL_DEV_PCI',
    'XEN_DOMCTL_bind_pt_irq', 'XEN_DOMCTL_memory_mapping', 'PHYSDEVOP_map_pirq', 'MAP_PIRQ_TYPE_GSI',
    'XEN_PCI_OP_enable_multi_msi', 'XEN_PCI_ERR_op_failed', '_XEN_PCIB_active', 'XEN_PCIF_active', 'SH_INFO_MAX_VEC']) {
    t.ok(c.has(`C:${want}`), `${want} is checked`);
  }
  if (undefinedInC.length) t.comment(`named like Xen's but not macros of the headers (enums or xenemu's): ${undefinedInC.join(' ')}`);
});
