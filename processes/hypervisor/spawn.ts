// Starting a domain process.
//
//   node <program> --host <name> --domid <id> [args...]
//   argv[0] and node's --title: the process's title (`xenemu-dom0 host=H`,
//        `xenemu-domU domid=N host=H`; shared/runtime/title.ts), so `ps`
//        tells it apart at once
//   env: XENEMU_HOST, XENEMU_HOST_DIR, XENEMU_DOMID, XENEMU_HYPERCALL (ipc
//        endpoint), XENEMU_LIFELINE=1 (fd 3 is the lifeline)
//   stdout/stderr -> <rundir>/logs/dom<id>.log
//
// The process must connect to XENEMU_HYPERCALL and send `hello`
// (shared/xen/domain.ts does all of it), and exit when fd 3 closes.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { lifelineEnv, lifelineStdio } from '../../shared/runtime/lifeline.js';
import { hostFiles } from '../../shared/host.js';
import { ROOT_NETNS_FD_ENV } from '../../shared/net/uplink.js';
import { DOMU_ENV, DOMU_NODE_FLAGS, XENSTORED_NODE_FLAGS, domainExtraNodeFlags } from '../../shared/runtime/node_flags.js';
import { domainTitle, nodeTitleArgs } from '../../shared/runtime/title.js';

export interface SpawnSpec {
  host: string;
  rundir: string;
  domid: number;
  program: string;
  args: string[];
  endpoint: string;
}

export function spawnDomainProcess(s: SpawnSpec): ChildProcess {
  const log = openSync(join(s.rundir, hostFiles.logs, `dom${s.domid}.log`), 'a');
  try {
    const env = lifelineEnv({
      ...process.env,
      XENEMU_HOST: s.host,
      XENEMU_HOST_DIR: s.rundir,
      XENEMU_DOMID: String(s.domid),
      XENEMU_HYPERCALL: s.endpoint,
      ...(s.domid === 0 ? {} : DOMU_ENV),
    });
    delete env.XENEMU_READY_FD;
    // Domain-0 reaps the host if the hypervisor is killed: it gets the
    // descriptor of the namespace the pool bridge is in (shared/net/uplink.ts).
    const rootNs = s.domid === 0 && env[ROOT_NETNS_FD_ENV] ? Number(env[ROOT_NETNS_FD_ENV]) : null;
    if (rootNs !== null) env[ROOT_NETNS_FD_ENV] = '4'; else delete env[ROOT_NETNS_FD_ENV];
    // Domain-0 hosts xenstored: give it xenstored's heap settings; guests theirs.
    const nodeFlags = s.domid === 0 ? XENSTORED_NODE_FLAGS : DOMU_NODE_FLAGS;
    const title = domainTitle(s.host, s.domid);
    return spawn(process.execPath, [...nodeTitleArgs(title), ...nodeFlags, ...domainExtraNodeFlags(), s.program, '--host', s.host, '--domid', String(s.domid), ...s.args], {
      stdio: rootNs === null ? lifelineStdio(log, log) : [...(lifelineStdio(log, log) as unknown[]), rootNs] as never,
      env, cwd: s.rundir, argv0: title,
    });
  } finally {
    closeSync(log);
  }
}
