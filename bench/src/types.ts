/** One figure of a scenario, with its target when the project sets one. */
export interface Metric {
  name: string;
  value: number;
  unit: string;
  /** `value` must be below (`<`) or at least (`>=`) `target`. */
  target?: { op: '<' | '>=' | '=' | '<='; value: number } | undefined;
  /** What the figure is compared against (the floor), for the table and chart. */
  floor?: { name: string; value: number } | undefined;
  /** The figure could not be measured (e.g. a wait that never ended): shown as "not reached", never met. */
  missing?: boolean | undefined;
}

export interface ScenarioResult {
  id: string;
  title: string;
  status: 'ok' | 'not run' | 'failed';
  /** Why a scenario did not run or failed. */
  reason?: string | undefined;
  metrics: Metric[];
  /** A line shown under the figures (e.g. what limits them). */
  note?: string | undefined;
  /** Raw figures for the JSON file (percentiles, counts, settings). */
  details?: Record<string, unknown> | undefined;
  durationMs?: number | undefined;
}

export interface BenchRun {
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; model: string; node: string; platform: string; loadAverage: number[]; memoryMb: number };
  settings: Record<string, unknown>;
  scenarios: ScenarioResult[];
}

export function met(metric: Metric): boolean | undefined {
  const t = metric.target;
  if (!t) return undefined;
  if (metric.missing) return false;
  switch (t.op) {
    case '<':
      return metric.value < t.value;
    case '<=':
      return metric.value <= t.value;
    case '>=':
      return metric.value >= t.value;
    case '=':
      return metric.value === t.value;
  }
}
