// Everything a domain process does on start (docs/hypervisor.md):
//
//   1. connect to XENEMU_HYPERCALL and send `hello` (who am I, my segments)
//   2. map its shared_info, grant table and memory
//   3. install the event-channel upcall handler
//   4. watch the lifeline (fd 3): if the hypervisor dies, unlink its own
//      segments (Dom0: every segment and file of the host) and exit at once
//
// SIGINT is ignored: a Ctrl-C at the launcher's terminal reaches the whole
// process group, and only the hypervisor decides when domains die.
import { shmUnlink } from '../shm.js';
import { SCHEDOP_shutdown } from '../abi/sched.js';
import { CONSOLEIO_write, decodeStartInfo, type StartInfo, PAGE_SIZE } from '../abi/xen.js';
import type { DomainHello } from '../wire/hypercall.js';
import { watchParent } from '../runtime/lifeline.js';
import { reapHost } from '../host.js';
import { HypervisorClient } from './hypervisor.js';
import { SharedInfo } from './shared_info.js';
import { EventChannels } from './evtchn.js';
import { GrantTable } from './gnttab.js';
import { GuestMemory } from './memory.js';
import { registerWriteProtect } from '../dirty.js';

export interface XenDomain {
  domid: number;
  host: string;
  /** The host run directory (XENEMU_HOST_DIR). */
  rundir: string;
  hello: DomainHello;
  hv: HypervisorClient;
  sharedInfo: SharedInfo;
  evtchn: EventChannels;
  gnttab: GrantTable;
  memory: GuestMemory;
  /** start_info as the builder wrote it (null when none was set). */
  startInfo(): StartInfo | null;
  /** Writes to the hypervisor console (CONSOLEIO_write). */
  log(text: string): void;
  /** SCHEDOP_shutdown then exit: the orderly way out (otherwise it is a crash). */
  shutdown(reason: number, exitCode?: number): Promise<never>;
  close(): void;
}

export interface StartDomainOptions {
  env?: NodeJS.ProcessEnv;
  /** Called instead of process.exit when the hypervisor disappears (tests). */
  onHypervisorDeath?: () => void;
}

export async function startDomain(opts: StartDomainOptions = {}): Promise<XenDomain> {
  const env = opts.env ?? process.env;
  const host = env.XENEMU_HOST ?? '';
  const rundir = env.XENEMU_HOST_DIR ?? '';
  const hv = HypervisorClient.connect(env.XENEMU_HYPERCALL);
  process.on('SIGINT', () => { /* the hypervisor decides */ });
  let known: DomainHello | undefined;
  // Watch before the hello: a hypervisor that dies before answering must not
  // leave this process waiting for it forever.
  watchParent(() => {
    // The hypervisor is gone (maybe SIGKILLed): nothing else will clean up.
    const h = known;
    if (h) {
      for (const s of [h.mem, h.shared_info, h.gnttab, h.vcpu, h.hvm]) {
        if (s) { try { shmUnlink(s); } catch { /* gone */ } }
      }
      if (h.privileged && host) { try { reapHost(rundir, host, { keepLogs: true }); } catch { /* best effort */ } }
    }
    hv.close();
    if (opts.onHypervisorDeath) opts.onHypervisorDeath(); else process.exit(0);
  });
  const hello = await hv.hello();
  known = hello;

  const sharedInfo = SharedInfo.open(hello.shared_info);
  const evtchn = new EventChannels(hv, sharedInfo);
  const gnttab = GrantTable.open(hv, hello.gnttab, hello.gnttab_frames);
  const memory = GuestMemory.open(hello.mem, hello.mem_bytes);
  // A PV guest writes its memory through this mapping only: registered for
  // write-protection, it is what xend's log-dirty reads during a live
  // migration (shared/dirty.ts). Nothing is protected until then; when the
  // kernel cannot, xend compares pages instead and says why.
  if (!hello.privileged && !hello.hvm) registerWriteProtect(memory.sab);

  const dom: XenDomain = {
    domid: hello.domid, host, rundir, hello, hv, sharedInfo, evtchn, gnttab, memory,
    startInfo() {
      if (!hello.start_info) return null;
      const pfn = Math.floor(hello.start_info / PAGE_SIZE);
      return decodeStartInfo(new DataView(memory.sab, pfn * PAGE_SIZE + (hello.start_info % PAGE_SIZE)));
    },
    log(text: string) { void hv.console_io(CONSOLEIO_write, { text }); },
    async shutdown(reason: number, exitCode = 0): Promise<never> {
      await hv.sched_op(SCHEDOP_shutdown, { reason });
      hv.close();
      process.exit(exitCode);
    },
    close() { hv.close(); },
  };
  return dom;
}
