// Every xs_wire operation with the semantics of docs/misc/xenstore.txt.
import t from 'tap';
import { startXenstored, code } from '../helpers/xenstored.js';
import { RawXs, text } from '../helpers/xs_raw.js';
import { XS_DIRECTORY_PART } from '../../shared/abi/io/xs_wire.js';


t.test('read, write, mkdir, rm, directory', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  await c.write('/tool/x/y', 'v');
  t.same(await c.directory('/tool/x'), ['y'], 'write creates parents');
  t.equal(await c.readString('/tool/x'), '', 'parents are empty');
  await c.write('/tool/x/y', Buffer.from([0, 1, 2, 255]));
  t.same([...(await c.read('/tool/x/y'))], [0, 1, 2, 255], 'values are binary');
  await c.write('/tool/x/empty', '');
  t.equal(await c.readString('/tool/x/empty'), '');
  await c.mkdir('/tool/dir');
  await c.mkdir('/tool/dir'); // existing: fine
  t.same(await c.directory('/tool'), ['xenstored', 'x', 'dir'], 'children in creation order (after /tool/xenstored, there from the start)');
  t.equal(await code(c.rm('/tool/x/nothing')), 'OK', 'rm of absent child of existing parent is fine');
  t.equal(await code(c.rm('/tool/nope/nothing')), 'ENOENT');
  t.equal(await code(c.rm('/')), 'EINVAL', 'root cannot be removed');
  await c.rm('/tool/x');
  t.equal(await code(c.read('/tool/x/y')), 'ENOENT', 'rm is recursive');
  t.same(await c.directory('/tool'), ['xenstored', 'dir']);
  t.equal(await code(c.directory('/missing')), 'ENOENT');
});

t.test('relative paths are under /local/domain/<caller>', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  await c.write('name', 'Domain-0');
  t.equal(await c.readString('/local/domain/0/name'), 'Domain-0');
  t.equal(await c.readString('name'), 'Domain-0');
  t.equal(await c.getDomainPath(7), '/local/domain/7');
});

t.test('path rules', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const bad = ['/a//b', '/a/', '/a b', '/a\\b', '/ü', '/a.b', '@bad', '/' + 'x'.repeat(2048 + 1)];
  for (const p of bad) t.equal(await code(c.write(p, 'v')), 'EINVAL', `write ${JSON.stringify(p.slice(0, 20))}`);
  const good = ['/a-b_c@d/0', '/' + 'x'.repeat(2048 - 1)];
  for (const p of good) t.equal(await code(c.write(p, 'v')), 'OK', `write ${p.slice(0, 20)}`);
  // A relative path may be XENSTORE_REL_PATH_MAX long past its /local/domain/N/ prefix.
  t.equal(await code(c.write('r'.repeat(2048), 'v')), 'OK');
  t.equal(await code(c.write('r'.repeat(2049), 'v')), 'EINVAL');
});

t.test('directory_part pages through a large directory', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  const names: string[] = [];
  for (let i = 0; i < 600; i++) names.push(`child-number-${i}`);
  await Promise.all(names.map((n) => c.write(`/big/${n}`, '')));
  t.equal(await code(c.directory('/big')), 'E2BIG', 'DIRECTORY refuses over 4096 bytes');
  const got: string[] = [];
  let off = 0;
  let gen: string | undefined;
  for (;;) {
    const part = await c.directoryPart('/big', off);
    if (gen !== undefined) t.equal(part.gen, gen, 'generation steady while unchanged');
    gen = part.gen;
    got.push(...part.names);
    off += part.names.reduce((a, n) => a + Buffer.byteLength(n) + 1, 0);
    if (part.done) break;
  }
  t.same(got, names);
  await c.write('/big/another', '');
  t.not((await c.directoryPart('/big', 0)).gen, gen, 'generation changes with the children');
  const raw = await RawXs.open(xs.socketPath);
  t.teardown(() => raw.close());
  // Xen's send_directory_part: past the end, the generation and the empty
  // list; libxenstore restarts on a new generation but gives up on an error.
  const gen2 = (await c.directoryPart('/big', 0)).gen;
  for (const off of ['999999', String(Buffer.byteLength(names.join('\0') + '\0another\0'))]) {
    const m = await raw.call(XS_DIRECTORY_PART, `/big\x00${off}\x00`);
    t.same([m.type, text(m)], [XS_DIRECTORY_PART, `${gen2}\0\0`], `offset ${off}, at or past the end`);
  }
});

t.test('get_perms and set_perms', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  await c.write('/p/a', 'x');
  t.same(await c.getPerms('/p/a'), ['n0'], 'default: owned by dom0, nobody else');
  await c.setPerms('/p', ['n5', 'r7', 'b9']);
  await c.write('/p/b', 'y');
  t.same(await c.getPerms('/p/b'), ['n5', 'r7', 'b9'], 'children inherit on creation');
  t.same(await c.getPerms('/p/a'), ['n0'], 'existing children keep theirs');
  for (const bad of [[], ['x1'], ['r'], ['r-1'], ['r99999'], ['rr1']]) {
    t.equal(await code(c.setPerms('/p', bad)), 'EINVAL', `perms ${JSON.stringify(bad)}`);
  }
  t.equal(await code(c.setPerms('/nope', ['n0'])), 'ENOENT');
});

t.test('domain operations need privilege and introduced domains', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  t.equal(await c.isDomainIntroduced(0), true, 'Domain-0 always is');
  t.equal(await c.isDomainIntroduced(3), false);
  t.equal(await code(c.release(3)), 'ENOENT');
  t.equal(await code(c.resume(3)), 'ENOENT');
  t.equal(await code(c.setTarget(3, 4)), 'ENOENT');
  t.equal(await code(c.introduce(3, 99999, 1)), 'EINVAL', 'a ring page that does not exist');
  const g = await xs.guest(3);
  t.equal(await c.isDomainIntroduced(3), true);
  t.equal(await code(c.introduce(3, g.mfn, 2)), 'OK', 're-introduce with the same page rebinds');
  t.equal(await code(c.introduce(3, g.mfn + 1, 2)), 'EINVAL', 'another page: refused');
  t.equal(await code(c.resume(3)), 'OK');
  await xs.guest(4);
  t.equal(await code(c.setTarget(4, 3)), 'OK');
  t.equal(await code(c.release(3)), 'OK');
  t.equal(await c.isDomainIntroduced(3), false);
});

t.test('control', async (t) => {
  const xs = await startXenstored(t);
  const c = await xs.connect();
  t.equal(await c.control('check'), 'OK');
  t.match(await c.control('help'), /check/);
  t.match(await c.control('quota'), /nodes 1000/);
  t.match(await c.control('stats'), /nodes \d+/);
  t.equal(await code(c.control('no-such-command')), 'EINVAL');
});
