// xl.cfg(5) domain configuration files, as Xen's libxlu reads them
// (tools/libs/util/libxlu_cfg_l.l, libxlu_cfg_y.y, libxlu_disk_l.l) and
// as xl interprets them (tools/xl/xl_parse.c), for the keys xenemu knows.
//
//   # comment
//   name    = "guest1"            strings: '...' (verbatim) or "..." (C escapes)
//   memory  = 256                 integers: decimal or 0x hex
//   disk    = [ 'file:/img,xvda,w',
//               '/img2,raw,xvdb,rw', ]        lists: multi-line, trailing comma
//   vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]; vcpus = 2   (';' separates)
//   extra  += " quiet"            '+=' appends to a string or a list
//
// As in libxlu, a later setting of a key replaces an earlier one, and
// command-line overrides (`xl create cfg name=foo memory=256`) are parsed as
// extra lines after the file, so they win. Unlike the file, an override may
// give a bare word (`name=foo`) where the file would need quotes.
//
// Errors name the file, the line and the key, in libxlu's words:
//   guest.cfg:3: config parsing error near `memory': expected an integer, got `lots'
// Unlike xl, an unknown key is an error, not silently ignored: a typo in a
// key would otherwise quietly give a different domain.

import { checkBootOrder, interpretHvm, type TimerMode } from './xlcfg_hvm.js';

export { TIMER_MODES, type TimerMode } from './xlcfg_hvm.js';

// ---------------------------------------------------------------- values

export type CfgValue =
  | { kind: 'atom'; text: string; quoted: boolean; line: number }
  | { kind: 'list'; items: CfgValue[]; line: number };

export interface CfgSetting {
  key: string;
  op: '=' | '+=';
  value: CfgValue;
  line: number;
  source: string;
}

export class XlCfgError extends Error {
  readonly code = 'XLCFG';
  constructor(readonly file: string, readonly line: number | undefined, readonly near: string, readonly detail: string) {
    super(`${file}${line === undefined || line <= 0 ? '' : `:${line}`}: config parsing error near \`${near}': ${detail}`);
    this.name = 'XlCfgError';
  }
}

// ---------------------------------------------------------------- lexer

type Tok =
  | { t: 'ident'; v: string; line: number }
  | { t: 'atom'; v: string; quoted: boolean; line: number }
  | { t: 'op'; v: '=' | '+=' | '[' | ']' | ',' | ';'; line: number }
  | { t: 'nl'; line: number }
  | { t: 'eof'; line: number };

function tokDesc(tok: Tok): string {
  switch (tok.t) {
    case 'ident': return tok.v;
    case 'atom': return tok.quoted ? JSON.stringify(tok.v) : tok.v;
    case 'op': return tok.v;
    case 'nl': return 'end of line';
    case 'eof': return 'end of file';
  }
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', '"': '"', "'": "'" };

function lex(text: string, file: string, bareWords: boolean, firstLine: number): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = firstLine;
  const err = (near: string, detail: string): never => { throw new XlCfgError(file, line, near, detail); };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') { toks.push({ t: 'nl', line }); line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '#') { while (i < text.length && text[i] !== '\n') i++; continue; }
    if (c === '+' && text[i + 1] === '=') { toks.push({ t: 'op', v: '+=', line }); i += 2; continue; }
    if (c === '=' || c === '[' || c === ']' || c === ',' || c === ';') { toks.push({ t: 'op', v: c, line }); i++; continue; }
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      const nl = text.indexOf('\n', i + 1);
      if (end < 0 || (nl >= 0 && nl < end)) err(text.slice(i, nl < 0 ? undefined : nl), 'unterminated string');
      toks.push({ t: 'atom', v: text.slice(i + 1, end), quoted: true, line });
      i = end + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= text.length || text[j] === '\n') err(text.slice(i, j), 'unterminated string');
        const d = text[j]!;
        if (d === '"') break;
        if (d === '\\') {
          const e = text[j + 1] ?? '';
          if (e in ESCAPES) { v += ESCAPES[e]; j += 2; continue; }
          const hex = /^x([0-9a-fA-F]{1,2})/.exec(text.slice(j + 1, j + 4));
          if (hex) { v += String.fromCharCode(parseInt(hex[1]!, 16)); j += 1 + hex[0].length; continue; }
          const oct = /^[0-7]{1,3}/.exec(text.slice(j + 1, j + 4));
          if (oct) { v += String.fromCharCode(parseInt(oct[0], 8) & 0xff); j += 1 + oct[0].length; continue; }
          err(text.slice(i, j + 2), `invalid escape \`\\${e}' in string`);
        }
        v += d;
        j++;
      }
      toks.push({ t: 'atom', v, quoted: true, line });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c) && !bareWords) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))!;
      toks.push({ t: 'ident', v: m[0], line });
      i += m[0].length;
      continue;
    }
    if (/[0-9-]/.test(c) || (bareWords && /[^\s#'"=\[\],;]/.test(c))) {
      // libxlu's NUMBER token is loose; the value is checked where it is used.
      const m = bareWords ? /^[^\s#'"=\[\],;]+/.exec(text.slice(i))! : /^-?[0-9A-Za-z_.]+/.exec(text.slice(i));
      if (!m) err(c, 'syntax error, unexpected character');
      toks.push({ t: 'atom', v: m![0], quoted: false, line });
      i += m![0].length;
      continue;
    }
    err(c, 'syntax error, unexpected character');
  }
  toks.push({ t: 'eof', line });
  return toks;
}

// ---------------------------------------------------------------- parser

/** Parse xl.cfg text into its settings, in order, without interpreting keys. */
export function parseXlCfgSettings(text: string, file = 'config', firstLine = 1): CfgSetting[] {
  return parseSettings(lex(text, file, false, firstLine), file);
}

function parseSettings(toks: Tok[], file: string): CfgSetting[] {
  let p = 0;
  const peek = () => toks[p]!;
  const next = () => toks[p++]!;
  const unexpected = (tok: Tok, expecting: string): never => {
    throw new XlCfgError(file, tok.line, tokDesc(tok), `syntax error, unexpected ${tokDesc(tok)}, expecting ${expecting}`);
  };
  const skipNl = () => { while (peek().t === 'nl') p++; };

  const value = (): CfgValue => {
    const tok = next();
    if (tok.t === 'atom') return { kind: 'atom', text: tok.v, quoted: tok.quoted, line: tok.line };
    if (tok.t === 'op' && tok.v === '[') {
      const items: CfgValue[] = [];
      skipNl();
      for (;;) {
        const q = peek();
        if (q.t === 'op' && q.v === ']') { p++; break; }
        items.push(value());
        skipNl();
        const sep = next();
        if (sep.t === 'op' && sep.v === ']') break;
        if (!(sep.t === 'op' && sep.v === ',')) unexpected(sep, "',' or ']'");
        skipNl();
      }
      return { kind: 'list', items, line: tok.line };
    }
    return unexpected(tok, "a string, a number or '['");
  };

  const out: CfgSetting[] = [];
  for (;;) {
    const tok = next();
    if (tok.t === 'eof') break;
    if (tok.t === 'nl' || (tok.t === 'op' && tok.v === ';')) continue;
    if (tok.t !== 'ident') unexpected(tok, 'a key');
    const key = (tok as { v: string }).v;
    const op = next();
    if (!(op.t === 'op' && (op.v === '=' || op.v === '+='))) unexpected(op, `'=' after \`${key}'`);
    const v = value();
    out.push({ key, op: (op as { v: '=' | '+=' }).v, value: v, line: tok.line, source: file });
    const end = peek();
    if (!(end.t === 'nl' || end.t === 'eof' || (end.t === 'op' && end.v === ';'))) unexpected(end, "end of line or ';'");
  }
  return out;
}

/**
 * Parse one command-line override `key=value` (xl create cfg name=foo).
 * A bare word is taken as a string; quotes and lists work as in a file.
 */
export function parseXlCfgOverride(arg: string, index = 0, file = 'command line'): CfgSetting {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\+?=)\s*([\s\S]*)$/.exec(arg);
  if (!m) throw new XlCfgError(file, index + 1, arg, 'expected key=value');
  const [, key, op, rest] = m as unknown as [string, string, '=' | '+=', string];
  const bare = rest.length > 0 && !/^['"\[]/.test(rest);
  if (bare) {
    return { key, op, value: { kind: 'atom', text: rest.trim(), quoted: !/^-?[0-9]/.test(rest.trim()), line: index + 1 }, line: index + 1, source: file };
  }
  const settings = parseSettings(lex(`${key} ${op} ${rest}`, file, false, index + 1), file);
  if (settings.length !== 1) throw new XlCfgError(file, index + 1, arg, 'expected exactly one key=value');
  return settings[0]!;
}

// ---------------------------------------------------------------- typed config

export type DomainType = 'pv' | 'hvm' | 'pvh';
export type ActionOnShutdown = 'destroy' | 'restart' | 'preserve' | 'rename-restart' | 'coredump-destroy' | 'coredump-restart';
export const ACTIONS_ON_SHUTDOWN: readonly ActionOnShutdown[] = ['destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart'];

export type DiskFormat = 'raw' | 'qcow' | 'qcow2' | 'vhd' | 'qed' | 'empty';

// The records below are `type` aliases: they cross XML-RPC in
// xend.domain.create (shared/toolstack/xend_api.ts), and only aliases are
// assignable to XML-RPC's struct type.

/** One `disk` entry (docs/misc/xl-disk-configuration.txt). */
export type DiskSpec = {
  spec: string;          // the text it was parsed from
  target: string;        // backing file or device ('' for an empty cdrom drive)
  format: DiskFormat;
  vdev: string;          // xvda, hdc, sda ...
  access: 'rw' | 'ro';
  devtype: 'disk' | 'cdrom';
  backendtype?: 'phy' | 'tap' | 'qdisk';
  backend?: string;      // backend domain name or id
  script?: string;
  discard?: boolean;
  direct_io_safe?: boolean;
};

/** One `vif` entry (docs/misc/xl-network-configuration.markdown). */
export type VifSpec = {
  spec: string;
  mac?: string;          // lower case, 6 octets
  bridge?: string;
  type?: 'vif' | 'ioemu';
  model?: string;
  vifname?: string;
  script?: string;
  backend?: string;
  ip?: string;
  rate?: string;
  mtu?: number;
  devid?: number;
};

/** One `pci` entry (docs/man/xl-pci-configuration.5.pod): a host BDF to pass through. */
export type PciSpec = {
  spec: string;
  domain: number;        // PCI segment
  bus: number;
  dev: number;
  func: number | '*';    // '*': every function of the device
  vslot?: number;        // guest slot (@VSLOT)
  permissive?: boolean;
  msitranslate?: boolean;
  seize?: boolean;
  power_mgmt?: boolean;
  rdm_policy?: 'strict' | 'relaxed';
  /** A name given to the device with `xl pci-assignable-add -n` (instead of a BDF). */
  name?: string;
};

/** A value of a key carried uninterpreted: a string, an integer or a list of them. */
export type CfgPlain = string | number | CfgPlain[];

/** What every kind of guest has: xl.cfg(5)'s general keys. */
export type DomainConfigCommon = {
  name: string;
  memory: number;        // MiB
  maxmem: number;        // MiB
  vcpus: number;
  maxvcpus: number;
  cpus?: string;         // hard affinity, xl syntax ("0-3,^1"); a list is joined with ','
  cpu_weight?: number;
  cap?: number;
  disk: DiskSpec[];
  vif: VifSpec[];
  pci: PciSpec[];
  on_poweroff: ActionOnShutdown;
  on_reboot: ActionOnShutdown;
  on_crash: ActionOnShutdown;
  uuid?: string;
  /** Keys xl knows that xenemu accepts but does not interpret, as given. */
  other: Record<string, CfgPlain>;
};

/** A guest whose kernel the toolstack is given (PV, PVH): xl.cfg's "Direct Kernel Boot" keys and the rest PV had. */
export type KernelGuestKeys = {
  kernel?: string;
  ramdisk?: string;
  cmdline?: string;      // cmdline, or root= and extra= combined as xl does
  bootloader?: string;
  boot?: string;
  serial?: string[];
  vnc?: boolean;
  sdl?: boolean;
  device_model_version?: 'qemu-xen' | 'qemu-xen-traditional';
};

export type PvDomainConfig = DomainConfigCommon & KernelGuestKeys & { type: 'pv' };
/** Parsed, not built yet: no builder is registered for PVH (processes/dom0/toolstack/kinds.ts). */
export type PvhDomainConfig = DomainConfigCommon & KernelGuestKeys & { type: 'pvh' };

/**
 * An HVM guest (xl.cfg(5) "Fully-virtualised (HVM) Guest Specific Options"),
 * with libxl's defaults filled in where xenemu keeps them and xenemu's where
 * it has only one device (shared/toolstack/xlcfg_hvm.ts says which).
 */
export type HvmDomainConfig = DomainConfigCommon & {
  type: 'hvm';
  bios: 'seabios';
  /** The firmware file instead of Debian's SeaBIOS (xl's bios_path_override=, or a path in bios=). */
  bios_path_override?: string;
  /** qemu's -boot order: letters from a (floppy), c (disk), d (CD-ROM), n (network). */
  boot: string;
  /** qemu -serial devices, COM1 first: 'pty' or 'none'. */
  serial: string[];
  vga: 'stdvga';
  videoram: number;      // MiB
  acpi: boolean;
  acpi_s3: boolean;
  acpi_s4: boolean;
  apic: boolean;
  hap: boolean;
  /** HVM_PARAM_VPT_ALIGN: align the virtual platform timers' ticks. */
  vpt_align: boolean;
  xen_platform_pci: boolean;
  timer_mode: TimerMode;
  localtime: boolean;
  rtc_timeoffset: number;
  device_model_version: 'qemu-xen';
  /** Path of the device model program (a .js file runs under node). */
  device_model_override?: string;
  /** Extra device-model arguments (libxl appends these before -machine). */
  device_model_args: string[];
  /** Extra device-model arguments for HVM guests (after -machine). */
  device_model_args_hvm: string[];
  /** device_model_stubdomain_override: qemu-dm runs in a stub domain `<name>-dm`, not in Domain-0. */
  device_model_stubdomain_override: boolean;
  /** stubdomain_memory (MiB) of that stub domain; xl.cfg(5)'s default is 128. */
  stubdomain_memory: number;
  /** stubdomain_kernel: the stub domain's program (xenemu: a .js file run as the domain); default qemu-dm. */
  stubdomain_kernel?: string;
};

/** A parsed xl.cfg: one member per kind of guest, told apart by `type`. */
export type DomainConfig = PvDomainConfig | PvhDomainConfig | HvmDomainConfig;

// Kinds of keys: how a value is checked before a builder sees it.
type KeyKind = 'string' | 'int' | 'bool' | 'list' | 'string-or-list' | 'any';

const KNOWN_KEYS: Record<string, KeyKind> = {
  name: 'string', type: 'string', builder: 'string',
  memory: 'int', maxmem: 'int', vcpus: 'int', maxvcpus: 'int',
  cpus: 'string-or-list', cpu_weight: 'int', cap: 'int',
  disk: 'list', vif: 'list', pci: 'list',
  on_poweroff: 'string', on_reboot: 'string', on_crash: 'string',
  kernel: 'string', ramdisk: 'string', cmdline: 'string', extra: 'string', root: 'string',
  bootloader: 'string', uuid: 'string', boot: 'string', serial: 'string-or-list',
  vnc: 'bool', sdl: 'bool', device_model_version: 'string',
};

// Keys of xl.cfg(5) accepted and carried in `other` without interpretation.
const PASSTHROUGH_KEYS: Record<string, KeyKind> = {
  bootloader_args: 'string-or-list', cpus_soft: 'string-or-list', pool: 'string', seclabel: 'string',
  init_seclabel: 'string', driver_domain: 'bool', max_grant_frames: 'int', max_maptrack_frames: 'int',
  tsc_mode: 'any', localtime: 'bool', rtc_timeoffset: 'int', nomigrate: 'bool', claim_mode: 'bool',
  acpi: 'bool', apic: 'bool', pae: 'bool', hap: 'bool', nestedhvm: 'bool', viridian: 'any', hpet: 'bool',
  timer_mode: 'any', shadow_memory: 'int', videoram: 'int', stdvga: 'bool', vga: 'string',
  vnclisten: 'string', vncdisplay: 'int', vncunused: 'bool', vncpasswd: 'string', keymap: 'string',
  usb: 'bool', usbdevice: 'string-or-list', usbctrl: 'list', usbdev: 'list', soundhw: 'string',
  xen_platform_pci: 'bool', firmware: 'string', bios: 'string', device_model_override: 'string',
  device_model_stubdomain_override: 'bool', device_model_args: 'list', vfb: 'list', vkb: 'list',
  channel: 'list', vtpm: 'list', p9: 'list', vdispl: 'list', vsnd: 'any', dtdev: 'list',
  irqs: 'list', iomem: 'list', ioports: 'list', rdm: 'string', gfx_passthru: 'any', e820_host: 'bool',
  pci_permissive: 'bool', pci_msitranslate: 'bool', pci_seize: 'bool', pci_power_mgmt: 'bool',
  on_watchdog: 'string', on_soft_reset: 'string', vnuma: 'list', cpuid: 'any', max_event_channels: 'int',
  device_tree: 'string', gic_version: 'string', vuart: 'string', passthrough: 'string',
  altp2m: 'any', smbios: 'list', vcpu_hard_affinity: 'any', vcpu_soft_affinity: 'any',
  bios_path_override: 'string', hdtype: 'string', device_model_args_pv: 'list', device_model_args_hvm: 'list',
  vpt_align: 'bool', acpi_s3: 'bool', acpi_s4: 'bool', nographic: 'bool',
  stubdomain_memory: 'int', stubdomain_kernel: 'string', stubdomain_ramdisk: 'string', stubdomain_cmdline: 'string',
};

interface Slot { value: CfgValue; line: number; source: string }

/** How a kind's interpreter reads the merged settings (shared/toolstack/xlcfg_hvm.ts). */
export interface CfgReader {
  /** Throws the XlCfgError of `key` (its file and line) with `detail`. */
  err(key: string, detail: string): never;
  has(key: string): boolean;
  str(key: string): string | undefined;
  int(key: string, min?: number, max?: number): number | undefined;
  bool(key: string): boolean | undefined;
  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined;
  strings(key: string): string[] | undefined;
  stringOrList(key: string): string[] | undefined;
}

class Ctx implements CfgReader {
  constructor(readonly map: Map<string, Slot>) {}
  err(key: string, detail: string): never {
    const s = this.map.get(key);
    throw new XlCfgError(s?.source ?? 'config', s?.line, key, detail);
  }
  has(key: string): boolean { return this.map.has(key); }
  atom(key: string): string | undefined {
    const s = this.map.get(key);
    if (!s) return undefined;
    if (s.value.kind !== 'atom') this.err(key, 'expected a single value, got a list');
    return (s.value as { text: string }).text;
  }
  str(key: string): string | undefined { return this.atom(key); }
  int(key: string, min = -Infinity, max = Infinity): number | undefined {
    const v = this.atom(key);
    if (v === undefined) return undefined;
    const n = parseIntStrict(v);
    if (n === undefined) this.err(key, `expected an integer, got \`${v}'`);
    if (n! < min || n! > max) this.err(key, `${n} is out of range (${min}..${max === Infinity ? '' : max})`);
    return n;
  }
  bool(key: string): boolean | undefined {
    const v = this.atom(key);
    if (v === undefined) return undefined;
    if (v === '0') return false;
    if (v === '1') return true;
    return this.err(key, `expected 0 or 1, got \`${v}'`);
  }
  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const v = this.atom(key);
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) this.err(key, `invalid value \`${v}', expected one of ${allowed.join(', ')}`);
    return v as T;
  }
  strings(key: string): string[] | undefined {
    const s = this.map.get(key);
    if (!s) return undefined;
    if (s.value.kind !== 'list') this.err(key, 'expected a list');
    return (s.value as { items: CfgValue[] }).items.map((it) => {
      if (it.kind !== 'atom') this.err(key, 'expected a list of strings, got a nested list');
      return (it as { text: string }).text;
    });
  }
  stringOrList(key: string): string[] | undefined {
    const s = this.map.get(key);
    if (!s) return undefined;
    return s.value.kind === 'atom' ? [s.value.text] : this.strings(key);
  }
}

function parseIntStrict(v: string): number | undefined {
  const t = v.trim();
  let n: number;
  if (/^-?0[xX][0-9a-fA-F]+$/.test(t)) n = t.startsWith('-') ? -parseInt(t.slice(3), 16) : parseInt(t.slice(2), 16);
  else if (/^-?[0-9]+$/.test(t)) n = parseInt(t, 10);
  else return undefined;
  return Number.isSafeInteger(n) ? n : undefined;
}

function plain(v: CfgValue): CfgPlain {
  if (v.kind === 'list') return v.items.map(plain);
  if (!v.quoted) { const n = parseIntStrict(v.text); if (n !== undefined) return n; }
  return v.text;
}

/** Merge settings in order: '=' replaces, '+=' appends (lists) or concatenates (strings). */
function merge(settings: CfgSetting[]): Map<string, Slot> {
  const map = new Map<string, Slot>();
  for (const s of settings) {
    const prev = map.get(s.key);
    if (s.op === '+=' && prev) {
      let v: CfgValue;
      if (prev.value.kind === 'list' && s.value.kind === 'list') v = { kind: 'list', items: [...prev.value.items, ...s.value.items], line: s.line };
      else if (prev.value.kind === 'list') v = { kind: 'list', items: [...prev.value.items, s.value], line: s.line };
      else if (s.value.kind === 'atom') v = { kind: 'atom', text: prev.value.text + s.value.text, quoted: true, line: s.line };
      else throw new XlCfgError(s.source, s.line, s.key, 'cannot append a list to a single value');
      map.set(s.key, { value: v, line: s.line, source: s.source });
    } else {
      map.set(s.key, { value: s.value, line: s.line, source: s.source });
    }
  }
  return map;
}

function checkKind(ctx: Ctx, key: string, kind: KeyKind): void {
  switch (kind) {
    case 'string': ctx.str(key); break;
    case 'int': ctx.int(key); break;
    case 'bool': ctx.bool(key); break;
    case 'list': ctx.strings(key); break;
    case 'string-or-list': ctx.stringOrList(key); break;
    case 'any': break;
  }
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Interpret merged settings as a domain configuration (xl_parse.c's parse_config_data). */
export function buildDomainConfig(settings: CfgSetting[], file = 'config'): DomainConfig {
  const map = merge(settings);
  const ctx = new Ctx(map);
  for (const [key] of map) {
    const kind = KNOWN_KEYS[key] ?? PASSTHROUGH_KEYS[key];
    if (kind === undefined) ctx.err(key, `unknown key \`${key}'`);
    checkKind(ctx, key, kind!);
  }

  const name = ctx.str('name');
  if (name === undefined) throw new XlCfgError(file, undefined, 'name', 'domain name must be specified');
  if (name === '' || /^[0-9]+$/.test(name) || /[/\s]/.test(name)) {
    ctx.err('name', `invalid domain name \`${name}': it must be non-empty, not all digits, without '/' or spaces`);
  }

  let type: DomainType = 'pv';
  const t = ctx.oneOf('type', ['pv', 'hvm', 'pvh'] as const);
  const builder = ctx.oneOf('builder', ['hvm', 'generic'] as const);
  if (t) type = t;
  else if (builder === 'hvm') type = 'hvm';

  const common = commonConfig(ctx, map, name);
  if (type === 'hvm') return interpretHvm(ctx, common);
  return kernelGuestConfig(ctx, common, type);
}

/** The general keys, every kind alike; `other` gets every passthrough key set. */
function commonConfig(ctx: Ctx, map: Map<string, Slot>, name: string): DomainConfigCommon {
  // libxl's default is 32 MiB when memory= is absent.
  const memory = ctx.int('memory', 1) ?? ctx.int('maxmem', 1) ?? 32;
  const maxmem = ctx.int('maxmem', 1) ?? memory;
  if (maxmem < memory) ctx.err('maxmem', `maxmem (${maxmem}) must not be less than memory (${memory})`);
  const vcpus = ctx.int('vcpus', 1, 128) ?? 1;
  const maxvcpus = ctx.int('maxvcpus', 1, 128) ?? vcpus;
  if (maxvcpus < vcpus) ctx.err('maxvcpus', `maxvcpus (${maxvcpus}) must not be less than vcpus (${vcpus})`);

  const cfg: DomainConfigCommon = {
    name, memory, maxmem, vcpus, maxvcpus,
    disk: [], vif: [], pci: [],
    on_poweroff: ctx.oneOf('on_poweroff', ACTIONS_ON_SHUTDOWN) ?? 'destroy',
    on_reboot: ctx.oneOf('on_reboot', ACTIONS_ON_SHUTDOWN) ?? 'restart',
    on_crash: ctx.oneOf('on_crash', ACTIONS_ON_SHUTDOWN) ?? 'destroy',
    other: {},
  };

  const cpus = ctx.stringOrList('cpus');
  if (cpus) {
    const joined = cpus.join(',');
    if (!/^(all|(\^?(node:)?[0-9]+(-[0-9]+)?)(,\^?(node:)?[0-9]+(-[0-9]+)?)*)$/.test(joined)) ctx.err('cpus', `invalid cpu list \`${joined}'`);
    cfg.cpus = joined;
  }
  const weight = ctx.int('cpu_weight', 1, 65535);
  if (weight !== undefined) cfg.cpu_weight = weight;
  const cap = ctx.int('cap', 0, 100 * 128);
  if (cap !== undefined) cfg.cap = cap;

  const uuid = ctx.str('uuid');
  if (uuid !== undefined) {
    if (!UUID_RE.test(uuid)) ctx.err('uuid', `invalid uuid \`${uuid}'`);
    cfg.uuid = uuid.toLowerCase();
  }

  const each = <T>(key: string, parse: (s: string) => T): T[] =>
    (ctx.strings(key) ?? []).map((s) => {
      try { return parse(s); } catch (e) { return ctx.err(key, (e as Error).message); }
    });
  cfg.disk = each('disk', parseDiskSpec);
  cfg.vif = each('vif', parseVifSpec);
  // xl_parse.c: pci_permissive and friends are every device's defaults.
  const pciDefaults: PciDefaults = {};
  for (const k of ['permissive', 'msitranslate', 'seize', 'power_mgmt'] as const) {
    const v = ctx.bool(`pci_${k}`);
    if (v !== undefined) pciDefaults[k] = v;
  }
  cfg.pci = each('pci', (s) => parsePciSpec(s, pciDefaults));

  const vdevs = new Set<string>();
  for (const d of cfg.disk) {
    if (vdevs.has(d.vdev)) ctx.err('disk', `vdev \`${d.vdev}' is used twice`);
    vdevs.add(d.vdev);
  }

  for (const [key, slot] of map) if (key in PASSTHROUGH_KEYS) cfg.other[key] = plain(slot.value);
  return cfg;
}

/** PV and PVH: the kernel, its command line, and what PV configs have always carried. */
function kernelGuestConfig(ctx: Ctx, common: DomainConfigCommon, type: 'pv' | 'pvh'): PvDomainConfig | PvhDomainConfig {
  const keys: KernelGuestKeys = {};
  for (const k of ['kernel', 'ramdisk', 'bootloader'] as const) {
    const v = ctx.str(k);
    if (v !== undefined) keys[k] = v;
  }
  const cmdline = ctx.str('cmdline');
  const root = ctx.str('root');
  const extra = ctx.str('extra');
  if (cmdline !== undefined) keys.cmdline = cmdline;
  else if (root !== undefined || extra !== undefined) {
    keys.cmdline = [root !== undefined ? `root=${root}` : undefined, extra].filter((x) => x !== undefined).join(' ');
  }
  const boot = ctx.str('boot');
  if (boot !== undefined) keys.boot = checkBootOrder(ctx, boot);
  const serial = ctx.stringOrList('serial');
  if (serial) keys.serial = serial;
  const vnc = ctx.bool('vnc');
  if (vnc !== undefined) keys.vnc = vnc;
  const sdl = ctx.bool('sdl');
  if (sdl !== undefined) keys.sdl = sdl;
  const dmv = ctx.oneOf('device_model_version', ['qemu-xen', 'qemu-xen-traditional'] as const);
  if (dmv) keys.device_model_version = dmv;
  // Key order as before: the general keys, then these, then `other`.
  const { other, ...rest } = common;
  return type === 'pv' ? { ...rest, type, ...keys, other } : { ...rest, type, ...keys, other };
}

export interface ParseXlCfgOptions {
  /** Name used in error messages (the path of the file). */
  file?: string;
  /** Command-line `key=value` overrides, applied after the file. */
  overrides?: string[];
}

/** Parse an xl.cfg file's text and its command-line overrides into a DomainConfig. */
export function parseXlCfg(text: string, opts: ParseXlCfgOptions = {}): DomainConfig {
  const file = opts.file ?? 'config';
  const settings = parseXlCfgSettings(text, file);
  (opts.overrides ?? []).forEach((o, i) => settings.push(parseXlCfgOverride(o, i)));
  return buildDomainConfig(settings, file);
}

/**
 * Check a DomainConfig that arrived from outside (xend.domain.create): it is
 * turned back into settings and interpreted again, so it obeys exactly the
 * rules of a file. Device entries are re-parsed from their `spec` text.
 */
export function domainConfigFromStruct(o: unknown, source = 'xend.domain.create'): DomainConfig {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new XlCfgError(source, undefined, 'config', 'expected a struct');
  const settings: CfgSetting[] = [];
  const atom = (x: unknown, key: string): CfgValue => {
    if (typeof x === 'string') return { kind: 'atom', text: x, quoted: true, line: 0 };
    if (typeof x === 'number' && Number.isFinite(x)) return { kind: 'atom', text: String(x), quoted: false, line: 0 };
    if (typeof x === 'boolean') return { kind: 'atom', text: x ? '1' : '0', quoted: false, line: 0 };
    if (Array.isArray(x)) return { kind: 'list', items: x.map((y) => atom(y, key)), line: 0 };
    throw new XlCfgError(source, undefined, key, `unsupported value of type ${x === null ? 'nil' : typeof x}`);
  };
  const push = (key: string, v: unknown) => settings.push({ key, op: '=', value: atom(v, key), line: 0, source });
  for (const [key, v] of Object.entries(o as Record<string, unknown>)) {
    if (v === undefined || v === null) continue;
    if (key === 'other') {
      if (typeof v !== 'object' || Array.isArray(v)) throw new XlCfgError(source, undefined, key, 'expected a struct');
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) {
        if (!(k2 in PASSTHROUGH_KEYS)) throw new XlCfgError(source, undefined, k2, `unknown key \`${k2}'`);
        push(k2, v2);
      }
    } else if (key === 'disk' || key === 'vif' || key === 'pci') {
      if (!Array.isArray(v)) throw new XlCfgError(source, undefined, key, 'expected a list');
      push(key, v.map((d) => (typeof d === 'object' && d !== null && 'spec' in d ? (d as { spec: unknown }).spec : d)));
    } else {
      push(key, v);
    }
  }
  return buildDomainConfig(settings, source);
}

// ---------------------------------------------------------------- disk

const DISK_FORMATS: readonly DiskFormat[] = ['raw', 'qcow', 'qcow2', 'vhd', 'qed', 'empty'];

/**
 * Parse a disk spec (docs/misc/xl-disk-configuration.txt), following the rules
 * of libxlu_disk_l.l: positional parameters are target, format, vdev, access
 * in that order; `key=value` may appear anywhere; `target=` swallows the rest
 * of the string (so a target may contain commas); a deprecated prefix like
 * `file:` or `phy:` before the target (the xm form `phy:/dev/vg/x,xvda,w`)
 * means the format is not given positionally.
 */
export function parseDiskSpec(spec: string): DiskSpec {
  const fail = (detail: string): never => { throw new Error(`disk specification \`${spec}': ${detail}`); };
  // Each parameter may be given once, by position or by name; an empty value
  // counts as given and means the default.
  const given = new Set<'target' | 'format' | 'vdev' | 'access'>();
  let target = '';
  let format: DiskFormat | undefined;
  let vdev = '';
  let access: 'rw' | 'ro' | undefined;
  let devtype: 'disk' | 'cdrom' | undefined;
  const out: Partial<DiskSpec> = {};

  const once = (k: 'target' | 'format' | 'vdev' | 'access') => {
    if (given.has(k)) fail(`${k} specified more than once`);
    given.add(k);
  };
  const setFormat = (v: string) => {
    once('format');
    if (v === '') return;
    if (!(DISK_FORMATS as readonly string[]).includes(v)) fail(`unknown value for format: \`${v}'`);
    format = v as DiskFormat;
  };
  const setAccess = (v: string) => {
    once('access');
    if (v === 'r' || v === 'ro') access = 'ro';
    else if (v === 'w' || v === 'rw' || v === '') access = v === '' ? undefined : 'rw';
    else fail(`unknown value for access: \`${v}'`);
  };
  const setVdev = (v: string) => {
    once('vdev');
    // The xm spelling `hdc:cdrom` names the device type with the vdev.
    const m = /^(.*):cdrom$/.exec(v);
    if (m) { vdev = m[1]!; devtype = 'cdrom'; } else vdev = v;
  };

  let rest = spec;
  while (rest.length > 0) {
    if (/^\s/.test(rest)) { rest = rest.trimStart(); continue; }
    if (rest.startsWith('target=')) { once('target'); target = rest.slice(7); break; }
    if (!given.has('target')) {
      const pre = /^(raw|qcow2?|vhd|iscsi|e?nbd|drbd|tapdisk|tap2?|aio|ioemu|file|phy):/.exec(rest);
      if (pre) {
        // Deprecated xm prefixes: the format, if any, comes from the prefix,
        // so the positional after the target is the vdev.
        const p = pre[1]!;
        if (!given.has('format')) given.add('format');
        if (p === 'raw' || p === 'qcow' || p === 'qcow2' || p === 'vhd') format = p;
        else if (p === 'phy') out.backendtype = 'phy';
        else if (p === 'iscsi' || p === 'nbd' || p === 'enbd' || p === 'drbd') out.script = `block-${p}`;
        else if (p === 'tap' || p === 'tap2' || p === 'tapdisk') out.backendtype = 'tap';
        rest = rest.slice(pre[0].length);
        continue;
      }
      const unk = /^([a-z][a-z0-9]*):(?!cdrom(,|$))/.exec(rest);
      if (unk) fail(`unknown deprecated disk prefix \`${unk[0]}'`);
    }
    const flag = /^(direct-io-safe|discard|no-discard|trusted|untrusted|cdrom)\s*(,|$)/.exec(rest);
    if (flag) {
      if (flag[1] === 'direct-io-safe') out.direct_io_safe = true;
      else if (flag[1] === 'discard') out.discard = true;
      else if (flag[1] === 'no-discard') out.discard = false;
      else if (flag[1] === 'cdrom') devtype = 'cdrom';
      rest = rest.slice(flag[0].length);
      continue;
    }
    const kv = /^([a-z][-a-z0-9]*)=([^,]*)(,|$)/.exec(rest);
    if (kv) {
      const k = kv[1]!;
      const v = kv[2]!.trim();
      switch (k) {
        case 'format': setFormat(v); break;
        case 'vdev': setVdev(v); break;
        case 'access': setAccess(v); break;
        case 'devtype':
          if (v !== 'cdrom' && v !== 'disk') fail(`unknown value for devtype: \`${v}'`);
          devtype = v as 'disk' | 'cdrom';
          break;
        case 'backend': out.backend = v; break;
        case 'backendtype':
          if (v !== 'phy' && v !== 'tap' && v !== 'qdisk') fail(`unknown value for backendtype: \`${v}'`);
          out.backendtype = v as 'phy' | 'tap' | 'qdisk';
          break;
        case 'script': out.script = v; break;
        default: fail(`unknown parameter \`${k}'`);
      }
      rest = rest.slice(kv[0].length);
      continue;
    }
    const pos = /^([^=,]*)(,|$)/.exec(rest);
    if (!pos) fail(`cannot parse \`${rest}'`);
    const tok = pos![1]!.trim();
    if (!given.has('target')) { once('target'); target = tok; }
    else if (!given.has('format')) {
      // libxlu: with an empty target, `hdc:cdrom` here is the vdev of an empty drive.
      if (target === '' && /:cdrom$/.test(tok)) { given.add('format'); setVdev(tok); }
      else setFormat(tok);
    } else if (!given.has('vdev')) setVdev(tok);
    else if (!given.has('access')) setAccess(tok);
    else fail(`too many positional parameters at \`${tok}'`);
    rest = rest.slice(pos![0].length);
  }

  if (vdev === '') fail('no vdev specified');
  if (!/^((xvd|hd|sd)[a-z]+[0-9]*|d[0-9]+(p[0-9]+)?)$/.test(vdev)) fail(`invalid vdev \`${vdev}'`);
  const dt = devtype ?? 'disk';
  if (target === '' && dt !== 'cdrom') fail('no target specified');
  const d: DiskSpec = {
    spec,
    target,
    format: target === '' ? 'empty' : format ?? 'raw',
    vdev,
    access: access ?? (dt === 'cdrom' ? 'ro' : 'rw'),
    devtype: dt,
  };
  if (out.backendtype) d.backendtype = out.backendtype;
  if (out.backend !== undefined) d.backend = out.backend;
  if (out.script !== undefined) d.script = out.script;
  if (out.discard !== undefined) d.discard = out.discard;
  if (out.direct_io_safe) d.direct_io_safe = true;
  return d;
}

// ---------------------------------------------------------------- vif

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Parse a vif spec: comma-separated `key=value` (xl-network-configuration). */
export function parseVifSpec(spec: string): VifSpec {
  const fail = (detail: string): never => { throw new Error(`vif specification \`${spec}': ${detail}`); };
  const v: VifSpec = { spec };
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) fail(`expected key=value, got \`${item}'`);
    const k = item.slice(0, eq);
    const val = item.slice(eq + 1);
    switch (k) {
      case 'mac':
        if (!MAC_RE.test(val)) fail(`invalid mac address \`${val}'`);
        if (parseInt(val.slice(0, 2), 16) & 1) fail(`mac address \`${val}' is a multicast address`);
        v.mac = val.toLowerCase();
        break;
      case 'type':
        if (val !== 'vif' && val !== 'ioemu') fail(`invalid type \`${val}', expected vif or ioemu`);
        v.type = val as 'vif' | 'ioemu';
        break;
      case 'mtu': case 'devid': {
        const n = parseIntStrict(val);
        if (n === undefined || n < 0) fail(`invalid ${k} \`${val}'`);
        v[k] = n!;
        break;
      }
      case 'bridge': case 'model': case 'vifname': case 'script': case 'backend': case 'ip': case 'rate':
        v[k] = val;
        break;
      default:
        fail(`unknown key \`${k}'`);
    }
  }
  return v;
}

// ---------------------------------------------------------------- pci

/** xl.cfg's pci_permissive, pci_msitranslate, pci_seize, pci_power_mgmt: each device's defaults (xl_parse.c). */
export type PciDefaults = { permissive?: boolean; msitranslate?: boolean; seize?: boolean; power_mgmt?: boolean };

/** strerror(EINVAL), what xl prints as the reason of a spec libxlu refused. */
const PCI_EINVAL = 'Invalid argument';

/**
 * libxlu_pci.c parse_bdf: `[DDDD:]BB:DD.F` in hex, F may be `*` (every
 * function); the colons among the leading hex digits tell whether the
 * domain is there. Returns the fields and where the BDF ended, or null.
 */
function parsePciBdf(s: string, at: number): { domain: number; bus: number; dev: number; func: number | '*'; end: number } | null {
  let i = at;
  let colons = 0;
  while (i < s.length && /[0-9a-fA-F:]/.test(s[i]!)) { if (s[i] === ':') colons++; i++; }
  if (colons !== 1 && colons !== 2) return null;
  const m = (colons === 2 ? /^([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)\./ : /^()([0-9a-fA-F]+):([0-9a-fA-F]+)\./).exec(s.slice(at));
  if (!m) return null;
  const domain = m[1] ? parseInt(m[1], 16) : 0;
  const bus = parseInt(m[2]!, 16);
  const dev = parseInt(m[3]!, 16);
  if (domain > 0xffff || bus > 0xff || dev > 0x1f) return null;
  let end = at + m[0].length;
  let func: number | '*';
  if (s[end] === '*') { func = '*'; end++; } else {
    const f = /^[0-9a-fA-F]+/.exec(s.slice(end));
    if (!f) return null;
    func = parseInt(f[0], 16);
    if (func > 7) return null;
    end += f[0].length;
  }
  return { domain, bus, dev, func, end };
}

/** libxlu's parse_vslot: a hex slot up to 0x1f. */
function parsePciVslot(v: string): number | null {
  const m = /^[0-9a-fA-F]+/.exec(v);
  if (!m) return null;
  const n = parseInt(m[0], 16);
  return n > 0x1f ? null : n;
}

/** C's atoi, as libxlu reads the boolean options (`permissive=yes` is 0). */
function atoi(v: string): number {
  const m = /^\s*([+-]?\d+)/.exec(v);
  return m ? parseInt(m[1]!, 10) : 0;
}

/**
 * Parse a PCI_SPEC_STRING (xl-pci-configuration(5)) as libxlu 4.17's
 * xlu_pci_parse_spec_string does: an optional positional
 * `[DDDD:]BB:DD.F[@VSLOT]`, then `key=value` pairs (bdf, vslot,
 * permissive, msitranslate, seize, power_mgmt, rdm_policy, name); exactly
 * one of a BDF and a name. Booleans are read with atoi. `defaults` are
 * xl.cfg's pci_* keys, which a device's own options override. A refusal
 * carries xl's message (`unable to parse PCI_SPEC_STRING "...". Reason:
 * Invalid argument`), after libxlu's own report when it makes one.
 */
export function parsePciSpec(spec: string, defaults: PciDefaults = {}): PciSpec {
  const fail = (report?: string): never => {
    throw new Error(`${report ? `${report}: ` : ''}unable to parse PCI_SPEC_STRING "${spec}". Reason: ${PCI_EINVAL}`);
  };
  const p: PciSpec = {
    spec, domain: 0, bus: 0, dev: 0, func: 0,
    permissive: defaults.permissive ?? false, msitranslate: defaults.msitranslate ?? false,
    seize: defaults.seize ?? false, power_mgmt: defaults.power_mgmt ?? false,
    // libxl__device_pci_setdefault: strict unless asked otherwise.
    rdm_policy: 'strict',
  };
  let bdfPresent = false;
  let namePresent = false;
  const setBdf = (b: NonNullable<ReturnType<typeof parsePciBdf>>) => {
    p.domain = b.domain; p.bus = b.bus; p.dev = b.dev; p.func = b.func; bdfPresent = true;
  };
  let i = 0;
  const b = parsePciBdf(spec, 0);
  if (b) {
    setBdf(b);
    i = b.end;
    if (spec[i] === '@') {
      const m = /^[0-9a-fA-F]+/.exec(spec.slice(i + 1));
      const v = m ? parsePciVslot(m[0]) : null;
      if (v === null) fail();
      p.vslot = v!;
      i += 1 + m![0].length;
    }
    if (spec[i] === ',') i++;
    else if (i < spec.length) fail();
  }
  while (i < spec.length) {
    const eq = spec.indexOf('=', i);
    if (eq < 0) fail();
    const key = spec.slice(i, eq);
    let end = spec.indexOf(',', eq + 1);
    if (end < 0) end = spec.length;
    const val = spec.slice(eq + 1, end);
    i = end < spec.length ? end + 1 : end;
    switch (key) {
      case 'bdf': {
        const bb = parsePciBdf(val, 0);
        if (!bb || bb.end !== val.length) fail();
        setBdf(bb!);
        break;
      }
      case 'vslot': {
        const v = parsePciVslot(val);
        if (v === null) fail();
        p.vslot = v!;
        break;
      }
      case 'permissive': case 'msitranslate': case 'seize': case 'power_mgmt':
        p[key] = atoi(val) !== 0;
        break;
      case 'rdm_policy':
        if (val !== 'strict' && val !== 'relaxed') fail(`Unknown RDM policy: ${val}`);
        p.rdm_policy = val as 'strict' | 'relaxed';
        break;
      case 'name':
        namePresent = true;
        p.name = val;
        break;
      default:
        fail(`Unknown PCI_SPEC_STRING option: ${key}`);
    }
  }
  if (bdfPresent === namePresent) fail();
  return p;
}

/** libxlu's xlu_pci_parse_bdf: a bare BDF (xl pci-assignable-add and friends). */
export function parsePciBdfString(s: string): { domain: number; bus: number; dev: number; func: number } | null {
  const b = parsePciBdf(s, 0);
  return b && b.end === s.length && b.func !== '*' ? { domain: b.domain, bus: b.bus, dev: b.dev, func: b.func } : null;
}

/** Canonical BDF text of a pci spec, e.g. 0000:03:00.0. */
export function pciBdf(p: PciSpec): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${h(p.domain, 4)}:${h(p.bus, 2)}:${h(p.dev, 2)}.${p.func === '*' ? '*' : p.func}`;
}
