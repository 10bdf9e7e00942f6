// An HVM domain boots Debian's SeaBIOS: the firmware and hvm_info_table
// placed in guest RAM as the HVM builder places them, the vCPU (v86 in the
// domain process, inside the scheduler's slices) fetching its first
// instruction from that RAM, and SeaBIOS's log on port 0x402 reaching a
// device model through a real ioreq server's buffered ring: with a
// device model of one device (test/fixtures/debugcon_dm.ts).
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { DIST, startHost, waitFor } from '../helpers/host.js';
import { hvmDomain, seabiosMissing } from '../helpers/hvm.js';
import { __HYPERVISOR_dm_op, __HYPERVISOR_domctl } from '../../shared/abi/xen.js';
import { XEN_DOMCTL_getdomaininfo, XENEMU_DOMCTL_getsegments } from '../../shared/abi/domctl.js';
import * as DM from '../../shared/abi/hvm/dm_op.js';
import { HVM_IOREQSRV_BUFIOREQ_ATOMIC } from '../../shared/abi/hvm/params.js';

const DM_WORKER = join(DIST, 'test', 'fixtures', 'debugcon_dm.js');

t.test('SeaBIOS boots in an HVM domain and logs through an ioreq server', { skip: seabiosMissing() ?? false }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const d = await hvmDomain(t, h, 32);
  const { domid, pc } = d;
  const seg = (await pc.hypercall<{ hvm: string }>(__HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: domid })).data!;
  t.ok(seg.hvm, 'an HVM domain, with its HVM segment');

  const dm = (op: number, arg: object) => pc.hypercall(__HYPERVISOR_dm_op, 0, { domid, op, ...arg });
  const srv = await dm(DM.XEN_DMOP_create_ioreq_server, { handle_bufioreq: HVM_IOREQSRV_BUFIOREQ_ATOMIC }) as { ret: number; data: { id: number } };
  t.equal(srv.ret, 0);
  t.equal((await dm(DM.XEN_DMOP_map_io_range_to_ioreq_server, { id: srv.data.id, type: DM.XEN_DMOP_IO_RANGE_PORT, start: 0x402, end: 0x402 })).ret, 0);
  t.equal((await dm(DM.XEN_DMOP_set_ioreq_server_state, { id: srv.data.id, enabled: 1 })).ret, 0);

  const stop = new SharedArrayBuffer(4);
  const lines: string[] = [];
  const w = new Worker(DM_WORKER, { workerData: { hvm: seg.hvm, id: srv.data.id, stop } });
  const done = new Promise<{ stats: { sync: number; buffered: number; bad: number }; other: number }>((res) => {
    w.on('message', (m: { text?: string; done?: boolean; stats?: { sync: number; buffered: number; bad: number }; other?: number }) => {
      if (m.text !== undefined) lines.push(m.text);
      if (m.done) res({ stats: m.stats!, other: m.other! });
    });
  });
  t.teardown(async () => { Atomics.store(new Int32Array(stop), 0, 1); await w.terminate(); });

  const t0 = Date.now();
  t.equal(await d.unpause(), 0);
  await waitFor(() => lines.some((l) => /^SeaBIOS \(version /.test(l)), 30_000, 'the SeaBIOS banner on port 0x402');
  t.pass(`SeaBIOS's banner after ${Date.now() - t0} ms: ${lines.find((l) => l.startsWith('SeaBIOS'))!.trim()}`);
  await waitFor(() => lines.some((l) => /No bootable device|Booting from|Boot failed/.test(l)), 60_000, 'SeaBIOS looking for something to boot');
  t.ok(lines.some((l) => /Found \d+ cpu\(s\)|ram size|RamSize|e820/i.test(l)), 'it sized RAM and CPUs');
  const info = await pc.hypercall<{ flags: number; cpu_time: number }>(__HYPERVISOR_domctl, XEN_DOMCTL_getdomaininfo, { domain: domid });
  t.ok(info.data!.cpu_time > 0, 'the vCPU was charged for its running time');
  Atomics.store(new Int32Array(stop), 0, 1);
  const r = await done;
  // A debug console write needs no answer: the vCPU posts it to the
  // buffered ring (io_router.ts isPostedPort), and the lines arrive whole.
  t.ok(r.stats.buffered > 1000, `the log's ${r.stats.buffered} bytes came through the buffered ring (${r.stats.sync} synchronous ioreqs)`);
  t.ok(r.stats.sync < r.stats.buffered / 10, 'few of them synchronously');
  t.equal(r.stats.bad, 0, 'none malformed');
  t.equal(r.other, 0, 'the server got only what it claimed');
  t.comment(lines.join('').slice(0, 3000));
});
