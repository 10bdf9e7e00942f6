// A guest kernel that panics at boot (xl.cfg `kernel =` names it: docs/domu.md):
// it starts as every domain process does (hello, its pages mapped), then
// shuts down with SHUTDOWN_crash, as Mini-OS does after a panic. Whatever
// its config's on_crash says then happens at once, every time it boots.
import { startDomain } from '../../shared/xen/index.js';
import { SHUTDOWN_crash } from '../../shared/abi/sched.js';

const dom = await startDomain();
dom.log(`crash_guest: d${dom.domid} panics at boot`);
await dom.shutdown(SHUTDOWN_crash, 1);
