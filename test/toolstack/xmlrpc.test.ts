// XML-RPC codec round trips, faults, and the HTTP transport on a Unix socket.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  encodeMethodCall, decodeMethodCall, encodeMethodResponse, decodeMethodResponse, encodeFault,
  xmlrpcCall, createXmlRpcServer, XmlRpcFault, XmlRpcProtocolError, type XmlRpcValue,
} from '../../shared/xmlrpc.js';

t.test('values round trip through methodCall and methodResponse', async (t) => {
  const table: Array<[string, XmlRpcValue]> = [
    ['int', 42], ['negative', -7], ['zero', 0], ['double', 1.5], ['big int as double', 2 ** 40],
    ['true', true], ['false', false], ['nil', null], ['empty string', ''],
    ['markup', '<a href="x">&amp;</a>'], ['control chars', 'esc\x1b[0m\r\n\t\x00end'], ['unicode', 'λ→✓'],
    ['bytes', new Uint8Array([0, 1, 2, 255])],
    ['array', [1, 'two', [3], { four: 4 }]], ['empty array', []],
    ['struct', { name: 'Domain-0', domid: 0, nested: { list: [true, null] } }], ['empty struct', {}],
    ['proto key', JSON.parse('{"__proto__": 1}')],
  ];
  for (const [what, v] of table) {
    const call = decodeMethodCall(encodeMethodCall('xend.test', [v, 'tail']));
    t.same(call, { method: 'xend.test', params: [v, 'tail'] }, `call: ${what}`);
    t.same(decodeMethodResponse(encodeMethodResponse(v)), v, `response: ${what}`);
  }
});

t.test('decodes what other implementations send', async (t) => {
  const xml = `<?xml version='1.0'?>
<methodResponse>
<params>
<param>
<value><array><data>
<value>bare string</value>
<value><i4>12</i4></value>
<value><string>a &lt;&#65;&gt;</string></value>
<value><base64>aGVs
bG8=</base64></value>
</data></array></value>
</param>
</params>
</methodResponse>`;
  t.same(decodeMethodResponse(xml), ['bare string', 12, 'a <A>', new Uint8Array(Buffer.from('hello'))]);
  t.same(decodeMethodCall('<methodCall><methodName>system.listMethods</methodName></methodCall>'), { method: 'system.listMethods', params: [] });
});

t.test('faults use faultCode and faultString', async (t) => {
  t.throws(() => decodeMethodResponse(encodeFault(3, "Domain 'x' does not exist.")),
    new XmlRpcFault(3, "Domain 'x' does not exist."));
  t.throws(() => decodeMethodResponse(encodeFault(2, 'no')), { name: 'XmlRpcFault', faultCode: 2, faultString: 'no' });
});

t.test('malformed documents are protocol errors', async (t) => {
  for (const bad of [
    '<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>',
    '<methodResponse><params><param><value><boolean>2</boolean></value></param></params></methodResponse>',
    '<methodResponse><params></params></methodResponse>',
    '<methodResponse><params><param><value><int>1</int></value></param>',
    '<!DOCTYPE x [<!ENTITY a "b">]><methodResponse/>',
    '<methodCall><methodName>bad name</methodName></methodCall>',
    '<methodResponse><params><param><value><blob/></value></param></params></methodResponse>',
  ]) t.throws(() => (bad.startsWith('<methodCall') ? decodeMethodCall(bad) : decodeMethodResponse(bad)), XmlRpcProtocolError, bad);
});

t.test('client and server over a Unix socket', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenemu-xmlrpc-'));
  const socketPath = path.join(dir, 'rpc.sock');
  const server = createXmlRpcServer(async (method, params) => {
    if (method === 'echo') return params;
    if (method === 'fail') throw new XmlRpcFault(2, 'generic failure');
    if (method === 'crash') throw new Error('handler bug');
    throw new XmlRpcFault(1, `unknown method ${method}`);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(async () => {
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  t.same(await xmlrpcCall({ socketPath }, 'echo', [1, 'x', { a: [null] }]), [1, 'x', { a: [null] }]);
  await t.rejects(xmlrpcCall({ socketPath }, 'fail'), new XmlRpcFault(2, 'generic failure'));
  await t.rejects(xmlrpcCall({ socketPath }, 'crash'), new XmlRpcFault(1, 'handler bug'));
  await t.rejects(xmlrpcCall({ socketPath }, 'nosuch'), new XmlRpcFault(1, 'unknown method nosuch'));
  await t.rejects(xmlrpcCall({ socketPath: path.join(dir, 'none.sock') }, 'echo'), { code: 'ENOENT' });
});
