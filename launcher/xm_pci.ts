// `xl pci-assignable-add / -remove / -list` (tools/xl/xl_pci.c): a host
// PCI device (xenemu up --pci) between Domain-0 and quarantine, where a
// guest can be given it; xend does it (processes/dom0/xend/pci_control.ts).
//
//   xl pci-assignable-list      one BDF per line, as xl's "%04x:%02x:%02x.%01x %s\n"
import { formatSbdf, parseBdf } from '../shared/wire/pcidev.js';
import { UsageError, type Opts, type XmContext } from './xm_context.js';

/** xlu_pci_parse_bdf: `[SSSS:]BB:DD.F`; `malformed BDF` (exit 2) otherwise. */
function bdfOf(cmd: string, s: string): string {
  const n = parseBdf(s);
  if (n === null) throw new UsageError(`${cmd}: malformed BDF "${s}"`);
  return formatSbdf(n);
}

export async function pciAssignableAdd(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.node.pciAssignableAdd', bdfOf('pci-assignable-add', o.rest[0]!));
  return 0;
}

export async function pciAssignableRemove(x: XmContext, o: Opts): Promise<number> {
  await x.call('xend.node.pciAssignableRemove', bdfOf('pci-assignable-remove', o.rest[0]!));
  return 0;
}

export async function pciAssignableList(x: XmContext): Promise<number> {
  for (const bdf of await x.call('xend.node.pciAssignableList')) x.out(`${bdf} \n`);
  return 0;
}
