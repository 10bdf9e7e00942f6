// `npm run bench` / `node dist/bench/run.js [SUITE...] [--quick] [--profile] [--strict]`
//
// Runs the registered suites (bench/suites.ts) one after the other, prints
// one aligned table of results on stdout and writes them as JSON to
// bench/results/latest.json and bench/results/<date>.json. Progress goes to
// stderr. Whatever a suite starts is stopped when it ends, and on Ctrl-C.
//
// Exit status: 1 if a suite failed to run (or, with --strict, missed a
// target), 2 on a usage error, 0 otherwise.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Scope, installCleanup, sweepStaleDirs } from './harness.js';
import { formatTable, formatDetails, writeReport, type BenchReport, type SuiteResult } from './report.js';
import { SUITES } from './suites.js';
import { passes, type SuiteContext } from './suite.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = resolve(HERE, '..', '..');
const DIST = join(ROOT, 'dist');

const log = (msg: string): void => { process.stderr.write(`${msg}\n`); };

const USAGE = `usage: node dist/bench/run.js [SUITE...] [options]
  SUITE               run only these suites (default: all)
  --quick             short runs and small counts, to check the benchmarks themselves
  --profile           profile the processes under test (CPU; heap where a suite
                      measures memory) and print where time and memory go
  --pin               run each suite's processes on one CPU (the last): costs
                      without cross-CPU wake-ups, and steadier on a busy machine
  --node-flags FLAGS  extra node/V8 flags for the Node processes under test,
                      e.g. --node-flags="--max-semi-space-size=1"
  --strict            exit 1 when a target is missed
  --list              list the suites`;

function parse() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        quick: { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        strict: { type: 'boolean', default: false },
        pin: { type: 'boolean', default: false },
        'node-flags': { type: 'string', default: '' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    log(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

/** Sources newer than their compiled .js: numbers would describe old code. */
function staleSources(): string[] {
  const stale: string[] = [];
  const walk = (dir: string): void => {
    if (!existsSync(join(ROOT, dir))) return;
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const rel = join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const js = join(DIST, rel.replace(/\.ts$/, '.js'));
        if (!existsSync(js) || statSync(js).mtimeMs < statSync(join(ROOT, rel)).mtimeMs) stale.push(rel);
      }
    }
  };
  for (const d of ['bench', 'processes', 'shared']) walk(d);
  return stale;
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parse();
  if (values.help) { log(USAGE); return 0; }
  if (values.list) {
    for (const s of SUITES) process.stdout.write(`${s.name.padEnd(16)} ${s.description}\n`);
    return 0;
  }
  const unknown = positionals.filter((p) => !SUITES.some((s) => s.name === p));
  if (unknown.length) {
    log(`bench: no suite ${unknown.join(', ')}; suites: ${SUITES.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const selected = positionals.length ? SUITES.filter((s) => positionals.includes(s.name)) : SUITES;

  installCleanup(log);
  const swept = sweepStaleDirs();
  if (swept) log(`bench: removed ${swept} temporary director${swept === 1 ? 'y' : 'ies'} left by a killed run`);
  const stale = staleSources();
  if (stale.length) {
    log(`bench: warning: ${stale.length} source file(s) newer than dist/ (e.g. ${stale.slice(0, 3).join(', ')}); run \`npm run build\` first`);
  }

  const date = new Date().toISOString();
  const resultsDir = join(ROOT, 'bench', 'results');
  const opts = {
    quick: values.quick!,
    profile: values.profile!,
    profileDir: join(resultsDir, 'profiles', date.replace(/[:.]/g, '-')),
    cpu: values.pin ? cpus().length - 1 : undefined,
    nodeFlags: values['node-flags']!.split(/\s+/).filter(Boolean),
  };
  const load = loadavg();
  const modes = [opts.quick && 'quick', opts.profile && 'profiling', opts.cpu !== undefined && `pinned to CPU ${opts.cpu}`,
    opts.nodeFlags.length && `node flags ${opts.nodeFlags.join(' ')}`].filter(Boolean);
  log(`bench: ${selected.map((s) => s.name).join(', ')}${modes.length ? ` (${modes.join(', ')})` : ''}; `
    + `${cpus().length} CPUs, load ${load.map((l) => l.toFixed(2)).join(' ')}`);

  const results: SuiteResult[] = [];
  for (const suite of selected) {
    const scope = new Scope(suite.name, { cpu: opts.cpu });
    const notes: string[] = [];
    const ctx: SuiteContext = { root: ROOT, dist: DIST, opts, scope, log, note: (m) => notes.push(m) };
    const t0 = performance.now();
    const r: SuiteResult = { suite: suite.name, description: suite.description, ok: true, seconds: 0, metrics: [], notes };
    try {
      r.metrics = await suite.run(ctx);
    } catch (e) {
      r.ok = false;
      r.error = (e as Error).stack ?? String(e);
      log(`bench: ${suite.name} failed: ${(e as Error).message}`);
    } finally {
      await scope.dispose();
    }
    r.seconds = Math.round((performance.now() - t0) / 100) / 10;
    log(`bench: ${suite.name} done in ${r.seconds} s`);
    results.push(r);
  }

  process.stdout.write(`\n${formatTable(results)}\n`);
  process.stdout.write('\nbaseline (measured in the same run; ratio = value / baseline):\n');
  for (const s of selected) if (s.baseline) process.stdout.write(`  ${s.name}: ${s.baseline}\n`);
  const details = formatDetails(results);
  if (details) process.stdout.write(`\ndetails:\n${details}\n`);
  for (const r of results) if (!r.ok) process.stdout.write(`\n${r.suite} failed:\n${r.error}\n`);
  for (const r of results) for (const n of r.notes) process.stdout.write(`\n${n}\n`);

  const report: BenchReport = {
    date,
    commit: gitCommit(),
    host: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, loadavg: load },
    options: { quick: opts.quick, profile: opts.profile, cpu: opts.cpu ?? null, nodeFlags: opts.nodeFlags },
    suites: results,
  };
  const files = writeReport(resultsDir, report);
  log(`\nbench: results in ${files.map((f) => f.slice(ROOT.length + 1)).join(', ')}`);

  const failed = results.some((r) => !r.ok);
  const missed = results.some((r) => r.metrics.some((m) => passes(m) === false));
  return failed || (values.strict && missed) ? 1 : 0;
}

process.exitCode = await main();
