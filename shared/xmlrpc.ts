// XML-RPC (http://xmlrpc.com/spec.md), as spoken between `xm` and xend:
// methodCall / methodResponse / fault, values int|i4, boolean, string,
// double, base64, array, struct and the common <nil/> extension, carried by
// HTTP POST on a Unix socket (or loopback TCP).
//
// Faults follow xend's convention (xen/xend/XendClient.py): a struct
// { faultCode: int, faultString: string } with codes
//   ERROR_INTERNAL = 1, ERROR_GENERIC = 2, ERROR_INVALID_DOMAIN = 3.
//
// Strings are XML-escaped; characters XML 1.0 cannot carry (control
// characters other than TAB/LF) are written as numeric references so that
// nothing is lost, and this decoder accepts them. Raw console bytes travel as
// base64 (Uint8Array), which is safe for any peer.
import * as http from 'node:http';

export type XmlRpcValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | XmlRpcValue[]
  | { [key: string]: XmlRpcValue };

/**
 * What the encoder takes: XmlRpcValue's kinds, with read-only arrays and
 * tuples and with struct members that may be undefined (left out on the
 * wire). Records of a typed protocol are `type` aliases so that they are
 * assignable to the struct form (an interface has no index signature).
 */
export type XmlRpcEncodable =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | readonly XmlRpcEncodable[]
  | { readonly [key: string]: XmlRpcEncodable | undefined };

export const XMLRPC_ERROR_INTERNAL = 1;
export const XMLRPC_ERROR_GENERIC = 2;
export const XMLRPC_ERROR_INVALID_DOMAIN = 3;

export class XmlRpcFault extends Error {
  constructor(readonly faultCode: number, readonly faultString: string) {
    super(faultString);
    this.name = 'XmlRpcFault';
  }
}

/** Malformed XML-RPC text (not a fault: the peer broke the protocol). */
export class XmlRpcProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlRpcProtocolError';
  }
}

// ---------------------------------------------------------------- encoding

function escapeXml(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '&') out += '&amp;';
    else if ((c < 0x20 && c !== 0x09 && c !== 0x0a) || (c >= 0x7f && c < 0xa0) || c === 0xfffe || c === 0xffff) out += `&#x${c.toString(16)};`;
    else out += ch;
  }
  return out;
}

function encodeValue(v: XmlRpcEncodable | undefined): string {
  if (v === null || v === undefined) return '<value><nil/></value>';
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) return `<value><int>${v}</int></value>`;
    if (!Number.isFinite(v)) throw new TypeError(`XML-RPC cannot carry ${v}`);
    return `<value><double>${v}</double></value>`;
  }
  if (typeof v === 'string') return `<value><string>${escapeXml(v)}</string></value>`;
  if (v instanceof Uint8Array) return `<value><base64>${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}</base64></value>`;
  if (Array.isArray(v)) return `<value><array><data>${v.map(encodeValue).join('')}</data></array></value>`;
  if (typeof v === 'object') {
    const members = Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `<member><name>${escapeXml(k)}</name>${encodeValue(x)}</member>`);
    return `<value><struct>${members.join('')}</struct></value>`;
  }
  throw new TypeError(`XML-RPC cannot carry a ${typeof v}`);
}

const XML_DECL = '<?xml version="1.0"?>\n';

export function encodeMethodCall(method: string, params: readonly XmlRpcEncodable[]): string {
  const ps = params.map((p) => `<param>${encodeValue(p)}</param>`).join('');
  return `${XML_DECL}<methodCall><methodName>${escapeXml(method)}</methodName><params>${ps}</params></methodCall>\n`;
}

export function encodeMethodResponse(value: XmlRpcEncodable): string {
  return `${XML_DECL}<methodResponse><params><param>${encodeValue(value)}</param></params></methodResponse>\n`;
}

export function encodeFault(faultCode: number, faultString: string): string {
  return `${XML_DECL}<methodResponse><fault>${encodeValue({ faultCode, faultString })}</fault></methodResponse>\n`;
}

// ---------------------------------------------------------------- decoding

interface Elem { name: string; children: Array<Elem | string> }

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    const r = ENTITIES[e];
    if (r === undefined) throw new XmlRpcProtocolError(`unknown entity ${m}`);
    return r;
  });
}

/** A small XML reader for the element-and-text subset XML-RPC uses. */
function parseXml(text: string): Elem {
  let i = 0;
  const root: Elem = { name: '#root', children: [] };
  const stack: Elem[] = [root];
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    if (lt < 0) { stack[stack.length - 1]!.children.push(unescapeXml(text.slice(i))); break; }
    if (lt > i) stack[stack.length - 1]!.children.push(unescapeXml(text.slice(i, lt)));
    if (text.startsWith('<?', lt)) { i = skipTo(text, '?>', lt) ; continue; }
    if (text.startsWith('<!--', lt)) { i = skipTo(text, '-->', lt); continue; }
    if (text.startsWith('<![CDATA[', lt)) {
      const end = text.indexOf(']]>', lt);
      if (end < 0) throw new XmlRpcProtocolError('unterminated CDATA');
      stack[stack.length - 1]!.children.push(text.slice(lt + 9, end));
      i = end + 3;
      continue;
    }
    if (text.startsWith('<!', lt)) throw new XmlRpcProtocolError('DTDs are not accepted');
    const gt = text.indexOf('>', lt);
    if (gt < 0) throw new XmlRpcProtocolError('unterminated tag');
    const tag = text.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const top = stack.pop();
      if (!top || top.name !== name || stack.length === 0) throw new XmlRpcProtocolError(`unexpected </${name}>`);
      continue;
    }
    const selfClose = tag.endsWith('/');
    const m = /^([A-Za-z_][-A-Za-z0-9_.:]*)/.exec(tag);
    if (!m) throw new XmlRpcProtocolError(`bad tag <${tag}>`);
    const el: Elem = { name: m[1]!, children: [] };
    stack[stack.length - 1]!.children.push(el);
    if (!selfClose) stack.push(el);
  }
  if (stack.length !== 1) throw new XmlRpcProtocolError(`unclosed <${stack[stack.length - 1]!.name}>`);
  const els = root.children.filter((c): c is Elem => typeof c !== 'string');
  if (els.length !== 1) throw new XmlRpcProtocolError('expected one document element');
  return els[0]!;
}

function skipTo(text: string, end: string, from: number): number {
  const j = text.indexOf(end, from);
  if (j < 0) throw new XmlRpcProtocolError(`missing ${end}`);
  return j + end.length;
}

const elems = (e: Elem) => e.children.filter((c): c is Elem => typeof c !== 'string');
const textOf = (e: Elem) => e.children.filter((c): c is string => typeof c === 'string').join('');

function only(e: Elem, name: string): Elem {
  const cs = elems(e).filter((c) => c.name === name);
  if (cs.length !== 1) throw new XmlRpcProtocolError(`<${e.name}> needs exactly one <${name}>`);
  return cs[0]!;
}

function decodeValue(v: Elem): XmlRpcValue {
  if (v.name !== 'value') throw new XmlRpcProtocolError(`expected <value>, got <${v.name}>`);
  const inner = elems(v);
  if (inner.length === 0) return textOf(v); // a bare <value>text</value> is a string
  if (inner.length !== 1) throw new XmlRpcProtocolError('<value> holds more than one type');
  const t = inner[0]!;
  const s = textOf(t);
  switch (t.name) {
    case 'int': case 'i4': case 'i8': {
      if (!/^\s*[-+]?[0-9]+\s*$/.test(s)) throw new XmlRpcProtocolError(`bad <${t.name}> ${JSON.stringify(s)}`);
      return parseInt(s, 10);
    }
    case 'boolean': {
      const b = s.trim();
      if (b !== '0' && b !== '1') throw new XmlRpcProtocolError(`bad <boolean> ${JSON.stringify(s)}`);
      return b === '1';
    }
    case 'double': {
      const n = Number(s.trim());
      if (s.trim() === '' || Number.isNaN(n)) throw new XmlRpcProtocolError(`bad <double> ${JSON.stringify(s)}`);
      return n;
    }
    case 'string': return s;
    case 'dateTime.iso8601': return s.trim();
    case 'base64': return new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'base64'));
    case 'nil': return null;
    case 'array': return elems(only(t, 'data')).map(decodeValue);
    case 'struct': {
      const out: { [k: string]: XmlRpcValue } = {};
      for (const m of elems(t)) {
        if (m.name !== 'member') throw new XmlRpcProtocolError(`expected <member>, got <${m.name}>`);
        const key = textOf(only(m, 'name'));
        // Own property, even for keys like __proto__.
        Object.defineProperty(out, key, { value: decodeValue(only(m, 'value')), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default:
      throw new XmlRpcProtocolError(`unknown type <${t.name}>`);
  }
}

export function decodeMethodCall(xml: string): { method: string; params: XmlRpcValue[] } {
  const doc = parseXml(xml);
  if (doc.name !== 'methodCall') throw new XmlRpcProtocolError(`expected <methodCall>, got <${doc.name}>`);
  const method = textOf(only(doc, 'methodName')).trim();
  if (!/^[A-Za-z0-9_.:/]+$/.test(method)) throw new XmlRpcProtocolError(`bad method name ${JSON.stringify(method)}`);
  const ps = elems(doc).find((e) => e.name === 'params');
  const params = ps ? elems(ps).map((p) => {
    if (p.name !== 'param') throw new XmlRpcProtocolError(`expected <param>, got <${p.name}>`);
    return decodeValue(only(p, 'value'));
  }) : [];
  return { method, params };
}

/** Decode a methodResponse: the value, or a thrown XmlRpcFault. */
export function decodeMethodResponse(xml: string): XmlRpcValue {
  const doc = parseXml(xml);
  if (doc.name !== 'methodResponse') throw new XmlRpcProtocolError(`expected <methodResponse>, got <${doc.name}>`);
  const fault = elems(doc).find((e) => e.name === 'fault');
  if (fault) {
    const f = decodeValue(only(fault, 'value'));
    if (typeof f !== 'object' || f === null || Array.isArray(f) || f instanceof Uint8Array) throw new XmlRpcProtocolError('fault is not a struct');
    const code = (f as Record<string, XmlRpcValue>).faultCode;
    const str = (f as Record<string, XmlRpcValue>).faultString;
    throw new XmlRpcFault(typeof code === 'number' ? code : XMLRPC_ERROR_INTERNAL, typeof str === 'string' ? str : String(str));
  }
  return decodeValue(only(only(only(doc, 'params'), 'param'), 'value'));
}

// ---------------------------------------------------------------- transport

/** Where an XML-RPC server listens: a Unix socket path, or loopback TCP. */
export type XmlRpcEndpoint = { socketPath: string } | { host: string; port: number };

const MAX_BODY = 16 * 1024 * 1024;

function readBody(stream: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new XmlRpcProtocolError('body too large')); stream.destroy(); return; }
      chunks.push(c);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}

/** Call one method; resolves to its value, rejects with XmlRpcFault or a transport error. */
export function xmlrpcCall(endpoint: XmlRpcEndpoint, method: string, params: readonly XmlRpcEncodable[] = [], path = '/RPC2'): Promise<XmlRpcValue> {
  const body = Buffer.from(encodeMethodCall(method, params), 'utf8');
  return new Promise((resolve, reject) => {
    const req = http.request({
      ...endpoint,
      path,
      method: 'POST',
      agent: false,
      headers: { 'Content-Type': 'text/xml', 'Content-Length': body.length, Connection: 'close' },
    }, (res) => {
      readBody(res).then((text) => {
        if (res.statusCode !== 200) throw new XmlRpcProtocolError(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
        resolve(decodeMethodResponse(text));
      }).catch(reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A method handler: returns a value, or throws (XmlRpcFault for a chosen code). */
export type XmlRpcHandler = (method: string, params: XmlRpcValue[]) => XmlRpcEncodable | Promise<XmlRpcEncodable>;

/**
 * An http.Server answering XML-RPC POSTs with `handler`. An XmlRpcFault
 * thrown by the handler becomes that fault; any other error becomes
 * ERROR_INTERNAL with its message, so a bad request never stops the server.
 */
export function createXmlRpcServer(handler: XmlRpcHandler): http.Server {
  return http.createServer((req, res) => {
    const reply = (status: number, text: string) => {
      res.writeHead(status, { 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method !== 'POST') { reply(405, 'XML-RPC wants POST\n'); return; }
    readBody(req)
      .then(async (text) => {
        let call: { method: string; params: XmlRpcValue[] };
        try {
          call = decodeMethodCall(text);
        } catch (e) {
          reply(200, encodeFault(XMLRPC_ERROR_INTERNAL, `bad request: ${(e as Error).message}`));
          return;
        }
        try {
          reply(200, encodeMethodResponse(await handler(call.method, call.params)));
        } catch (e) {
          if (e instanceof XmlRpcFault) reply(200, encodeFault(e.faultCode, e.faultString));
          else reply(200, encodeFault(XMLRPC_ERROR_INTERNAL, (e as Error)?.message ?? String(e)));
        }
      })
      .catch(() => { if (!res.headersSent) reply(400, 'bad request\n'); });
  });
}
