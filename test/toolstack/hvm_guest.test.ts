// HVM guests through `xl` on a real host (processes/dom0/toolstack/hvm/):
// what the builder leaves in guest memory (SeaBIOS ending at 1 MiB, the
// hvm_info_table), the HVM parameters, libxl's xenstore layout, the device
// model's arguments, title and pid, waiting for it to run before the guest
// may, `xl console` on its serial port, and its life with the guest:
// destroy stops it, its death crashes the guest, a model that never gets
// ready fails the create leaving nothing, and Domain-0's death ends it.
//
// The device model is test/fixtures/fake_qemu_dm.ts (xl.cfg's
// device_model_override): it keeps qemu-dm's side of the contract and has
// no devices. Guests are created paused (-p) where the test is about the
// toolstack: an unpaused guest runs its vCPU, which needs the real qemu-dm.
import t from 'tap';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DIST, XENEMU_CLI, processAlive, readHostRecord, startHost, waitFor, type TestHost } from '../helpers/host.js';
import { list, onWatch, writeCfg, xend, xenstore, xl, xlOk } from '../host/xl.js';
import { HypervisorClient } from '../../shared/xen/hypervisor.js';
import { privcmdEndpoint } from '../../shared/wire/hypercall.js';
import { shmList, shmOpen, shmPrefix } from '../../shared/shm.js';
import { hostProcessesByScan, procCmdline } from '../../shared/host.js';
import { qemuDmTitle } from '../../shared/runtime/title.js';
import { __HYPERVISOR_domctl, __HYPERVISOR_hvm_op } from '../../shared/abi/xen.js';
import {
  XEN_DOMCTL_getdomaininfo, XEN_DOMINF_hvm_guest, XENEMU_DOMCTL_getsegments, type xen_domctl_getdomaininfo,
  type xenemu_domain_segments,
} from '../../shared/abi/domctl.js';
import * as P from '../../shared/abi/hvm/params.js';
import { HVM_INFO_PADDR, HVM_INFO_TABLE_SIZE, checkHvmInfoTable } from '../../shared/abi/hvm/hvm_info_table.js';
import { XmlRpcFault, XMLRPC_ERROR_INVALID_DOMAIN } from '../../shared/xmlrpc.js';

const FAKE_DM = join(DIST, 'test', 'fixtures', 'fake_qemu_dm.js');
const SEABIOS = '/usr/share/seabios/bios.bin';

/** xend's long poll: true once the domain shut down or is gone. */
async function waitForShutdown(h: TestHost, id: number, seconds: number): Promise<boolean> {
  try {
    return (await xend(h, 'xend.domain.waitForShutdown', String(id), seconds)) === true;
  } catch (e) {
    if (e instanceof XmlRpcFault && e.faultCode === XMLRPC_ERROR_INVALID_DOMAIN) return true;
    throw e;
  }
}

async function domid(h: TestHost, name: string): Promise<number | undefined> {
  return (await list(h)).find((r) => r.name === name)?.id;
}

/** The host's device model processes (found as reapHost finds them: title and run directory). */
function deviceModels(h: TestHost): number[] {
  return hostProcessesByScan(h.rundir, h.name).filter((p) => (procCmdline(p)[0] ?? '').startsWith('xenemu-qemu-dm '));
}

/** The device model's argv, as the fake logged it. */
function loggedArgv(h: TestHost, name: string): string[] {
  const log = fs.readFileSync(join(h.rundir, 'logs', `qemu-dm-${name}.log`), 'utf8');
  const m = /^fake-qemu-dm argv: (.*)$/m.exec(log);
  if (!m) throw new Error(`no argv in the device model's log: ${log}`);
  return JSON.parse(m[1]!) as string[];
}

t.test('HVM guests on a real host', { skip: fs.existsSync(SEABIOS) ? false : `${SEABIOS} is missing (Debian's seabios package)` }, async (t) => {
  const h = await startHost(t, { memory: 1024, pcpus: 2 });
  const xs = await xenstore(t, h);
  const pc = HypervisorClient.privcmd(privcmdEndpoint(h.rundir));
  t.teardown(() => pc.close());
  const disk = join(h.root, 'disk.img');
  const iso = join(h.root, 'cd.iso');
  fs.writeFileSync(disk, Buffer.alloc(0));
  fs.truncateSync(disk, 4 << 20);
  fs.writeFileSync(iso, Buffer.alloc(64 << 10));
  const base = `type = "hvm"\nmemory = 64\nserial = "pty"\ndevice_model_override = "${FAKE_DM}"\n`;
  const cfg = writeCfg(h, 'h.cfg', `${base}disk = [ 'file:${disk},hda,w', '${iso},,hdc,cdrom' ]\n` +
    "vif = [ 'bridge=xenbr0,mac=00:16:3e:12:34:56' ]\n");
  const plain = writeCfg(h, 'p.cfg', base);
  const getParam = async (id: number, index: number) =>
    (await pc.hypercall<{ value: bigint }>(__HYPERVISOR_hvm_op, P.HVMOP_get_param, { domid: id, index })).data?.value;

  await t.test("create -p: the builder's memory, parameters and xenstore; the device model's arguments", async (t) => {
    const c = await xl(h, ['create', '-p', cfg, 'name=h1']);
    t.equal(c.code, 0, c.stderr);
    t.match(c.stderr, `Parsing config from ${cfg}`, "xl's first line");
    const row = (await list(h)).find((r) => r.name === 'h1')!;
    t.match(row, { mem: 64, state: '--p---' }, 'listed, paused');
    const id = row.id;
    t.notMatch(fs.readFileSync(join(h.rundir, 'logs', 'hypervisor.log'), 'utf8'), new RegExp(`d${id}: started`),
      '-p: built paused, never run (no domain process started)');
    const info = (await pc.hypercall<xen_domctl_getdomaininfo>(__HYPERVISOR_domctl, XEN_DOMCTL_getdomaininfo, { domain: id })).data!;
    t.ok(info.flags & XEN_DOMINF_hvm_guest, 'XEN_DOMCTL_CDF_hvm: the hypervisor has an HVM guest');
    t.equal(info.max_vcpu_id, 0, 'one vCPU');
    t.equal(info.tot_pages, 64 * 256 + 8, 'RAM, video memory and the 8 special pages populated');
    t.equal(info.max_pages, 65 * 256, 'max_mem: memory + LIBXL_MAXMEM_CONSTANT');

    // Guest memory as the hypervisor holds it.
    const seg = (await pc.hypercall<xenemu_domain_segments>(__HYPERVISOR_domctl, XENEMU_DOMCTL_getsegments, { domain: id })).data!;
    const ram = new Uint8Array(shmOpen(seg.mem, seg.mem_bytes));
    const bios = fs.readFileSync(SEABIOS);
    t.equal(bios.length, 128 << 10, "Debian's SeaBIOS is 128 KiB");
    t.equal(Buffer.compare(ram.subarray(0xe0000, 0x100000), bios), 0, 'SeaBIOS at 0xe0000-0xfffff, ending at 1 MiB');
    t.equal(ram[0xffff0], 0xea, 'the reset vector at 0xffff0 is its far jump');
    t.ok(ram.subarray(0xc0000, 0xe0000).every((b) => b === 0), 'no VGA BIOS written: SeaBIOS takes the VGA ROM from its PCI BAR');
    const table = ram.subarray(HVM_INFO_PADDR, HVM_INFO_PADDR + HVM_INFO_TABLE_SIZE);
    t.ok(checkHvmInfoTable(table), "hvm_info_table at 0x9f800: 'HVM INFO', length, checksum");
    const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
    t.same({ apic: table[13], nr_vcpus: dv.getUint32(16, true), low_mem_pgend: dv.getUint32(20, true),
      reserved_mem_pgstart: dv.getUint32(24, true), high_mem_pgend: dv.getUint32(28, true), online: table[32] },
    { apic: 1, nr_vcpus: 1, low_mem_pgend: 48 * 256, reserved_mem_pgstart: 64 * 256, high_mem_pgend: 0, online: 1 },
    'one vCPU, 48 MiB of RAM (64 - 16 of video memory), the special pages after the video memory');

    // HVM parameters, read back with HVMOP_get_param.
    const storePort = Number(await xs.readString(`/local/domain/${id}/store/port`));
    t.same({
      store_pfn: await getParam(id, P.HVM_PARAM_STORE_PFN), store_evtchn: await getParam(id, P.HVM_PARAM_STORE_EVTCHN),
      console_pfn: await getParam(id, P.HVM_PARAM_CONSOLE_PFN), timer_mode: await getParam(id, P.HVM_PARAM_TIMER_MODE),
      hpet: await getParam(id, P.HVM_PARAM_HPET_ENABLED), viridian: await getParam(id, P.HVM_PARAM_VIRIDIAN),
      vpt_align: await getParam(id, P.HVM_PARAM_VPT_ALIGN), ioreq_pfn: await getParam(id, P.HVM_PARAM_IOREQ_PFN),
    }, {
      store_pfn: BigInt(64 * 256 + 4), store_evtchn: BigInt(storePort), console_pfn: BigInt(64 * 256 + 7),
      timer_mode: BigInt(P.HVMPTM_no_delay_for_missed_ticks), hpet: 0n, viridian: 0n, vpt_align: 1n, ioreq_pfn: 0n,
    }, "libxl's parameters: the special pages, no_delay_for_missed_ticks, no HPET, no Viridian; ioreq pages only by acquire_resource");
    t.ok(await xs.isDomainIntroduced(id), 'introduced to xenstored (its ring at HVM_PARAM_STORE_PFN)');

    // libxl's xenstore layout.
    const home = `/local/domain/${id}`;
    const rd = (p: string) => xs.readString(p);
    const vm = await rd(`${home}/vm`);
    t.same({
      name: await rd(`${home}/name`), domid: await rd(`${home}/domid`), staticMax: await rd(`${home}/memory/static-max`),
      target: await rd(`${home}/memory/target`), videoram: await rd(`${home}/memory/videoram`),
      cpu0: await rd(`${home}/cpu/0/availability`), ringRef: await rd(`${home}/store/ring-ref`),
      bios: await rd(`${home}/hvmloader/bios`), relocate: await rd(`${home}/hvmloader/allow-memory-relocate`),
      acpi: await rd(`${home}/platform/acpi`), dmVersion: await rd(`${home}/platform/device-model`),
      ostype: await rd(`${vm}/image/ostype`), vmName: await rd(`${vm}/name`), type: await rd(`/libxl/${id}/type`),
      dmState: await rd(`/local/domain/0/device-model/${id}/state`),
    }, {
      name: 'h1', domid: String(id), staticMax: '65536', target: '49152', videoram: '16384', cpu0: 'online',
      ringRef: String(64 * 256 + 4), bios: 'seabios', relocate: '0', acpi: '1', dmVersion: 'qemu_xen', ostype: 'hvm',
      vmName: 'h1', type: 'hvm', dmState: 'running',
    }, "libxl's nodes for an HVM guest, and the device model's state");
    t.same(await xs.getPerms(home), ['n0', `r${id}`], 'its home is read-only to it');
    t.same(await xs.getPerms(`${home}/hvmloader`), ['n0', `r${id}`]);
    t.same(await xs.getPerms(`${home}/control/feature-s3`), [`n${id}`], 'control/feature-s3 is the guest\'s to write');
    t.same(await xs.getPerms(`/local/domain/0/device-model/${id}`), ['n0'], "the device model's directory is Domain-0's");
    t.match(await rd(`${home}/serial/0/tty`), /^\/dev\/pts\/\d+$/, 'the device model wrote its serial PTY');

    // The device model: its process, title and arguments.
    const pid = Number(await rd(`${home}/image/device-model-pid`));
    t.same(deviceModels(h), [pid], 'image/device-model-pid is the device model, found by its title and run directory');
    t.same(procCmdline(pid), [qemuDmTitle(h.name, id, 'h1')], `ps shows "${qemuDmTitle(h.name, id, 'h1')}"`);
    t.ok(fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`XENSTORED_PATH=${h.rundir}/xenstored.sock`),
      'it finds xenstored through XENSTORED_PATH');
    const mac = '00:16:3e:12:34:56';
    t.same(loggedArgv(h, 'h1'), [
      '-xen-domid', String(id), '-no-shutdown', '-nodefaults', '-no-user-config', '-name', 'h1', '-vnc', 'none',
      '-display', 'none', '-serial', 'pty', '-device', 'VGA,vgamem_mb=16', '-boot', 'order=cda',
      '-device', `e1000,id=nic0,netdev=net0,mac=${mac}`, '-netdev', 'type=bridge,id=net0,br=xenbr0',
      '-machine', 'xenfv,suppress-vmdesc=on', '-m', '48',
      '-drive', `file=${disk},if=ide,index=0,media=disk,format=raw,cache=writeback`,
      '-drive', `if=none,readonly=on,id=ide-5632,file=${iso},format=raw`,
      '-device', 'ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0',
    ], "libxl's arguments for qemu-xen");

    const long = JSON.parse(await xlOk(h, 'list', '-l', 'h1')) as Array<{ config: { type: string } }>;
    t.equal(long[0]!.config.type, 'hvm', 'xl list -l: "type": "hvm"');
  });

  await t.test('xl console: serial port 0, its backlog, typing, Ctrl-]', async (t) => {
    const child = spawn(process.execPath, [XENEMU_CLI, 'xl', 'console', 'h1'],
      { env: { ...h.env, XENEMU_HOST: h.name }, stdio: ['pipe', 'pipe', 'pipe'] });
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    let out = '';
    const waiters: Array<() => void> = [];
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); waiters.splice(0).forEach((w) => w()); });
    const until = (re: RegExp, from = 0) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in ${JSON.stringify(out.slice(from))}`)), 15_000);
      const check = () => { if (re.test(out.slice(from))) { clearTimeout(timer); resolve(); } else waiters.push(check); };
      check();
    });
    await until(/fake SeaBIOS for h1 \(d\d+\) on COM1\r\n/);
    t.pass('the backlog: the serial log qemu-dm wrote');
    t.equal(out.match(/fake SeaBIOS/g)?.length, 1, 'shown once: what the PTY held unread was dropped');
    const from = out.length;
    child.stdin.write('typed-on-COM1');
    await until(/typed-on-COM1/, from);
    t.pass('typed bytes reach the serial port and its output comes back');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdin.write('\x1d');
    t.equal(await exited, 0, 'Ctrl-] detaches with status 0');

    // xl create -c attaches the same console to the new guest.
    const c = spawn(process.execPath, [XENEMU_CLI, 'xl', 'create', '-c', '-p', plain, 'name=c1'],
      { env: { ...h.env, XENEMU_HOST: h.name }, stdio: ['pipe', 'pipe', 'pipe'] });
    t.teardown(() => { if (c.exitCode === null) c.kill('SIGKILL'); });
    let cout = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner from xl create -c: ${JSON.stringify(cout)}`)), 15_000);
      c.stdout.on('data', (d: Buffer) => {
        cout += d.toString();
        if (/fake SeaBIOS for c1/.test(cout)) { clearTimeout(timer); resolve(); }
      });
    });
    t.pass('xl create -c: the new guest\'s serial port');
    const cExit = new Promise<number | null>((resolve) => c.on('exit', (code) => resolve(code)));
    c.stdin.write('\x1d');
    t.equal(await cExit, 0, 'Ctrl-] detaches');
    await xlOk(h, 'destroy', 'c1');

    const pv = await xl(h, ['console', '-t', 'pv', 'h1']);
    t.equal(pv.code, 1, 'xl console -t pv: an HVM guest has no PV console served');
    t.match(pv.stderr, /Unable to read console tty path `\/local\/domain\/\d+\/console\/tty'/);
  });

  await t.test('xl shutdown without PV drivers is refused, as xl does', async (t) => {
    for (const cmd of ['shutdown', 'reboot']) {
      const r = await xl(h, [cmd, 'h1']);
      t.equal(r.code, 1, `xl ${cmd}: exit 1`);
      t.match(r.stderr, `PV control interface not available: external graceful ${cmd} not possible.`);
    }
    t.ok(await domid(h, 'h1'), 'the guest is still there');
  });

  await t.test('destroy stops the device model and leaves nothing', async (t) => {
    const id = (await domid(h, 'h1'))!;
    const pid = Number(await xs.readString(`/local/domain/${id}/image/device-model-pid`));
    await xlOk(h, 'destroy', 'h1');
    t.notOk(processAlive(pid), 'the device model is gone when xl destroy returns');
    t.equal(await domid(h, 'h1'), undefined);
    t.equal(await xs.tryRead(`/local/domain/${id}`), null, 'its xenstore home is gone');
    t.equal(await xs.tryRead(`/local/domain/0/device-model/${id}`), null, "and the device model's directory");
    t.notOk(shmList(shmPrefix(h.name)).some((s) => s.includes(`.dom${id}.`)), 'and its segments');
  });

  await t.test('a device model that dies crashes its guest within 1 s, and on_crash applies', async (t) => {
    await xlOk(h, 'create', '-p', plain, 'name=k1', 'on_crash=preserve');
    const id = (await domid(h, 'k1'))!;
    const pid = Number(await xs.readString(`/local/domain/${id}/image/device-model-pid`));
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    t.equal(await waitForShutdown(h, id, 1), true, 'shut down within 1 s');
    t.ok(performance.now() - t0 < 1000, `crashed ${(performance.now() - t0).toFixed(0)} ms after the SIGKILL`);
    t.match((await list(h)).find((r) => r.id === id), { name: 'k1', state: '--psc-' }, 'on_crash=preserve: kept, crashed');
    t.match(await xlOk(h, 'dmesg'), new RegExp(`d${id}: shutdown \\(crash\\)`), 'the hypervisor marked it crashed');
    await xlOk(h, 'destroy', 'k1');

    await xlOk(h, 'create', '-p', plain, 'name=k2');
    const id2 = (await domid(h, 'k2'))!;
    const pid2 = Number(await xs.readString(`/local/domain/${id2}/image/device-model-pid`));
    const released = onWatch(xs, '@releaseDomain', async () => !(await xs.isDomainIntroduced(id2)));
    process.kill(pid2, 'SIGKILL');
    await released;
    t.equal(await domid(h, 'k2'), undefined, 'on_crash=destroy (the default): destroyed');
    t.equal(await xs.tryRead(`/local/domain/0/device-model/${id2}`), null, "its device model's directory is gone");
    t.same(deviceModels(h), [], 'no device model is left');
  });

  await t.test('device models that fail to start fail the create, leaving nothing', async (t) => {
    const shm = shmList(shmPrefix(h.name)).sort();
    const homes = (await xs.directory('/local/domain')).sort();
    const names = (await list(h)).map((r) => r.name);

    const t0 = performance.now();
    const r = await xl(h, ['create', plain, 'name=n1', 'device_model_args=["-xenemu-fake","never-ready"]']);
    const ms = performance.now() - t0;
    t.equal(r.code, 1, 'xl create fails');
    t.match(r.stderr, /libxl: error: domain "n1": domain (\d+) device model: startup timed out after 10 s; see \S+\/logs\/qemu-dm-n1\.log/,
      'naming the device model and its log');
    t.ok(ms >= 10_000 && ms < 14_000, `within the 10 s bound (${ms.toFixed(0)} ms)`);
    const id = Number(/domain (\d+) device model/.exec(r.stderr)?.[1]);
    t.match(fs.readFileSync(join(h.rundir, 'logs', 'qemu-dm-n1.log'), 'utf8'), /will never be ready/, 'its log says why');
    t.notMatch(fs.readFileSync(join(h.rundir, 'logs', 'hypervisor.log'), 'utf8'), new RegExp(`d${id}: started`),
      'the guest was never unpaused');

    const early = await xl(h, ['create', plain, 'name=n2', 'device_model_args=["-xenemu-fake","exit-early"]']);
    t.equal(early.code, 1);
    t.match(early.stderr, /domain \d+ device model \[\d+\]: failed startup with non-zero exit status 3; see \S+qemu-dm-n2\.log/,
      'a device model that exits before it runs: at once, with its status');

    t.same((await list(h)).map((x) => x.name), names, 'xl list unchanged');
    t.same(shmList(shmPrefix(h.name)).sort(), shm, '/dev/shm unchanged');
    t.same((await xs.directory('/local/domain')).sort(), homes, 'xenstore homes unchanged');
    t.same(await xs.directory('/local/domain/0/device-model').catch(() => []), [], 'no device model directory left');
    t.same(deviceModels(h), [], 'no device model process left');
  });

  await t.test('refused HVM creates say why and leave nothing', async (t) => {
    const shm = shmList(shmPrefix(h.name)).sort();
    const small = join(h.root, 'small.bin');
    fs.writeFileSync(small, Buffer.alloc(100 << 10));
    const cases: Array<[string, string[], RegExp]> = [
      ['two vCPUs', ['name=r1', 'vcpus=2'], /command line:2: config parsing error near `vcpus': an HVM guest has one vCPU in xenemu/],
      ['PoD', ['name=r2', 'maxmem=128'], /near `maxmem': maxmem \(128\) > memory \(64\) starts an HVM guest pre-ballooned/],
      ['no BIOS file', ['name=r3', 'bios_path_override="/nonexistent/bios.bin"'], /libxl: error: domain "r3": failed to read BIOS file \/nonexistent\/bios\.bin: No such file or directory/],
      ['a BIOS of 100 KiB', ['name=r4', `bios="${small}"`], /BIOS file \S+small\.bin is 102400 bytes: a BIOS image ends at 1 MiB and must be a non-empty multiple of 64 KiB, at most 256 KiB/],
      ['no device model', ['name=r5', 'device_model_override="/nonexistent/qemu-dm.js"'], /device model \/nonexistent\/qemu-dm\.js is not there/],
      ['a kind without a builder', ['name=r6', 'type=pvh'],
        /domain "r6": type pvh guests are not supported yet \(pv, hvm are\)/],
    ];
    for (const [what, over, msg] of cases) {
      const r = await xl(h, ['create', '-p', plain, ...over]);
      t.equal(r.code, 1, `${what}: exit 1`);
      t.match(r.stderr, msg, `${what}: ${r.stderr.trim().split('\n').pop()}`);
    }
    t.same((await list(h)).map((r) => r.name), ['Domain-0'], 'no domain made');
    t.same(shmList(shmPrefix(h.name)).sort(), shm, '/dev/shm unchanged');
    t.same(deviceModels(h), [], 'no device model left');
  });

  await t.test('unpaused: the guest runs once its device model runs', async (t) => {
    await xlOk(h, 'create', plain, 'name=u1', 'on_crash=preserve');
    const row = (await list(h)).find((r) => r.name === 'u1')!;
    t.equal(row.state[2], '-', `not paused once xl create returns (${row.state})`);
    const ts = (file: string, re: RegExp) => {
      const m = new RegExp(`^\\[([^\\]]+)\\].*${re.source}`, 'm').exec(fs.readFileSync(join(h.rundir, 'logs', file), 'utf8'));
      return m ? Date.parse(m[1]!) : NaN;
    };
    const running = ts('dom0.log', new RegExp(`domain ${row.id} device model: running`));
    const started = await waitFor(() => { const v = ts('hypervisor.log', new RegExp(`d${row.id}: started`)); return Number.isNaN(v) ? 0 : v; },
      5000, 'the guest process to start');
    t.ok(running <= started, 'the device model confirmed `running` before the guest was unpaused');
    await xlOk(h, 'destroy', 'u1');
    t.same(deviceModels(h), []);
  });
});

t.test("SIGKILL of Domain-0 ends its device models", { skip: fs.existsSync(SEABIOS) ? false : `${SEABIOS} is missing` }, async (t) => {
  const h = await startHost(t, { memory: 512, pcpus: 2 });
  const cfg = writeCfg(h, 'd.cfg', `name = "d1"\ntype = "hvm"\nmemory = 32\nserial = "pty"\ndevice_model_override = "${FAKE_DM}"\n`);
  await xlOk(h, 'create', '-p', cfg);
  const [dm] = deviceModels(h);
  t.ok(dm, 'a device model runs');
  const dom0 = readHostRecord(h.rundir)!.pids.domains['0']!;
  process.kill(dom0, 'SIGKILL');
  await waitFor(() => !processAlive(dm!), 2000, 'the device model to exit');
  t.pass('the device model went with Domain-0 (its lifeline)');
});
