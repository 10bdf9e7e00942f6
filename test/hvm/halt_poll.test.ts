// The HVM vCPU's halt polling window (processes/domu/hvm/vcpu_thread.ts HaltPoll).
import t from 'tap';
import { HaltPoll } from '../../processes/domu/hvm/vcpu_thread.js';

t.test('a timer due within 2 ms is slept through, holding the slice', (t) => {
  const h = new HaltPoll();
  t.equal(h.window(0.2), 0.2);
  t.equal(h.window(1.5), 1.5);
  t.equal(h.window(2.5), 2, 'a later one: the poll window, then a block');
  t.end();
});

t.test('polls that time out close the window; one halt in 32 probes; a hit opens it again', (t) => {
  const h = new HaltPoll();
  t.equal(h.window(10), 2, 'starts fully open');
  for (let i = 0; i < 7; i++) h.result(false);
  t.ok(h.window(10) < 0.03 || h.window(10) === 0, 'halved below the minimum');
  let probes = 0;
  for (let i = 0; i < 64; i++) if (h.window(10) > 0) probes++;
  t.equal(probes, 2, 'a full probe every 32 halts');
  h.result(true);
  t.equal(h.window(10), 2, 'a wake within the poll opens it fully');
  t.equal(h.hits, 1);
  t.equal(h.polls, 8);
  t.end();
});
