// What the network tests share: guests with vifs on a real host, driven on
// their consoles (the PTY xenconsoled records), and a command runner that
// waits for the prompt after the output (no sleeping).
import { list, PtyClient, xenstore, xlOk, writeCfg } from '../host/xl.js';
import type { TestHost } from '../helpers/host.js';

interface Tap { teardown(fn: () => unknown): void }

export interface Guest { name: string; id: number; pty: PtyClient; run(cmd: string, timeoutMs?: number): Promise<string> }

/** Creates a guest from `cfg` lines and waits for its prompt. */
export async function netGuest(t: Tap, h: TestHost, name: string, extra = '', memory = 32): Promise<Guest> {
  const cfg = writeCfg(h, `${name}.cfg`, `name = "${name}"\nmemory = ${memory}\n${extra}\n`);
  await xlOk(h, 'create', cfg);
  const id = (await list(h)).find((r) => r.name === name)!.id;
  return attachGuest(t, h, name, id);
}

/** The console of running PV guest `name` (domain `id`), once its prompt is there. */
export async function attachGuest(t: Tap, h: TestHost, name: string, id: number): Promise<Guest> {
  const xs = await xenstore(t, h);
  const pty = new PtyClient(await xs.readString(`/local/domain/${id}/console/tty`));
  t.teardown(() => pty.close());
  const prompt = new RegExp(`root@${name}:~# $`);
  await pty.until(prompt, 0, 30_000);
  return {
    name, id, pty,
    async run(cmd: string, timeoutMs = 30_000): Promise<string> {
      const from = pty.text.length;
      pty.write(`${cmd}\r`);
      await pty.until(prompt, from + cmd.length, timeoutMs);
      const out = pty.text.slice(from).replace(/\r/g, '');
      // Drop the echoed command line and the prompt.
      return out.slice(out.indexOf('\n') + 1).replace(prompt, '');
    },
  };
}
