// An HVM guest's domain process: the guest does not know it is
// virtualised, so there is no kernel of ours here, only its vCPU
// (vcpu_thread.ts: v86 on a worker thread, inside the scheduler's slices)
// and what Xen would do for it in the hypervisor on the way out: print its
// debug port's lines on the console, and end the domain the way its
// processor ended: a reset is SHUTDOWN_reboot; a triple fault is what
// HVM_PARAM_TRIPLE_FAULT_REASON says (Xen's hvm_triple_fault; SHUTDOWN_reboot
// unless the toolstack changed it); an exception out of v86 (a processor
// state it cannot emulate) is SHUTDOWN_crash.
import { MessageChannel } from 'node:worker_threads';
import { SCHEDOP_shutdown, SHUTDOWN_crash, SHUTDOWN_reboot, SHUTDOWN_suspend } from '../../../shared/abi/sched.js';
import { futexWake, shmOpen } from '../../../shared/shm.js';
import { HVM_CONTEXT_EMPTY, XENEMU_HVM_SEGMENT_PAGES, hvm_ctl } from '../../../shared/abi/hvm/xenemu_hvm.js';
import { HVM_INFO_PADDR, checkHvmInfoTable, HVM_INFO_TABLE_SIZE, hvm_info_table } from '../../../shared/abi/hvm/hvm_info_table.js';
import { PAGE_SIZE, __HYPERVISOR_hvm_op } from '../../../shared/abi/xen.js';
import { HVMOP_get_param, HVM_PARAM_TRIPLE_FAULT_REASON } from '../../../shared/abi/hvm/params.js';
import { VcpuPool } from '../../../shared/xen/vcpu/index.js';
import type { XenDomain } from '../../../shared/xen/index.js';
import type { HvmVcpuArg, HvmVcpuExit, HvmVcpuMessage } from './vcpu_thread.js';

/**
 * The builder leaves the firmware ending at 1 MiB (hvmloader's place for
 * SeaBIOS; up to 256 KiB). v86 is handed that whole window as its "BIOS":
 * it copies it where it already is and aliases it below 4 GiB, where the
 * processor's reset vector fetches from.
 */
export const FIRMWARE_WINDOW = 0x40000;

export async function bootHvm(dom: XenDomain): Promise<never> {
  const h = dom.hello;
  if (!h.hvm) throw new Error('bootHvm: not an HVM domain');
  const mem = dom.memory.bytes;
  // The builder's hvm_info_table says how much is RAM and how many vCPUs.
  const info = mem.subarray(HVM_INFO_PADDR, HVM_INFO_PADDR + HVM_INFO_TABLE_SIZE);
  if (!checkHvmInfoTable(info)) return dom.shutdown(SHUTDOWN_crash, 1);
  const dv = new DataView(info.buffer, info.byteOffset, info.byteLength);
  const lowMemPgend = dv.getUint32(20, true);
  const ramBytes = Math.min(lowMemPgend * PAGE_SIZE, h.mem_bytes);
  // apic_mode (xl.cfg apic=, 1 by default): a local APIC and an IOAPIC, as hvmloader reads it.
  const apic = info[hvm_info_table.apic_mode] !== 0;
  const pool = await VcpuPool.start(dom, 1);
  const { port1, port2 } = new MessageChannel();
  const seg = shmOpen(h.hvm, XENEMU_HVM_SEGMENT_PAGES * PAGE_SIZE);
  const i32 = new Int32Array(seg);
  port1.on('message', (m: HvmVcpuMessage) => {
    if (m.type === 'console') dom.log(m.line);
    if (m.type === 'suspend') {
      dom.log(`suspending: vCPU context of ${m.bytes} bytes saved in ${m.ms.toFixed(1)} ms`);
      // As a PV guest's suspend hypercall: it returns only when the domain
      // is resumed in place (1, "cancelled"); a saved domain is destroyed.
      void dom.hv.sched_op(SCHEDOP_shutdown, { reason: SHUTDOWN_suspend }).then(() => {
        Atomics.store(i32, hvm_ctl.context_state >> 2, HVM_CONTEXT_EMPTY);
        Atomics.store(i32, hvm_ctl.suspend_req >> 2, 0);
        futexWake(seg, hvm_ctl.suspend_req, 1);
      });
    }
  });
  const arg: HvmVcpuArg = { mem: h.mem, hvm: h.hvm, host: h.host, ramBytes, apic, firmwareBytes: FIRMWARE_WINDOW, port: port2 };
  let exit: HvmVcpuExit;
  try {
    exit = await pool.run<HvmVcpuExit>({ module: new URL('./vcpu_thread.js', import.meta.url).href, arg }, [port2]);
  } catch (err) {
    exit = { reason: 'crash', message: (err as Error).stack ?? String(err) };
  }
  port1.close();
  if (exit.reason === 'crash') {
    process.stderr.write(`hvm: vCPU 0 failed: ${exit.message}\n`);
    dom.log(`vCPU 0 failed: ${exit.message.split('\n')[0]}`);
    return dom.shutdown(SHUTDOWN_crash, 1);
  }
  if (exit.reason === 'triple-fault') {
    const r = await dom.hv.hypercall<{ value: bigint | number }>(__HYPERVISOR_hvm_op, HVMOP_get_param,
      { domid: dom.domid, index: HVM_PARAM_TRIPLE_FAULT_REASON });
    const reason = r.ret < 0 ? SHUTDOWN_reboot : Number(r.data?.value ?? SHUTDOWN_reboot);
    dom.log(`Triple fault - invoking HVM shutdown action ${reason}`);
    return dom.shutdown(reason);
  }
  return dom.shutdown(SHUTDOWN_reboot);
}
