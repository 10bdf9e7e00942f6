// A host PCI device: one process per `xenemu up --pci` device, spawned by
// the hypervisor at boot (docs/passthrough.md).
//
//   node dist/processes/pcidev/main.js --host H --rundir D --bdf 0000:03:00.0 --pci e1000|nvme:<image>
//   title  xenemu-pcidev <model> bdf=<bdf> host=H
//   env    XENEMU_PCIDEV_CTL  the hypervisor's ZeroMQ endpoint for this device
//          XENEMU_LIFELINE=1  fd 3: dies with the hypervisor
//
// It serves the configuration space on <rundir>/pci/<bdf>.cfg, the BARs
// through the channel the hypervisor created (/xenemu.H.pci<bdf>.bar), does
// the model's DMA through its IOMMU context, gives an e1000 the TAP
// xpt<bus> of the host's namespace as its wire, and leaves nothing behind:
// the socket and the TAP go with it; the segments are the hypervisor's.
import { parseArgs } from 'node:util';
import * as zmq from 'zeromq';
import { watchParent } from '../../shared/runtime/lifeline.js';
import { pcidevTitle, setProcessTitle } from '../../shared/runtime/title.js';
import { ZmqOutbox } from '../../shared/runtime/zmq_outbox.js';
import {
  decodePciMessage, encodePciMessage, parseBdf, parsePciSpec, pciBarSegment, pciConfigSocket, pciIrqSocket,
  type HypervisorToPciDev, type PciDevToHypervisor,
} from '../../shared/wire/pcidev.js';
import { ConfigServer, TEST_DMA_HOOK } from './config_server.js';
import { HostPciDevice } from './device.js';
import { IrqSocket } from './irq_socket.js';
import { pciPostedSegment } from '../../shared/hw/posted_irq.js';
import { modelFactory } from './models.js';
import { dropWire, hostNicTap, tapWire } from './wire.js';
import { readHostNet } from '../../shared/net/uplink.js';

const { values } = parseArgs({
  options: { host: { type: 'string' }, rundir: { type: 'string' }, bdf: { type: 'string' }, pci: { type: 'string' } },
  strict: true,
});
const spec = parsePciSpec(values.pci ?? '');
const sbdf = parseBdf(values.bdf ?? '');
const endpoint = process.env.XENEMU_PCIDEV_CTL;
if (!values.host || !values.rundir || typeof spec === 'string' || sbdf === null || !endpoint) {
  process.stderr.write(`usage: pcidev --host H --rundir D --bdf SSSS:BB:DD.F --pci e1000|nvme:<image> (XENEMU_PCIDEV_CTL set)\n` +
                       (typeof spec === 'string' ? `${spec}\n` : ''));
  process.exit(2);
}
const host = values.host;
const bdf = values.bdf!;
const model = spec.model;
setProcessTitle(pcidevTitle(host, spec.model, bdf));
const log = (m: string) => process.stdout.write(`${new Date().toISOString()} ${bdf}: ${m}\n`);

const bus = (sbdf >> 8) & 0xff;
// The e1000's cable is a TAP of the host's namespace (wire.ts); it goes with this process.
// A host without a namespace of its own (no net.json) names it after itself too.
const tap = spec.model === 'e1000' ? hostNicTap(bus, readHostNet(values.rundir) ? null : values.rundir) : undefined;
const factory = modelFactory(spec, bus, tap ? tapWire(tap, log) : dropWire);
if (typeof factory === 'string') {
  log(factory);
  process.exit(1);
}

const sock = new zmq.Pair({ linger: 0 });
const outbox = new ZmqOutbox(sock, (e) => log(`send failed: ${(e as Error).message}`));
const send = (m: PciDevToHypervisor) => outbox.send(encodePciMessage(m));
const irqSocket = new IrqSocket(pciIrqSocket(values.rundir, bdf), log);
const dev = new HostPciDevice({
  bdf, spec, factory, barSegment: pciBarSegment(host, bdf), postedSegment: pciPostedSegment(host, bdf), irqSocket, log, send,
});
// Test hook (config_server.ts): only a test host names it; otherwise the config socket has no DMA op.
const testDma = (process.env.XENEMU_TEST_HOOKS ?? '').split(',').includes(TEST_DMA_HOOK);
const cfg = new ConfigServer(pciConfigSocket(values.rundir, bdf), dev, log, testDma);

let closing = false;
function close(why: string, code: number): void {
  if (closing) return;
  closing = true;
  log(`going down: ${why}`);
  cfg.close();
  irqSocket.close();
  dev.close();
  outbox.close();
  sock.close();
  process.exit(code);
}
watchParent(() => close('hypervisor gone', 0));
process.on('SIGTERM', () => close('SIGTERM', 0));
process.on('SIGINT', () => { /* the host's, not ours: the hypervisor decides */ });

async function main(): Promise<void> {
  await cfg.listen();
  await irqSocket.listen();
  sock.connect(endpoint!);
  dev.startBars(new URL('./bar_doorbell.js', import.meta.url));
  const h = { ...dev.hello(), ...(tap ? { tap } : {}) };
  send(h);
  log(`${model} ${h.vendor.toString(16)}:${h.device.toString(16)} up, config space on ${pciConfigSocket(values.rundir!, bdf)}`);
  for await (const [frame] of sock) {
    const m = decodePciMessage<HypervisorToPciDev>(frame as Buffer);
    if (!m) { log('dropped a malformed message'); continue; }
    if (m.type === 'context') dev.setContext(m);
    else if (m.type === 'msix') dev.programMsix(m);
  }
}

main().catch((e: Error) => {
  if (!closing) { log(`failed: ${e.stack ?? e.message}`); close('failure', 1); }
});
