// What the hostile-front-end tests (block and network) share: the
// rejections a back end counted, read from the statistics files Domain-0
// writes in the run directory (processes/dom0/backend_stats.ts), and an
// assertion that one step made exactly the expected ones.
import { waitFor } from '../helpers/host.js';
import {
  deviceStatisticsPath, driverStatisticsPath, readStatistics, type BackendType, type Counters,
} from '../../processes/dom0/backend_stats.js';

interface Tap { same(found: unknown, wanted: unknown, message: string): unknown }

/** The `rejected*` counters that differ between two readings, as differences. */
export function rejectedDelta(before: Counters, after: Counters): Counters {
  const out: Counters = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (!k.startsWith('rejected')) continue;
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** The rejections of one device and of its driver, to compare before and after a step. */
export function rejections(rundir: string, type: BackendType, domid: number) {
  const read = (devid: number) => ({
    device: readStatistics(deviceStatisticsPath(rundir, type, domid, devid)),
    driver: readStatistics(driverStatisticsPath(rundir, type)),
  });
  return {
    device: (devid: number) => readStatistics(deviceStatisticsPath(rundir, type, domid, devid)),
    driver: () => readStatistics(driverStatisticsPath(rundir, type)),
    /**
     * Runs `step` and asserts that the device counted exactly `n` rejections,
     * all of them `reason` (or none, for reason null), and the driver's
     * total the same. The back ends write the files before they answer a
     * refused request; a rejection no answer follows (a dropped packet) is
     * in the file within a second: `settle` waits for the count to get there.
     */
    async expect<T>(t: Tap, what: string, devid: number, reason: string | null, step: () => Promise<T>, n = 1,
                    settle = false): Promise<T> {
      const before = read(devid);
      const r = await step();
      if (settle && reason !== null) {
        await waitFor(() => (read(devid).device.rejected ?? 0) - (before.device.rejected ?? 0) >= n, 10_000,
          `${n} rejections counted for ${what}`).catch(() => undefined);
      }
      const after = read(devid);
      const want = reason === null ? {} : { rejected: n, [`rejected.${reason}`]: n };
      t.same(rejectedDelta(before.device, after.device), want,
        `${what}: ${reason === null ? 'no rejection' : `rejected as ${reason}${n === 1 ? '' : ` ${n} times`}`} (${type}-${domid}-${devid})`);
      t.same(rejectedDelta(before.driver, after.driver), want, `${what}: the same in the ${type} total`);
      return r;
    },
  };
}
