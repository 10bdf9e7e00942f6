// The guest shell's line discipline and word splitting, in-process.
import t from 'tap';
import { LineDiscipline } from '../../processes/domu/tty.js';
import { splitWords } from '../../processes/domu/shell.js';

function tty() {
  const echoed: string[] = [];
  const lines: string[] = [];
  const interrupts: boolean[] = [];
  const ld = new LineDiscipline({
    echo: (x) => echoed.push(typeof x === 'string' ? x : Buffer.from(x).toString('utf8')),
    line: (l) => lines.push(l),
    interrupt: (r) => interrupts.push(r),
  });
  const feed = (s: string) => ld.input(Buffer.from(s, 'utf8'));
  return { ld, feed, echoed, lines, interrupts };
}

const cases: [string, string, string[]][] = [
  ['plain line, CR', 'ls\r', ['ls']],
  ['CR LF is one Enter', 'a\r\nb\r', ['a']], // b waits as type-ahead while "a" runs
  ['backspace and DEL', 'abx\x08c\x7f\x7fd\r', ['ad']],
  ['Ctrl-U kills the line', 'rm -rf\x15ok\r', ['ok']],
  ['arrow keys are dropped', 'e\x1b[Acho\r', ['echo']],
  ['UTF-8 erased as one character', 'h\u00e9\x7f\r', ['h']],
  ['other control characters ignored', 'a\x01\x02b\r', ['ab']],
];

for (const [name, input, want] of cases) {
  t.test(name, async (t) => {
    const x = tty();
    x.feed(input);
    t.same(x.lines, want);
  });
}

t.test('Ctrl-C discards the line, or interrupts a running command; type-ahead waits', async (t) => {
  const x = tty();
  x.feed('abc\x03');
  t.same(x.lines, []);
  t.same(x.interrupts, [false]);
  t.match(x.echoed.join(''), /abc\^C\r\n$/);
  x.feed('burn 9\r');
  t.ok(x.ld.running);
  x.feed('echo hi\r\x03');
  t.same(x.interrupts, [false, true], 'Ctrl-C reaches the running command');
  t.same(x.lines, ['burn 9']);
  x.ld.done();
  t.same(x.lines, ['burn 9', 'echo hi'], 'the type-ahead line runs after');
});

t.test('a command reading the terminal gets the lines typed while it runs, edited and echoed; Ctrl-C still interrupts', async (t) => {
  const x = tty();
  x.feed('nc\r');
  t.same(x.lines, ['nc']);
  const read: string[] = [];
  x.ld.reader = (l) => read.push(l);
  x.echoed.length = 0;
  x.feed('hellx\x7fo\rpart');
  t.same(read, ['hello\n'], 'one line, with its newline, after the erase');
  t.equal(x.echoed.join(''), 'hellx\b \bo\r\npart', 'echoed as typed');
  x.feed('\x03');
  t.same(x.interrupts, [true], 'Ctrl-C interrupts the command');
  x.ld.done();
  t.equal(x.ld.reader, null, 'the reader ends with the command');
  x.feed('ls\r');
  t.same(x.lines, ['nc', 'ls'], 'the partial line was dropped at the interrupt; the next line is a command again');
});

t.test('echo is one write per input chunk', async (t) => {
  const x = tty();
  x.feed('hello');
  t.same(x.echoed, ['hello']);
});

const words: [string, string[] | null][] = [
  ['echo  a   b', ['echo', 'a', 'b']],
  ['echo "a  b" c', ['echo', 'a  b', 'c']],
  ["echo 'x \"y\"'", ['echo', 'x "y"']],
  ['echo a\\ b', ['echo', 'a b']],
  ['echo ""', ['echo', '']],
  ['echo "unterminated', null],
  ['', []],
];
t.test('splitWords', async (t) => {
  for (const [line, want] of words) t.same(splitWords(line), want, JSON.stringify(line));
});
