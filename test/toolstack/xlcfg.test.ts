// xl.cfg(5) parsing: table-driven valid and invalid configs, with the exact
// error messages (file, line, key), and the disk / vif / pci spec parsers.
import t from 'tap';
import {
  parseXlCfg, parseXlCfgSettings, parseDiskSpec, parseVifSpec, parsePciSpec, pciBdf,
  domainConfigFromStruct, XlCfgError, type DomainConfig,
} from '../../shared/toolstack/xlcfg.js';

const FULL = `# a PV guest
name = "guest1"
type = 'pv'
memory = 256
maxmem = 0x200      # hex works
vcpus = 2
maxvcpus = 4
cpus = "0-1"
cpu_weight = 512
cap = 50
kernel = "/boot/vmlinuz"
ramdisk = '/boot/initrd.img'
root = "/dev/xvda1"
extra = "console=hvc0"
extra += " quiet"
disk = [ 'file:/srv/guest1/disk.img,xvda,w',
         '/srv/guest1/data.img,raw,xvdb,rw',
         'format=qcow2, vdev=xvdc, access=ro, target=/srv/a,b.qcow2',
       ]
vif = [ 'mac=00:16:3E:01:02:03,bridge=xenbr0', 'bridge=xenbr1' ]
pci = [ '0000:03:00.0', '04:1f.*@5,permissive=1' ]
on_poweroff = "destroy"; on_reboot = "restart"
on_crash = 'coredump-restart'
uuid = "6A9A8F8E-1234-4e3b-9d4f-0123456789ab"
vnc = 1
sdl = 0
serial = 'pty'
`;

t.test('a full config', async (t) => {
  const c = parseXlCfg(FULL, { file: 'guest1.cfg' });
  t.match(c, {
    name: 'guest1', type: 'pv', memory: 256, maxmem: 512, vcpus: 2, maxvcpus: 4,
    cpus: '0-1', cpu_weight: 512, cap: 50,
    kernel: '/boot/vmlinuz', ramdisk: '/boot/initrd.img',
    cmdline: 'root=/dev/xvda1 console=hvc0 quiet',
    on_poweroff: 'destroy', on_reboot: 'restart', on_crash: 'coredump-restart',
    uuid: '6a9a8f8e-1234-4e3b-9d4f-0123456789ab', vnc: true, sdl: false, serial: ['pty'],
  });
  t.same(c.disk.map((d) => [d.target, d.format, d.vdev, d.access]), [
    ['/srv/guest1/disk.img', 'raw', 'xvda', 'rw'],
    ['/srv/guest1/data.img', 'raw', 'xvdb', 'rw'],
    ['/srv/a,b.qcow2', 'qcow2', 'xvdc', 'ro'],
  ]);
  t.same(c.vif.map((v) => [v.mac, v.bridge]), [['00:16:3e:01:02:03', 'xenbr0'], [undefined, 'xenbr1']]);
  t.same(c.pci.map(pciBdf), ['0000:03:00.0', '0000:04:1f.*']);
  t.equal(c.pci[1]!.vslot, 5);
  t.equal(c.pci[1]!.permissive, true);
});

t.test('defaults and old spellings', async (t) => {
  const table: Array<[string, string, Partial<DomainConfig>]> = [
    ['minimal', 'name="a"', { name: 'a', type: 'pv', memory: 32, maxmem: 32, vcpus: 1, maxvcpus: 1,
      on_poweroff: 'destroy', on_reboot: 'restart', on_crash: 'destroy', disk: [], vif: [], pci: [] }],
    ['builder=hvm', 'name="a"\nbuilder="hvm"', { type: 'hvm' }],
    ['builder=generic', 'name="a"\nbuilder="generic"', { type: 'pv' }],
    ['type wins over builder', 'name="a"\nbuilder="hvm"\ntype="pvh"', { type: 'pvh' }],
    ['maxmem follows memory', 'name="a"\nmemory=512', { memory: 512, maxmem: 512 }],
    ['quoted number', 'name="a"\nmemory="64"', { memory: 64 }],
    ['extra alone', 'name="a"\nextra="x y"', { cmdline: 'x y' }],
    ['cmdline wins', 'name="a"\ncmdline="c"\nextra="x"', { cmdline: 'c' }],
    ['later setting wins', 'name="a"\nname="b"', { name: 'b' }],
    ['empty list, no final newline', 'name="a"\ndisk=[]', { disk: [] }],
    ['list appended', 'name="a"\nvif=["bridge=a"]\nvif+=["bridge=b"]', { vif: [{ spec: 'bridge=a', bridge: 'a' }, { spec: 'bridge=b', bridge: 'b' }] }],
    ['double-quoted escapes', 'name="a\\x62"', { name: 'ab' }],
    ['cpus as list', 'name="a"\ncpus=["0","2-3"]', { cpus: '0,2-3' }],
    ['passthrough key', 'name="a"\nacpi=1\nbootloader_args=["-q"]', { other: { acpi: 1, bootloader_args: ['-q'] } }],
  ];
  for (const [what, text, want] of table) t.match(parseXlCfg(text), want, what);
});

t.test('command-line overrides win and take bare words', async (t) => {
  const c = parseXlCfg('name="a"\nmemory=128\n', { file: 'a.cfg', overrides: ['name=foo', 'memory=256', 'vif=["bridge=br9"]', "kernel='/k'"] });
  t.match(c, { name: 'foo', memory: 256, kernel: '/k' });
  t.equal(c.vif[0]!.bridge, 'br9');
});

t.test('invalid configs give xl-like errors naming file, line and key', async (t) => {
  const table: Array<[string, string, string[] | undefined, string]> = [
    ['unknown key', 'name="a"\n\nmemroy = 128\n', undefined,
      "g.cfg:3: config parsing error near `memroy': unknown key `memroy'"],
    ['bad integer', 'name="a"\nmemory = "lots"\n', undefined,
      "g.cfg:2: config parsing error near `memory': expected an integer, got `lots'"],
    ['zero vcpus', 'name="a"\nvcpus = 0\n', undefined,
      "g.cfg:2: config parsing error near `vcpus': 0 is out of range (1..128)"],
    ['bad action', 'name="a"\non_crash = "explode"\n', undefined,
      "g.cfg:2: config parsing error near `on_crash': invalid value `explode', expected one of destroy, restart, preserve, rename-restart, coredump-destroy, coredump-restart"],
    ['bad type', 'name="a"\ntype = "xen"\n', undefined,
      "g.cfg:2: config parsing error near `type': invalid value `xen', expected one of pv, hvm, pvh"],
    ['missing name', 'memory = 64\n', undefined,
      "g.cfg: config parsing error near `name': domain name must be specified"],
    ['numeric name', 'name = "12"\n', undefined,
      "g.cfg:1: config parsing error near `name': invalid domain name `12': it must be non-empty, not all digits, without '/' or spaces"],
    ['maxmem below memory', 'name="a"\nmemory=256\nmaxmem=128\n', undefined,
      "g.cfg:3: config parsing error near `maxmem': maxmem (128) must not be less than memory (256)"],
    ['list for a string', 'name = ["a"]\n', undefined,
      "g.cfg:1: config parsing error near `name': expected a single value, got a list"],
    ['string for a list', 'name="a"\ndisk = "/x,raw,xvda"\n', undefined,
      "g.cfg:2: config parsing error near `disk': expected a list"],
    ['missing value', 'name="a"\nmemory =\n', undefined,
      "g.cfg:2: config parsing error near `end of line': syntax error, unexpected end of line, expecting a string, a number or '['"],
    ['bare word in a file', 'name = foo\n', undefined,
      "g.cfg:1: config parsing error near `foo': syntax error, unexpected foo, expecting a string, a number or '['"],
    ['unterminated list', 'name="a"\ndisk = [ "/x,raw,xvda"\nvcpus=1\n', undefined,
      "g.cfg:3: config parsing error near `vcpus': syntax error, unexpected vcpus, expecting ',' or ']'"],
    ['unterminated string', 'name="a"\nkernel = "/boot\n', undefined,
      "g.cfg:2: config parsing error near `\"/boot': unterminated string"],
    ['two settings on a line', 'name="a" memory=1\n', undefined,
      "g.cfg:1: config parsing error near `memory': syntax error, unexpected memory, expecting end of line or ';'"],
    ['bad disk', 'name="a"\ndisk = [ "/x,raw,xvda,rx" ]\n', undefined,
      "g.cfg:2: config parsing error near `disk': disk specification `/x,raw,xvda,rx': unknown value for access: `rx'"],
    ['bad vif', 'name="a"\nvif = [ "mac=00:16:3e:zz:00:00" ]\n', undefined,
      "g.cfg:2: config parsing error near `vif': vif specification `mac=00:16:3e:zz:00:00': invalid mac address `00:16:3e:zz:00:00'"],
    ['bad pci', 'name="a"\npci = [ "03:00" ]\n', undefined,
      "g.cfg:2: config parsing error near `pci': unable to parse PCI_SPEC_STRING \"03:00\". Reason: Invalid argument"],
    ['duplicate vdev', 'name="a"\ndisk = [ "/x,,xvda", "/y,,xvda" ]\n', undefined,
      "g.cfg:2: config parsing error near `disk': vdev `xvda' is used twice"],
    ['bad uuid', 'name="a"\nuuid="1234"\n', undefined,
      "g.cfg:2: config parsing error near `uuid': invalid uuid `1234'"],
    ['bad bool', 'name="a"\nvnc="yes"\n', undefined,
      "g.cfg:2: config parsing error near `vnc': expected 0 or 1, got `yes'"],
    ['bad override value', 'name="a"\n', ['memory=lots'],
      "command line:1: config parsing error near `memory': expected an integer, got `lots'"],
    ['override without =', 'name="a"\n', ['vcpus=2', 'memory'],
      "command line:2: config parsing error near `memory': expected key=value"],
    ['unknown override key', 'name="a"\n', ['nmae=x'],
      "command line:1: config parsing error near `nmae': unknown key `nmae'"],
  ];
  for (const [what, text, overrides, msg] of table) {
    t.throws(() => parseXlCfg(text, { file: 'g.cfg', overrides }), { name: 'XlCfgError', message: msg }, what);
  }
  const e = t.throws(() => parseXlCfg('name="a"\nmemroy=1', { file: 'g.cfg' }),
    { code: 'XLCFG', file: 'g.cfg', line: 2, near: 'memroy', detail: "unknown key `memroy'" },
    'the error carries file, line and key apart');
  t.ok(e instanceof XlCfgError, 'an XlCfgError');
});

t.test('settings keep line numbers across multi-line lists', async (t) => {
  const s = parseXlCfgSettings('a = [\n 1,\n 2,\n]\nb = "x" # c\n\nc=3;d=4');
  t.same(s.map((x) => [x.key, x.line]), [['a', 1], ['b', 5], ['c', 7], ['d', 7]]);
});

t.test('disk specs, positional and key=value forms', async (t) => {
  const table: Array<[string, Partial<ReturnType<typeof parseDiskSpec>>]> = [
    ['file:/path/disk.img,xvda,w', { target: '/path/disk.img', format: 'raw', vdev: 'xvda', access: 'rw', devtype: 'disk' }],
    ['/path/disk.img,raw,xvda,rw', { target: '/path/disk.img', format: 'raw', vdev: 'xvda', access: 'rw' }],
    ['phy:/dev/vg/guest,xvda,r', { target: '/dev/vg/guest', backendtype: 'phy', vdev: 'xvda', access: 'ro' }],
    ['qcow2:/a.qcow2,xvdb,w', { target: '/a.qcow2', format: 'qcow2', vdev: 'xvdb' }],
    ['tap:aio:/a.img,xvdc,w', { target: '/a.img', backendtype: 'tap', vdev: 'xvdc' }],
    ['/dev/vg/guest-volume,,hda', { target: '/dev/vg/guest-volume', format: 'raw', vdev: 'hda', access: 'rw' }],
    ['format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume', { target: '/dev/vg/guest-volume', format: 'raw', vdev: 'hda', access: 'rw' }],
    ['/root/image.iso,,hdc,cdrom', { target: '/root/image.iso', vdev: 'hdc', devtype: 'cdrom', access: 'ro' }],
    ['/root/image.iso,,hdc,,cdrom', { vdev: 'hdc', devtype: 'cdrom', access: 'ro' }],
    ['/root/image.iso,raw,hdc,devtype=cdrom', { vdev: 'hdc', devtype: 'cdrom', access: 'ro' }],
    ['raw:/root/image.iso,hdc:cdrom,ro', { target: '/root/image.iso', vdev: 'hdc', devtype: 'cdrom', access: 'ro' }],
    [',hdc:cdrom,r', { target: '', format: 'empty', vdev: 'hdc', devtype: 'cdrom', access: 'ro' }],
    ['vdev=xvda,discard,target=/a', { target: '/a', vdev: 'xvda', discard: true }],
    ['/a,raw,xvda,w,backend=driver1,script=block-foo', { backend: 'driver1', script: 'block-foo' }],
  ];
  for (const [spec, want] of table) t.match(parseDiskSpec(spec), { spec, ...want }, spec);

  const bad: Array<[string, string]> = [
    ['/a,raw', 'no vdev specified'],
    ['/a,vmdk,xvda', "unknown value for format: `vmdk'"],
    ['/a,raw,xvda,w,extra', 'too many positional parameters at `extra\''],
    ['/a,raw,xvda,color=red', "unknown parameter `color'"],
    ['nfs:/a,xvda,w', "unknown deprecated disk prefix `nfs:'"],
    ['/a,raw,vda', "invalid vdev `vda'"],
    [',,xvda', 'no target specified'],
    ['/a,raw,xvda,format=raw', 'format specified more than once'],
  ];
  for (const [spec, msg] of bad) t.throws(() => parseDiskSpec(spec), { message: `disk specification \`${spec}': ${msg}` }, spec);
});

t.test('vif and pci specs', async (t) => {
  t.match(parseVifSpec('mac=00:16:3e:aa:bb:cc,bridge=xenbr0,type=ioemu,model=e1000,mtu=1500,vifname=v1,ip=10.0.0.2'),
    { mac: '00:16:3e:aa:bb:cc', bridge: 'xenbr0', type: 'ioemu', model: 'e1000', mtu: 1500, vifname: 'v1', ip: '10.0.0.2' });
  t.same(parseVifSpec(''), { spec: '' });
  for (const [spec, msg] of [
    ['bridge', "expected key=value, got `bridge'"],
    ['colour=red', "unknown key `colour'"],
    ['mac=01:16:3e:aa:bb:cc', "mac address `01:16:3e:aa:bb:cc' is a multicast address"],
    ['type=tap', "invalid type `tap', expected vif or ioemu"],
  ] as const) t.throws(() => parseVifSpec(spec), { message: `vif specification \`${spec}': ${msg}` }, spec);

  t.match(parsePciSpec('0001:0a:1f.7'), { domain: 1, bus: 10, dev: 31, func: 7 });
  t.match(parsePciSpec('03:00.1,seize=1,rdm_policy=relaxed'), { domain: 0, bus: 3, dev: 0, func: 1, seize: true, rdm_policy: 'relaxed' });
});

t.test('PCI_SPEC_STRING as libxlu 4.17 reads it (xl-pci-configuration(5))', async (t) => {
  const d = { permissive: false, msitranslate: false, seize: false, power_mgmt: false, rdm_policy: 'strict' };
  // The man page's three equivalent spellings.
  for (const s of ['36:00.0@14,seize=1', '36:00.0,vslot=14,seize=1', 'bdf=36:00.0,vslot=14,seize=1']) {
    t.match(parsePciSpec(s), { ...d, domain: 0, bus: 0x36, dev: 0, func: 0, vslot: 0x14, seize: true }, s);
  }
  t.match(parsePciSpec('0000:03:00.0'), { ...d, domain: 0, bus: 3, dev: 0, func: 0 });
  t.equal(parsePciSpec('0000:03:00.0').vslot, undefined, 'no vslot unless given');
  t.match(parsePciSpec('ffff:ff:1f.7'), { domain: 0xffff, bus: 0xff, dev: 0x1f, func: 7 });
  t.match(parsePciSpec('03:00.*@5'), { func: '*', vslot: 5 });
  t.match(parsePciSpec('03:00.0,'), { bus: 3 }, 'a trailing comma');
  t.match(parsePciSpec('03:00.0,permissive=1,msitranslate=1,power_mgmt=1'), { permissive: true, msitranslate: true, power_mgmt: true });
  t.match(parsePciSpec('03:00.0,permissive=yes'), { permissive: false }, 'booleans are atoi: yes is 0');
  t.match(parsePciSpec('03:00.0,permissive=0', { permissive: true, msitranslate: true }), { permissive: false, msitranslate: true },
    'pci_* defaults, the device\'s own option wins');
  t.match(parsePciSpec('name=nic0'), { name: 'nic0' });
  for (const [spec, report] of [
    ['', ''], ['03:00', ''], ['3', ''], ['03:20.0', ''], ['03:00.8', ''], ['10000:00:00.0', ''], ['100:00.0', ''],
    ['03:00.0@20', ''], ['03:00.0@', ''], ['03:00.0x', ''], ['03:00.0,permissive', ''],
    ['03:00.0,bdf=04:00.0,name=x', ''], ['name=x', 'ok'], ['vslot=3', ''],
    ['03:00.0,bogus=1', 'Unknown PCI_SPEC_STRING option: bogus: '],
    ['03:00.0,rdm_policy=lax', 'Unknown RDM policy: lax: '],
  ] as const) {
    if (report === 'ok') continue;
    t.throws(() => parsePciSpec(spec), { message: `${report}unable to parse PCI_SPEC_STRING "${spec}". Reason: Invalid argument` }, `\`${spec}' refused`);
  }
  const c = parseXlCfg('name="p"\npci_permissive=1\npci_msitranslate=1\npci = [ "03:00.0", "04:00.0,permissive=0" ]\n', { file: 'p.cfg' });
  t.same(c.pci.map((p) => [pciBdf(p), p.permissive, p.msitranslate]), [['0000:03:00.0', true, true], ['0000:04:00.0', false, true]],
    'pci_permissive and pci_msitranslate apply to each device');
  const again = domainConfigFromStruct(JSON.parse(JSON.stringify(c)));
  t.same(again.pci, c.pci, 'the same devices after crossing the wire');
});

t.test('a config that crossed the wire is checked by the same rules', async (t) => {
  const c = parseXlCfg(FULL, { file: 'guest1.cfg' });
  const wire = JSON.parse(JSON.stringify(c));
  const back = domainConfigFromStruct(wire);
  t.same(back, c, 'round trip');
  t.throws(() => domainConfigFromStruct({ ...wire, memory: 'x' }),
    { message: "xend.domain.create: config parsing error near `memory': expected an integer, got `x'" });
  t.throws(() => domainConfigFromStruct({ ...wire, colour: 1 }),
    { message: "xend.domain.create: config parsing error near `colour': unknown key `colour'" });
  t.throws(() => domainConfigFromStruct([1]), { message: "xend.domain.create: config parsing error near `config': expected a struct" });
});
