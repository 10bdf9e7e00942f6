// `xl dmesg` and `xl dmesg -c` against a real host: xend's
// XEN_SYSCTL_readconsole reads the hypervisor's console ring, and -c
// empties it, so a second dmesg shows nothing that was there before.
import t from 'tap';
import { runXm } from '../../launcher/xm.js';
import { startHost } from '../helpers/host.js';

async function xl(env: NodeJS.ProcessEnv, argv: string[]) {
  let out = '';
  let err = '';
  const code = await runXm(argv, {
    stdout: { write: (c: string | Uint8Array) => { out += typeof c === 'string' ? c : Buffer.from(c).toString(); } },
    stderr: { write: (c: string | Uint8Array) => { err += typeof c === 'string' ? c : Buffer.from(c).toString(); } },
    env,
  });
  return { code, out, err };
}

t.test('dmesg -c prints the hypervisor\'s ring and clears it', async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 1 });
  const env = { XENEMU_RUN_DIR: h.root, XENEMU_HOST: h.name };
  const first = await xl(env, ['dmesg']);
  t.same({ code: first.code, err: first.err }, { code: 0, err: '' });
  t.match(first.out, /^\(XEN\) xenemu hypervisor: host /m, 'the boot banner is in the ring');
  const again = await xl(env, ['dmesg']);
  t.ok(again.out.startsWith(first.out), 'a plain dmesg leaves the ring as it was');

  const cleared = await xl(env, ['dmesg', '-c']);
  t.same({ code: cleared.code, err: cleared.err }, { code: 0, err: '' });
  t.ok(cleared.out.startsWith(first.out), '-c prints everything the ring held');

  const after = await xl(env, ['dmesg']);
  t.same({ code: after.code, err: after.err }, { code: 0, err: '' });
  const old = first.out.split('\n').filter((l) => l.length > 0);
  t.ok(old.length > 0);
  t.same(old.filter((l) => after.out.includes(l)), [], 'no line from before the clear is shown again');
});
