// The other edges' live figures: every edge publishes its own, for each function, about once a second
// on one event-bus topic, and keeps the latest report of every other edge (see tier-stats.ts).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { EventBus } from '@platform/queue';
import { REPORT_MAX_AGE_MS, type EdgeFigures } from './tier-stats.js';

export const TIER_TOPIC = 'platform.edge-figures';
/** One message at most: PostgreSQL's NOTIFY takes less than 8000 bytes. More functions go in several. */
const MESSAGE_BYTES = 7_000;

interface Report {
  edge: string;
  functions: Record<string, EdgeFigures>;
}

const COUNTS = ['inFlight', 'waiting', 'invocationCount', 'recentCalls'] as const;

const isError = (e: unknown): boolean => {
  const { at, status, message } = (e ?? {}) as Record<string, unknown>;
  return Number.isFinite(at) && Number.isFinite(status) && (message === undefined || typeof message === 'string');
};

/** Whether a function's figures from the bus have the shape this edge sends (anything else is ignored). */
function wellFormed(f: unknown): f is EdgeFigures {
  if (typeof f !== 'object' || f === null) return false;
  const { latency, errors, ...rest } = f as Record<string, unknown>;
  return (
    COUNTS.every((name) => Number.isFinite(rest[name])) &&
    Array.isArray(latency) &&
    latency.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every(Number.isFinite)) &&
    Array.isArray(errors) &&
    errors.every(isError)
  );
}

/** Reports of at most MESSAGE_BYTES each; a function too big even alone goes without its error texts. */
export function messages(edge: string, functions: Record<string, EdgeFigures>): string[] {
  const out: string[] = [];
  let batch: Record<string, EdgeFigures> = {};
  const encode = (fns: Record<string, EdgeFigures>) => JSON.stringify({ edge, functions: fns } satisfies Report);
  const fits = (fns: Record<string, EdgeFigures>) => Buffer.byteLength(encode(fns)) <= MESSAGE_BYTES;
  for (const [name, figures] of Object.entries(functions)) {
    let entry = figures;
    if (!fits({ [name]: entry })) entry = { ...figures, errors: figures.errors.map(({ at, status }) => ({ at, status })) };
    if (Object.keys(batch).length > 0 && !fits({ ...batch, [name]: entry })) {
      out.push(encode(batch));
      batch = {};
    }
    batch[name] = entry;
  }
  if (Object.keys(batch).length > 0) out.push(encode(batch));
  return out;
}

export class TierReports {
  /** This edge, unique per process (a restarted edge is a new one). */
  readonly edge = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  /** Function → edge → its latest figures, with when they arrived (this edge's clock). */
  private readonly latest = new Map<string, Map<string, { receivedAt: number; figures: EdgeFigures }>>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private stopped = false;
  private publishing = false;
  private failing = false;

  constructor(
    private readonly events: EventBus,
    /** The functions this edge serves now: the same tier runs the same functions, others' are ignored. */
    private readonly functions: { has(name: string): boolean },
    /** This edge's figures of each function, to publish. */
    private readonly own: () => Record<string, EdgeFigures>,
    private readonly onError: (error: Error) => void,
  ) {}

  async start(intervalMs = 1_000): Promise<void> {
    this.unsubscribe = await this.events.subscribe(TIER_TOPIC, (payload) => this.receive(payload));
    this.timer = setInterval(() => void this.publish(), intervalMs).unref();
    void this.publish();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.();
  }

  /** The latest figures of fn from every other edge still reporting. */
  others(fn: string): Array<{ receivedAt: number; figures: EdgeFigures }> {
    return [...(this.latest.get(fn)?.values() ?? [])];
  }

  private receive(payload: string): void {
    let report: Partial<Report>;
    try {
      report = JSON.parse(payload) as Partial<Report>;
    } catch {
      return;
    }
    if (typeof report.edge !== 'string' || report.edge === this.edge || typeof report.functions !== 'object' || report.functions === null) return;
    const receivedAt = Date.now();
    for (const [name, figures] of Object.entries(report.functions)) {
      if (!this.functions.has(name) || !wellFormed(figures)) continue;
      let edges = this.latest.get(name);
      if (!edges) this.latest.set(name, (edges = new Map()));
      edges.set(report.edge, { receivedAt, figures });
    }
  }

  private async publish(): Promise<void> {
    // One at a time: a bus slow to answer gets no pile of reports, only the next one.
    if (this.stopped || this.publishing) return;
    this.publishing = true;
    // Edges gone for good are forgotten here (mergeFigures already leaves them out).
    const now = Date.now();
    for (const [name, edges] of this.latest) {
      for (const [edge, { receivedAt }] of edges) if (now - receivedAt > REPORT_MAX_AGE_MS) edges.delete(edge);
      if (!this.functions.has(name)) this.latest.delete(name);
    }
    try {
      for (const message of messages(this.edge, this.own())) await this.events.publish(TIER_TOPIC, message);
      this.failing = false;
    } catch (error) {
      // Once per outage, not every second; and not while stopping (the bus closes after).
      if (!this.failing && !this.stopped) this.onError(new Error(`could not publish this edge's figures: ${(error as Error).message}`));
      this.failing = true;
    } finally {
      this.publishing = false;
    }
  }
}
