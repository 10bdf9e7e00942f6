// Results out: an aligned text table for people, JSON for machines
// (bench/results/latest.json and a timestamped copy, gitignored).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { passes, type Metric } from './suite.js';

export interface SuiteResult {
  suite: string;
  description: string;
  ok: boolean;
  error?: string;
  seconds: number;
  metrics: Metric[];
  notes: string[];
}

export interface BenchReport {
  date: string;
  commit: string | undefined;
  host: { cpus: number; model: string; node: string; loadavg: number[] };
  options: { quick: boolean; profile: boolean; cpu: number | null; nodeFlags: string[] };
  suites: SuiteResult[];
}

function num(v: number): string {
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatTable(results: SuiteResult[]): string {
  const head = ['suite', 'metric', 'value', 'unit', 'baseline', 'ratio', 'target', 'result'];
  const right = new Set([2, 4, 5]);
  const rows: string[][] = [];
  for (const r of results) {
    if (!r.ok) rows.push([r.suite, '(suite failed)', '', '', '', '', '', 'ERROR']);
    for (const m of r.metrics) {
      const p = passes(m);
      rows.push([
        r.suite,
        m.name,
        num(m.value),
        m.unit,
        m.baseline !== undefined ? num(m.baseline) : '',
        m.baseline ? `${(m.value / m.baseline).toFixed(2)}x` : '',
        m.target ? `${m.target.cmp} ${num(m.target.value)}${m.target.ratio ? 'x' : ''}` : '',
        p === undefined ? '' : p ? 'pass' : 'FAIL',
      ]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** One line per metric that has details: what explains the number. */
export function formatDetails(results: SuiteResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    for (const m of r.metrics) {
      if (!m.details || Object.keys(m.details).length === 0) continue;
      const kv = Object.entries(m.details).map(([k, v]) =>
        `${k}=${typeof v !== 'number' ? v : Number.isInteger(v) ? v.toLocaleString('en-US') : num(v)}`);
      lines.push(`  ${r.suite} / ${m.name}: ${kv.join(' ')}`);
    }
  }
  return lines.join('\n');
}

/** Writes latest.json and <timestamp>.json; returns their paths. */
export function writeReport(dir: string, report: BenchReport): string[] {
  mkdirSync(dir, { recursive: true });
  const body = JSON.stringify(report, null, 2) + '\n';
  const stamp = report.date.replace(/[:.]/g, '-');
  const files = [join(dir, 'latest.json'), join(dir, `${stamp}.json`)];
  for (const f of files) writeFileSync(f, body);
  return files;
}
