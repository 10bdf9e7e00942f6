// Stub domains (docs/stubdom.md): an HVM guest whose qemu-dm runs in a PV
// domain `<guest>-dm` of its own, through the real processes.
import t from 'tap';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { bootGuests, bootGuestsMissing, qemuDmPids, row } from '../hvm/boot_guests.js';
import { waitFor } from '../helpers/host.js';
import { list, xlOk } from '../host/xl.js';

const missing = bootGuestsMissing();

t.test('an HVM guest with its device model in a stub domain', { skip: missing }, async (t) => {
  const g = await bootGuests(t);
  const { h, xs } = g;
  const id = await g.create('sg', '', ['device_model_stubdomain_override = 1', 'stubdomain_memory = 32']);
  const stub = (await row(h, 'sg-dm'))?.id;
  t.ok(stub, 'xl list shows sg-dm');
  const log = join(h.rundir, 'logs', 'console', 'sg-dm.log');
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
  await waitFor(() => read(log).includes('PM timer'), 60_000, `sg to boot\n${read(g.dmLog('sg')).slice(-3000)}`);
  t.equal(await xs.readString(`/local/domain/${stub}/target`), String(id), 'target');
  t.equal(await xs.readString(`/local/domain/${id}/image/device-model-domid`), String(stub), 'device-model-domid');
  t.equal(await xs.readString(`/local/domain/${stub}/device-model/${id}/state`), 'running', 'state running');
  t.same(qemuDmPids(h), [], 'no qemu-dm process in Domain-0');
  await xlOk(h, 'destroy', 'sg');
  await waitFor(async () => !(await list(h)).some((r) => r.name === 'sg-dm'), 10_000, 'stub gone with its guest');
});
