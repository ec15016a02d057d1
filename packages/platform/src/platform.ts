import type { IncomingMessage } from 'node:http';
import type { Namespace, Server as SocketServer } from 'socket.io';
import type { EventBus, Queue } from '@platform/queue';
import type { FunctionPool } from './pool.js';
import type { FunctionPools } from './pools.js';
import type { AnnouncedEvents, Announcement, Capacity } from './capacity.js';
import { addToTimeline, timelineEvent } from './timeline.js';
import { checkAdmin, type AdminAuth } from './auth.js';
import { queueDepth } from './metrics.js';
import { TierReports } from './tier-reports.js';
import {
  LAST_ERRORS,
  LATENCY_WINDOW_MS,
  latencyHistogram,
  mergeFigures,
  RATE_WINDOW_MS,
  type EdgeFigures,
  type LastError,
  type OwnFigures,
  type TierFigures,
} from './tier-stats.js';
import { PLATFORM_EVENT, PLATFORM_NAMESPACE, type LiveFunction, type LiveInstance, type PlatformSnapshot, type TimelineEvent } from '@platform/protocol';

/** Latencies kept per function at most (the newest). */
const MAX_SAMPLES = 2_000;
/** Dashboard sockets that gave the admin token. */
const ADMIN_ROOM = 'admin';

function errorMessage(body: string | undefined): string {
  try {
    const parsed = JSON.parse(body ?? '') as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error.slice(0, 200);
  } catch {
    // not JSON
  }
  return (body ?? '').slice(0, 200);
}

/** The snapshot for everyone: when and how functions failed, not the words (they may carry users' data). */
function withoutErrorTexts(snapshot: PlatformSnapshot): PlatformSnapshot {
  return { ...snapshot, functions: snapshot.functions.map((f) => ({ ...f, lastErrors: f.lastErrors.map(({ at, status }) => ({ at, status })) })) };
}

/**
 * Platform events for the workshop dashboard, on the socket.io namespace `/system`: each
 * function's instances, calls per second, latency percentiles, in-flight calls, last errors,
 * the queue's depth and a timeline of scale events. The instances and the timeline are the
 * controller's; the call figures are the whole tier's: this edge's own, kept in memory, merged
 * with those every other edge publishes on the event bus (TierReports).
 */
export class Platform {
  private readonly instances = new Map<string, Map<string, LiveInstance>>();
  private readonly samples = new Map<string, Array<{ at: number; ms: number }>>();
  private readonly errors = new Map<string, LastError[]>();
  private timeline: TimelineEvent[] = [];
  private readonly namespaces: Namespace[] = [];
  private lastDepth: number | null = null;
  private ticker: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  /** The other edges' figures; without an event bus, this edge's own are the whole tier's. */
  private readonly reports: TierReports | undefined;

  constructor(
    private readonly pools: FunctionPools,
    private readonly queue: Queue,
    private readonly auth: AdminAuth,
    tier: Pick<Capacity, 'on' | 'history'>,
    shared?: { events: EventBus; onError: (error: Error) => void },
  ) {
    if (shared) {
      const own = () => Object.fromEntries([...pools.values()].map((pool) => [pool.spec.name, this.edgeFigures(this.ownFigures(pool, Date.now()))]));
      this.reports = new TierReports(shared.events, pools, own, shared.onError);
    }
    // The timeline is the controller's: what it announces from now on, and what it did before.
    const announced = <K extends keyof AnnouncedEvents>(kind: K) =>
      tier.on(kind, ((data: AnnouncedEvents[K][0]) => this.record(timelineEvent({ kind, at: data.at ?? Date.now(), data } as Announcement))) as never);
    announced('instanceStarted');
    announced('instanceStopped');
    announced('scaled');
    announced('edgesScaled');
    announced('deployed');
    announced('removed');
    const past = () => this.record(...(tier.history?.() ?? []).map(timelineEvent));
    tier.on('followed', past);
    past();
    pools.each((pool) => {
      const name = pool.spec.name;
      this.instances.set(name, new Map());
      this.samples.set(name, []);
      this.errors.set(name, []);
      pool.on('instanceStarted', (e) => {
        this.instances.get(name)!.set(e.instance, { id: e.instance, pid: e.pid, startedAt: e.at ?? Date.now(), coldStartMs: e.coldStartMs, reason: e.reason });
      });
      pool.on('instanceStopped', (e) => this.instances.get(name)!.delete(e.instance));
      pool.on('callFinished', (e) => {
        const samples = this.samples.get(name)!;
        samples.push({ at: Date.now(), ms: e.durationMs });
        // Trimmed now and then, not at every call: cutting the front of the array copies all of it.
        if (samples.length >= 2 * MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES);
        if (e.status >= 500 || e.status === 429) {
          const errors = this.errors.get(name)!;
          errors.unshift({ at: Date.now(), status: e.status, message: errorMessage(e.response.body) });
          errors.splice(LAST_ERRORS);
        }
      });
    });
  }

  /**
   * Serves the `/system` namespace of a socket.io server; read access as for the /system routes.
   * A token given is checked with the same count of failures per client address as the routes'.
   */
  attach(io: SocketServer, clientAddress: (req: IncomingMessage) => string): void {
    const nsp = io.of(PLATFORM_NAMESPACE);
    nsp.use((socket, next) => {
      const token = (socket.handshake.auth as { token?: unknown }).token;
      const header = typeof token === 'string' ? `Bearer ${token}` : socket.handshake.headers.authorization;
      const visitor = () => next(this.auth.readPublic !== false ? undefined : new Error('unauthorized'));
      if (!header) return visitor();
      checkAdmin(this.auth, header, clientAddress(socket.request)).then((refusal) => {
        if (refusal) return visitor();
        void socket.join(ADMIN_ROOM);
        next();
      }, next);
    });
    nsp.on('connection', (socket) => {
      const snapshot = this.snapshot();
      socket.emit(PLATFORM_EVENT, socket.rooms.has(ADMIN_ROOM) ? snapshot : withoutErrorTexts(snapshot));
    });
    this.namespaces.push(nsp);
  }

  /**
   * Sends a snapshot every second while anyone watches, refreshing rates and the queue depth;
   * publishes this edge's figures every second and takes in the other edges'.
   */
  async start(intervalMs = 1_000): Promise<void> {
    await this.reports?.start(intervalMs);
    this.ticker = setInterval(() => {
      if (!this.namespaces.some((n) => n.sockets.size > 0)) return;
      void queueDepth(this.queue, Math.min(500, intervalMs / 2)).then((depth) => {
        this.lastDepth = depth ?? null;
        this.broadcast();
      });
    }, intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    clearTimeout(this.pending);
    await this.reports?.stop();
  }

  /** The tier's call figures of a function: this edge's merged with the latest of every other edge. */
  figures(pool: FunctionPool): TierFigures {
    const now = Date.now();
    return mergeFigures(this.ownFigures(pool, now), this.reports?.others(pool.spec.name) ?? [], now);
  }

  /** The dashboard's data, complete (error texts included: see withoutErrorTexts). */
  snapshot(): PlatformSnapshot {
    const functions = [...this.pools.values()].map((pool): LiveFunction => {
      const { spec } = pool;
      const status = pool.status();
      return {
        name: spec.name,
        mode: spec.mode,
        maxInstances: spec.maxInstances,
        idleSeconds: spec.idleSeconds,
        timeoutSeconds: spec.timeoutSeconds,
        instances: this.liveInstances(pool),
        replicas: status.replicas,
        // The controller's count, the same on every edge.
        coldStarts: status.coldStarts,
        ...this.figures(pool),
      };
    });
    return { at: Date.now(), functions, queueDepth: this.lastDepth, timeline: this.timeline };
  }

  /** What this edge did of a function's calls: its part of the tier's figures. */
  private ownFigures(pool: FunctionPool, now: number): OwnFigures {
    const name = pool.spec.name;
    const status = pool.status();
    const kept = this.samples.get(name)!;
    const old = kept.findIndex((s) => s.at >= now - LATENCY_WINDOW_MS);
    kept.splice(0, old < 0 ? kept.length : old);
    const samples = kept.slice(-MAX_SAMPLES);
    const latencies = samples.map((s) => s.ms);
    return {
      inFlight: status.inFlight,
      waiting: status.queued,
      invocationCount: status.invocationCount,
      recentCalls: samples.filter((s) => s.at >= now - RATE_WINDOW_MS).length,
      latency: latencyHistogram(latencies),
      errors: this.errors.get(name)!,
      samples: latencies,
    };
  }

  /** Own figures as other edges get them: latencies in buckets only. */
  private edgeFigures({ samples: _samples, ...figures }: OwnFigures): EdgeFigures {
    return figures;
  }

  /**
   * The instances the controller lists (the same on every edge, whichever edge's calls started
   * them), with what this edge saw of their start when the controller does not say.
   */
  private liveInstances(pool: FunctionPool): LiveInstance[] {
    const seen = this.instances.get(pool.spec.name)!;
    return pool.instances().map((i) => {
      const known = seen.get(i.id);
      return {
        id: i.id,
        pid: i.pid ?? known?.pid,
        startedAt: i.startedAt ?? known?.startedAt ?? Date.now(),
        coldStartMs: i.coldStartMs ?? known?.coldStartMs ?? 0,
        reason: i.reason ?? known?.reason ?? 'call',
      };
    });
  }

  private record(...events: TimelineEvent[]): void {
    if (events.length === 0) return;
    this.timeline = addToTimeline(this.timeline, events);
    // Instances appearing and going are shown at once (coalesced to one snapshot per 100 ms).
    this.pending ??= setTimeout(() => {
      this.pending = undefined;
      this.broadcast();
    }, 100);
  }

  private broadcast(): void {
    if (!this.namespaces.some((n) => n.sockets.size > 0)) return;
    const full = this.snapshot();
    const open = withoutErrorTexts(full);
    for (const nsp of this.namespaces) {
      nsp.to(ADMIN_ROOM).emit(PLATFORM_EVENT, full);
      nsp.except(ADMIN_ROOM).emit(PLATFORM_EVENT, open);
    }
  }
}
