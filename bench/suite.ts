// What a benchmark suite is and what it reports. A suite is one file,
// bench/<name>.ts, exporting a Suite; bench/suites.ts lists them.
import type { Scope } from './harness.js';

/**
 * A promise a metric must keep, e.g. >= 20000 ops/s or <= 100 MB; with
 * `ratio`, a promise about value / baseline (e.g. <= 2.5x the baseline).
 */
export interface Target {
  cmp: '>=' | '<=';
  value: number;
  ratio?: boolean;
}

export interface Metric {
  /** Short, stable name: results are compared across runs by it. */
  name: string;
  value: number;
  unit: string;
  /**
   * The same quantity for a reference measured in the same run (same unit),
   * e.g. what a zero-work server would do; ratio = value / baseline.
   */
  baseline?: number;
  target?: Target;
  /** Raw sample values (same unit), when value summarises several. */
  samples?: number[];
  /** Anything else worth keeping in the JSON (CPU use, retries, ...). */
  details?: Record<string, number | string>;
}

export interface RunOptions {
  /** Short durations and small counts: checks the harness, not performance. */
  quick: boolean;
  /** Profile the processes under test (node --cpu-prof) and summarise. */
  profile: boolean;
  /** Where profiles and their summaries go. */
  profileDir: string;
  /** All processes of a suite on this CPU (--pin), or undefined. */
  cpu: number | undefined;
  /** Extra node/V8 flags for the Node processes under test (not the baseline). */
  nodeFlags: string[];
}

export interface SuiteContext {
  /** Repository root (sources under it, compiled code under dist/). */
  root: string;
  /** Compiled JavaScript root: `${root}/dist`. */
  dist: string;
  opts: RunOptions;
  /** Processes and temp dirs of this suite; released when the suite ends, however it ends. */
  scope: Scope;
  /** Progress on stderr (stdout carries the results table). */
  log(msg: string): void;
  /** Lines printed under the results table (notes, profile findings). */
  note(msg: string): void;
}

export interface Suite {
  name: string;
  description: string;
  /** What the baseline column holds for this suite (printed under the table). */
  baseline?: string;
  run(ctx: SuiteContext): Promise<Metric[]>;
}

export function passes(m: Metric): boolean | undefined {
  if (!m.target) return undefined;
  const v = m.target.ratio ? (m.baseline ? m.value / m.baseline : NaN) : m.value;
  if (Number.isNaN(v)) return false;
  return m.target.cmp === '>=' ? v >= m.target.value : v <= m.target.value;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The p-th percentile by nearest rank (the smallest sample with at least p% of them at or below it). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
