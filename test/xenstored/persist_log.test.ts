// The durability log's format (persist.ts): records stored through the
// file's mapping read back the same as records written with write(2), across
// the steps the file grows by, and the zeros a killed daemon leaves after
// its last record end the log and are dropped on load.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Persistence, type LogRecord } from '../../processes/dom0/xenstored/persist.js';

function tempDir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'xenemu-persist-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** About 2.5 MiB of records: the log file grows by several steps. */
function batches(): LogRecord[][] {
  const out: LogRecord[][] = [];
  for (let i = 0; i < 20_000; i++) {
    const b: LogRecord[] = [{ t: 'n', p: `/local/domain/${i % 7}/data/n${i}`, v: 'x'.repeat(i % 200), perms: 'n0' }];
    if (i % 3 === 0) b.push({ t: 'd', p: `/gone/${i}` });
    out.push(b);
  }
  return out;
}

t.test('mapped and written logs hold the same bytes and read back whole', async (t) => {
  const all = batches();
  const files: Buffer[] = [];
  for (const mapped of [true, false]) {
    const dir = tempDir(t);
    const p = new Persistence(dir, 1 << 30, mapped);
    t.same(p.load().batches, [], 'a new log is empty');
    for (const b of all) p.append(b);
    p.close();
    files.push(readFileSync(join(dir, 'xenstored.log')));
    const q = new Persistence(dir, 1 << 30, mapped);
    t.same(q.load().batches, all, `${mapped ? 'mapped' : 'write(2)'}: every batch back, in order`);
    q.close();
  }
  t.ok(files[0]!.length > 2 << 20, `the log spans several steps (${files[0]!.length} bytes)`);
  t.ok(files[0]!.equals(files[1]!), 'byte for byte the same file');
});

t.test('a log left unclosed (killed daemon) ends at its last record', async (t) => {
  const dir = tempDir(t);
  const p = new Persistence(dir, 1 << 30);
  p.load();
  const all = batches().slice(0, 500);
  for (const b of all) p.append(b);
  // No close(): the file keeps the zeros it grew by, as after SIGKILL.
  const path = join(dir, 'xenstored.log');
  t.equal(statSync(path).size, 1 << 20, 'the file grew by a step');
  const q = new Persistence(dir, 1 << 30);
  t.same(q.load().batches, all, 'every record back');
  const end = statSync(path).size;
  t.ok(end < 1 << 20, `the zeros are dropped (${end} bytes)`);
  // Appending goes on where the records end.
  q.append([{ t: 'd', p: '/after' }]);
  q.close();
  const r = new Persistence(dir, 1 << 30);
  t.same(r.load().batches, [...all, [{ t: 'd', p: '/after' }]], 'a record appended after the reload follows the others');
  r.close();
});

t.test('compaction empties the mapped log; appends after it read back', async (t) => {
  const dir = tempDir(t);
  const p = new Persistence(dir, 1 << 30);
  p.load();
  for (const b of batches().slice(0, 3000)) p.append(b);
  p.compact({ version: 1, nodes: [['/', '', 'n0']], domains: [] });
  t.equal(statSync(join(dir, 'xenstored.log')).size, 0, 'the log is empty after compaction');
  p.append([{ t: 'n', p: '/a', v: 'b', perms: 'n0' }]);
  p.close();
  const q = new Persistence(dir, 1 << 30);
  const { snapshot, batches: back } = q.load();
  t.same(snapshot?.nodes, [['/', '', 'n0']], 'the snapshot');
  t.same(back, [[{ t: 'n', p: '/a', v: 'b', perms: 'n0' }]], 'only what came after it');
  q.close();
});
