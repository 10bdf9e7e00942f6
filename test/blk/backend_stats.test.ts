// processes/dom0/backend_stats.ts on its own: the statistics files of a
// device and of its driver, and the log limit that keeps a guest sending
// nothing but bad requests from flooding Domain-0's log (the back ends'
// use of it is held by test/blk/hostile.test.ts and test/net/hostile.test.ts).
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BackendDriver, LOG_BURST, LOG_INTERVAL_MS, deviceStatisticsPath, driverStatisticsPath, readStatistics,
} from '../../processes/dom0/backend_stats.js';

t.test('counts per device and in total, a file per device, at most LOG_BURST lines per window', async (t) => {
  const rundir = mkdtempSync(join(tmpdir(), 'xenemu-stats-'));
  t.teardown(() => rmSync(rundir, { recursive: true, force: true }));
  let now = 1_000_000;
  const driverLog: string[] = [];
  const driver = new BackendDriver({ rundir, type: 'vbd', reasons: ['bad_gref', 'sector_out_of_range'] as const,
                                     log: (m) => driverLog.push(m), now: () => now });
  t.teardown(() => driver.close());
  const lines: string[] = [];
  let reqs = 0;
  const dev = driver.device(5, 51712, () => ({ rd_req: reqs }), (m) => lines.push(m));
  const other = driver.device(6, 51712, () => ({ rd_req: 0 }), () => undefined);
  const file = deviceStatisticsPath(rundir, 'vbd', 5, 51712);
  t.equal(file, join(rundir, 'xen-backend', 'devices', 'vbd-5-51712', 'statistics'));
  t.same(readStatistics(file), { rd_req: 0, rejected: 0, 'rejected.bad_gref': 0, 'rejected.sector_out_of_range': 0 },
    'the file exists from the start, every reason listed');

  for (let i = 0; i < 25; i++) dev.reject('bad_gref', `gref ${i}`);
  t.equal(lines.length, LOG_BURST, `${LOG_BURST} of 25 rejections logged`);
  t.equal(lines[0], 'rejected (bad_gref): gref 0', 'each with its name');
  t.equal(readStatistics(file).rejected, 0, 'the file is written at sync, not at each rejection');
  dev.sync();
  t.same(readStatistics(file), { rd_req: 0, rejected: 25, 'rejected.bad_gref': 25, 'rejected.sector_out_of_range': 0 });
  other.reject('sector_out_of_range', 'x');
  other.sync();
  t.same(readStatistics(driverStatisticsPath(rundir, 'vbd')),
    { devices: 2, rejected: 26, 'rejected.bad_gref': 25, 'rejected.sector_out_of_range': 1 }, 'the driver sums its devices');

  now += LOG_INTERVAL_MS - 1;
  dev.reject('sector_out_of_range', 'still the same window');
  t.equal(lines.length, LOG_BURST, 'nothing more within the window');
  now += 1;
  driver.refresh();
  t.equal(lines.at(-1), `16 more rejections not logged (at most ${LOG_BURST} lines per ${LOG_INTERVAL_MS / 1000} s)`,
    'the refresh after the window says what it held back');
  dev.reject('bad_gref', 'a new window');
  t.equal(lines.at(-1), 'rejected (bad_gref): a new window', 'and the next window logs again');

  reqs = 7;
  driver.refresh();
  t.equal(readStatistics(file).rd_req, 7, 'the refresh writes the other counters');
  t.equal(readStatistics(file).rejected, 27);

  dev.remove();
  t.notOk(existsSync(file), 'a removed device\'s file goes');
  t.same(readStatistics(driverStatisticsPath(rundir, 'vbd')),
    { devices: 1, rejected: 28, 'rejected.bad_gref': 26, 'rejected.sector_out_of_range': 2 }, 'its rejections stay in the total');
  t.match(readFileSync(driverStatisticsPath(rundir, 'vbd'), 'utf8'), /^devices 1\nrejected 28\n/, '`name value` lines');
  t.same(driverLog, [], 'no write failed');
});
