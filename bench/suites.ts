// Every benchmark suite, in the order `npm run bench` runs them. To add one,
// write bench/<name>.ts exporting a Suite (see bench/suite.ts and
// docs/benchmarks.md) and list it here.
import type { Suite } from './suite.js';
import { xenstored } from './xenstored.js';
import { boot } from './boot.js';
import { evtchn } from './evtchn.js';
import { density } from './density.js';
import { net } from './net.js';
import { scheduler } from './scheduler.js';
import { blk } from './blk.js';
import { xenctrl } from './xenctrl.js';
import { hvm } from './hvm.js';
import { migrateSuite } from './migrate.js';
import { stubdom } from './stubdom.js';
import { pci } from './pci.js';
import { pciNet } from './pci_net.js';

export const SUITES: Suite[] = [
  xenstored,
  boot,
  evtchn,
  density,
  net,
  scheduler,
  blk,
  xenctrl,
  hvm,
  migrateSuite,
  stubdom,
  pci,
  pciNet,
];
