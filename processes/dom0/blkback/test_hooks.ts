// Test hooks of blkback, off unless the environment's XENEMU_TEST_HOOKS
// (a comma-separated list) names them. Only a test host sets it; when it is
// unset none of this runs, not even a file lookup.
//
// blkback-pause-after-copy: makes the XSA-155 window certain. A test names
// one request in <rundir>/test-hooks/blkback-pause (JSON
// {domid, devid, id, at}; `at` is "request" or "descriptors"). When blkback
// has copied that request out of its ring slot ("request"), or copied the
// descriptor pages of that BLKIF_OP_INDIRECT request ("descriptors"), it
// removes the arming file, writes the same JSON to
// <rundir>/test-hooks/blkback-paused and stops that vbd's ring loop until
// the test removes blkback-paused (or 30 s pass). The test rewrites the slot
// or the descriptor page meanwhile; blkback must then act on what it copied.
//
//   test                          hostile front end           blkback
//   write blkback-pause ────────> push request ─────────────> copy slot [, copy descriptors]
//                                                             write blkback-paused, wait
//   sees blkback-paused ────────> rewrite slot / page
//   remove blkback-paused ──────────────────────────────────> go on from its copy, respond
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const TEST_HOOKS_ENV = 'XENEMU_TEST_HOOKS';
export const PAUSE_AFTER_COPY = 'blkback-pause-after-copy';
const PAUSE_LIMIT_MS = 30_000;
const POLL_MS = 2;

export type PausePoint = 'request' | 'descriptors';
export interface PauseSpec { domid: number; devid: number; id: string; at: PausePoint }

export function testHooksDir(rundir: string): string { return join(rundir, 'test-hooks'); }
export function pauseArmPath(rundir: string): string { return join(testHooksDir(rundir), 'blkback-pause'); }
export function pausedPath(rundir: string): string { return join(testHooksDir(rundir), 'blkback-paused'); }

export interface BlkbackHooks {
  /**
   * After a copy of request `id` of vbd domid/devid at `at`: a promise to
   * wait for before going on (the test armed this point), or undefined.
   */
  pause(domid: number, devid: number, idLo: number, idHi: number, at: PausePoint): Promise<void> | undefined;
}

/** The hooks the environment enables, or null (always, outside tests). */
export function blkbackHooks(rundir: string, env: NodeJS.ProcessEnv = process.env): BlkbackHooks | null {
  if (!(env[TEST_HOOKS_ENV] ?? '').split(',').includes(PAUSE_AFTER_COPY)) return null;
  const arm = pauseArmPath(rundir);
  const paused = pausedPath(rundir);
  return {
    pause(domid, devid, idLo, idHi, at) {
      if (!existsSync(arm)) return undefined;
      let spec: PauseSpec;
      try { spec = JSON.parse(readFileSync(arm, 'utf8')) as PauseSpec; } catch { return undefined; }
      const id = ((BigInt(idHi) << 32n) | BigInt(idLo)).toString();
      if (spec.domid !== domid || spec.devid !== devid || spec.id !== id || spec.at !== at) return undefined;
      rmSync(arm, { force: true });
      mkdirSync(testHooksDir(rundir), { recursive: true });
      writeFileSync(`${paused}.tmp`, JSON.stringify(spec));
      renameSync(`${paused}.tmp`, paused);
      const until = Date.now() + PAUSE_LIMIT_MS;
      return new Promise<void>((resolve) => {
        const poll = (): void => {
          if (!existsSync(paused) || Date.now() > until) { rmSync(paused, { force: true }); resolve(); return; }
          setTimeout(poll, POLL_MS);
        };
        poll();
      });
    },
  };
}
