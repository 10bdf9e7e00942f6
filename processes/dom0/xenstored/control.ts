// XS_CONTROL commands (docs/misc/xenstore.txt CONTROL; xenstored_control.c),
// those that make sense here. Domain-0 only (checked by the dispatcher).
import type { XsdError } from '../../../shared/abi/io/xs_wire.js';
import type { Xenstored } from './index.js';
import { childPath, baseName, parentOf } from './path.js';

const HELP = [
  'check          check the tree for consistency',
  'help           this list',
  'memreport      memory used by the daemon',
  'print <text>   write text to the daemon log',
  'quota          per-domain quota values',
  'quota <domid>  quota use of one domain (nodes; for an introduced domain watches, transactions, outstanding)',
  'stats          nodes, watches, transactions, connections (held: not read from, replies unread), direct socket I/O',
];

export function runControl(xs: Xenstored, args: string[]): Buffer | XsdError {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case 'check': return text(checkTree(xs));
    case 'help': return text(HELP.join('\n'));
    case 'print': xs.log(`control: ${rest.join(' ')}`); return text('OK');
    case 'memreport': {
      const m = process.memoryUsage();
      return text(`rss ${m.rss} heapUsed ${m.heapUsed} external ${m.external} nodes ${xs.tree.size}`);
    }
    case 'stats': return text(Object.entries(xs.stats()).map(([k, v]) => `${k} ${v}`).join('\n'));
    case 'quota': {
      const q = xs.domains.quotas;
      if (rest.length === 0) return text(Object.entries(q).map(([k, v]) => `${k} ${v}`).join('\n'));
      const domid = Number(rest[0]);
      if (!/^\d+$/.test(rest[0]!)) return 'EINVAL';
      const lines = [`nodes ${xs.domains.nodesOwned(domid)}/${q.nodes}`];
      const use = xs.connectionUse(domid);
      if (use) {
        lines.push(`watches ${use.watches}/${q.watches}`, `transactions ${use.transactions}/${q.transactions}`,
          `outstanding ${use.outstanding}/${q.outstanding}`);
      }
      return text(lines.join('\n'));
    }
    default: return 'EINVAL';
  }
}

function text(s: string): Buffer {
  return Buffer.from(s + '\0');
}

/** Every child listed exists, every node is listed by its parent. */
function checkTree(xs: Xenstored): string {
  const errors: string[] = [];
  for (const [p, n] of xs.tree.nodes) {
    if (n.children) for (const c of n.children) if (!xs.tree.get(childPath(p, c))) errors.push(`${p}: missing child ${c}`);
    if (p !== '/') {
      const parent = xs.tree.get(parentOf(p));
      if (!parent || !parent.children?.has(baseName(p))) errors.push(`${p}: not listed by its parent`);
    }
  }
  return errors.length ? errors.slice(0, 20).join('\n') : 'OK';
}
