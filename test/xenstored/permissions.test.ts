// Xen's permission model from a guest's ring connection (xenstore.txt
// "Permissions"; perm_for_conn): owner and Domain-0 have every right, the
// first entry is everyone else's default, SET_TARGET lends a target's rights.
import t from 'tap';
import { startXenstored, code, home } from '../helpers/xenstored.js';



t.test('a guest in its own subtree and outside it', async (t) => {
  const xs = await startXenstored(t);
  const dom0 = await xs.connect();
  await home(dom0, 5);
  await dom0.write('/local/domain/0/secret', 'x');
  await dom0.write('/public', 'hello');
  await dom0.setPerms('/public', ['r0']);
  const g = (await xs.guest(5)).client;

  await g.write('data/x', '1');
  t.equal(await g.readString('/local/domain/5/data/x'), '1', 'relative paths are its home');
  t.same(await g.getPerms('data/x'), ['n5', 'r0'], 'what it creates it owns, inheriting the rest');
  t.equal(await code(g.read('/local/domain/0/secret')), 'EACCES');
  t.equal(await code(g.read('/local/domain/0/secret/below')), 'EACCES', 'no existence leak under unreadable parent');
  t.equal(await code(g.read('/local/domain/5/nothing')), 'ENOENT', 'plain ENOENT in its own tree');
  t.equal(await g.readString('/public'), 'hello', 'r0 lets everyone read');
  t.equal(await code(g.write('/public', 'defaced')), 'EACCES');
  t.equal(await code(g.write('/public/child', 'x')), 'EACCES', 'creating needs write on the parent');
  t.equal(await code(g.write('/newtop', 'x')), 'EACCES');
  t.equal(await code(g.rm('/public')), 'EACCES');
  t.equal(await code(g.directory('/local/domain/0')), 'EACCES');

  t.equal(await code(g.setPerms('data/x', ['n5', 'r7'])), 'OK', 'the owner may change perms');
  t.equal(await code(g.setPerms('data/x', ['n6'])), 'EPERM', 'but not give the node away');
  t.equal(await code(g.setPerms('/public', ['b5'])), 'EACCES', 'a non-owner may not');
});

t.test('privileged operations are refused to guests', async (t) => {
  const xs = await startXenstored(t);
  const g = (await xs.guest(5)).client;
  t.equal(await code(g.introduce(9, 1, 1)), 'EACCES');
  t.equal(await code(g.release(5)), 'EACCES');
  t.equal(await code(g.resume(5)), 'EACCES');
  t.equal(await code(g.setTarget(5, 0)), 'EACCES');
  t.equal(await code(g.isDomainIntroduced(5)), 'EACCES');
  t.equal(await code(g.control('check')), 'EACCES');
  t.equal(await g.getDomainPath(5), '/local/domain/5', 'GET_DOMAIN_PATH is for everyone');
});

t.test('per-domain entries and SET_TARGET', async (t) => {
  const xs = await startXenstored(t);
  const dom0 = await xs.connect();
  await home(dom0, 5);
  await home(dom0, 6);
  await home(dom0, 7);
  await dom0.write('/local/domain/5/shared', 'for 6');
  await dom0.setPerms('/local/domain/5/shared', ['n5', 'r6']);
  await dom0.write('/local/domain/5/private', 'only 5');
  const g6 = (await xs.guest(6)).client;
  const g7 = (await xs.guest(7)).client;
  await xs.guest(5);
  t.equal(await g6.readString('/local/domain/5/shared'), 'for 6', 'an entry for 6 lets 6 read');
  t.equal(await code(g7.read('/local/domain/5/shared')), 'EACCES', 'others get the default');
  t.equal(await code(g6.write('/local/domain/5/shared', 'x')), 'EACCES', 'r is not w');
  t.equal(await code(g7.read('/local/domain/5/private')), 'EACCES');
  await dom0.setTarget(7, 5); // 7 is 5's device model
  t.equal(await g7.readString('/local/domain/5/private'), 'only 5', 'a device model has its target\'s rights');
  await g7.write('/local/domain/5/device-model/state', 'running');
  t.equal(await code(g7.read('/local/domain/6')), 'EACCES', 'but only its target\'s');
});

t.test('watch events only for nodes the watcher may read', async (t) => {
  const xs = await startXenstored(t);
  const dom0 = await xs.connect();
  await home(dom0, 5);
  await dom0.write('/w/open', '');
  await dom0.setPerms('/w', ['r0']);
  await dom0.setPerms('/w/open', ['r0']);
  await dom0.mkdir('/w/priv');
  await dom0.setPerms('/w/priv', ['n0']);
  const g = (await xs.guest(5)).client;
  const seen: string[] = [];
  await g.watch('/w', 'tok', (p) => seen.push(p));
  await g.directory('/w');
  seen.length = 0;
  // Xen's watch_permitted: the watcher may read the node as it was, or as it
  // is, or its parent. The guest's own requests after each change are sync
  // points: events queued before a reply arrive before it.
  await dom0.write('/w/open', 'visible');
  await dom0.write('/w/hidden', 'secret'); // inherits r0 from /w
  await dom0.setPerms('/w/hidden', ['n0']); // it could read it before
  await dom0.write('/w/hidden', 'changed again'); // it can read the parent
  await dom0.write('/w/priv/deep', 'secret'); // neither the node nor /w/priv
  await dom0.setPerms('/w/priv/deep', ['n0', 'r9']);
  await g.directory('/w');
  t.same(seen, ['/w/open', '/w/hidden', '/w/hidden', '/w/hidden'], 'nothing of a node under a parent it may not read');
});
