// The self-scaling edge tier: the leading controller sets how many edges run, by how much CPU they
// use. Up at once when the edges together need more; down one step at a time, and only after the
// load has stayed low for a while (a stable window, as Knative's autoscaler keeps one), so that
// a pause between two bursts does not stop an edge the next burst needs.
import type { Member } from '../cluster/members.js';

/** The edges' service, as the scaler sees it (a Swarm service, see `swarmService`). */
export interface ScalableService {
  readonly name: string;
  /** Replicas it is set to, and the most it can run (e.g. one per node). */
  read(): Promise<{ replicas: number; limit: number }>;
  scale(replicas: number): Promise<void>;
}

export interface EdgeScaling {
  /** Never fewer edges than this. */
  min: number;
  /** Never more than this (and never more than the service can place). */
  max: number;
  /** The share of a core each edge should use at most: 0.5 keeps every edge half idle. */
  targetCpu: number;
  /** How long the load must stay low before an edge is stopped. */
  scaleDownAfterMs: number;
}

/** How many edges the reported CPU needs, within [min, max]. */
export function edgesWanted(cpu: number[], { min, max, targetCpu }: Pick<EdgeScaling, 'min' | 'max' | 'targetCpu'>): number {
  const total = cpu.reduce((sum, c) => sum + Math.max(0, c), 0);
  return Math.min(max, Math.max(min, Math.ceil(total / targetCpu - 1e-9)));
}

/** Refuses settings that cannot work: they are read once, at start. */
export function checkEdgeScaling(s: EdgeScaling): EdgeScaling {
  if (!(Number.isInteger(s.min) && s.min >= 1)) throw new RangeError(`edge scaling: min must be a whole number >= 1, not ${s.min}`);
  if (!(s.max >= s.min)) throw new RangeError(`edge scaling: max (${s.max}) must be at least min (${s.min})`);
  if (!(s.targetCpu > 0)) throw new RangeError(`edge scaling: targetCpu must be above 0, not ${s.targetCpu}`);
  if (!(s.scaleDownAfterMs >= 0)) throw new RangeError(`edge scaling: scaleDownAfterMs must be 0 or more, not ${s.scaleDownAfterMs}`);
  return s;
}

export interface EdgeScaledEvent {
  service: string;
  from: number;
  to: number;
  /** Why, in words: the CPU the edges reported against the target. */
  reason: string;
}

export interface EdgeScalerOptions extends EdgeScaling {
  service: ScalableService;
  /** The tier's live members (edges are those with role `edge`). */
  members: () => Promise<Member[]>;
  intervalMs?: number;
  onScaled?: (event: EdgeScaledEvent) => void;
  log?: (message: string) => void;
}

/** Runs while this controller leads: one decision per interval. */
export class EdgeScaler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  /** Each decision's wanted count, newest last, over the scale-down window. */
  private history: Array<{ at: number; wanted: number }> = [];
  /** When the replicas last changed (or the first decision). */
  private since: number | undefined;
  private failing = false;

  constructor(private readonly options: EdgeScalerOptions) {
    checkEdgeScaling(options);
  }

  start(): void {
    const next = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.running = this.tick().then(next);
      }, this.options.intervalMs ?? 2_000);
      this.timer.unref();
    };
    next();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One decision; errors are logged once per outage, never thrown. */
  async tick(now = Date.now()): Promise<void> {
    const { service, scaleDownAfterMs, log } = this.options;
    try {
      const edges = (await this.options.members()).filter((m) => m.role === 'edge');
      const { replicas, limit } = await service.read();
      // What the service can place wins over the settings (a single node holds one edge).
      const max = Math.max(1, Math.min(this.options.max, limit));
      const bounds = { ...this.options, min: Math.min(this.options.min, max), max };
      const cpu = edges.map((e) => e.cpu);
      const wanted = edgesWanted(cpu, bounds);
      this.since ??= now;
      this.history.push({ at: now, wanted });
      this.history = this.history.filter((h) => h.at >= now - scaleDownAfterMs);
      this.failing = false;
      let to = replicas;
      if (wanted > replicas) to = wanted;
      else if (replicas > bounds.max) to = bounds.max;
      else if (replicas < bounds.min) to = bounds.min;
      else if (now - this.since >= scaleDownAfterMs) {
        // Down only to what every decision of the window wanted, and one edge at a time.
        const highest = Math.max(...this.history.map((h) => h.wanted));
        if (highest < replicas) to = replicas - 1;
      }
      if (to === replicas) return;
      await service.scale(to);
      this.since = now;
      this.history = [];
      const total = cpu.reduce((a, b) => a + b, 0);
      const reason = `${total.toFixed(2)} cores used by ${edges.length} edge${edges.length === 1 ? '' : 's'}, target ${bounds.targetCpu} each`;
      log?.(`edges ${service.name}: ${replicas} → ${to} (${reason})`);
      this.options.onScaled?.({ service: service.name, from: replicas, to, reason });
    } catch (error) {
      if (!this.failing) log?.(`edges ${service.name}: cannot scale now: ${(error as Error).message}`);
      this.failing = true;
    }
  }
}
