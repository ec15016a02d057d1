import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { DeployManifest } from './deploy-request.js';
import type { EventEmitter } from 'node:events';
import type { LogLine } from './runtimes/logs.js';
import type { EdgeScaledEvent } from './controller/edge-scaler.js';

/** A warm instance as an edge sees it: where to send calls, and (for the dashboard) since when and why it runs. */
export interface InstanceInfo {
  id: string;
  url: string;
  /** The credential calls to it carry: held by edges and controllers only, never shown elsewhere. */
  invokeToken: string;
  /** ms since the epoch, the controller's clock. */
  startedAt?: number;
  coldStartMs?: number;
  /** `call` (started for a call), `scaled` (by a scale request) or `adopted` (left running by a controller before this one). */
  reason?: string;
  pid?: number | undefined;
}

/** When an event happened, by the controller's clock: set on those that reached an edge over the network. */
interface Stamped {
  at?: number;
}

/** What the controller tells edges about one function's instances coming and going (the dashboard, metrics). */
export interface FunctionEvents {
  instanceStarted: [Stamped & { function: string; instance: string; pid?: number | undefined; coldStartMs: number; reason: string }];
  instanceStopped: [Stamped & { function: string; instance: string; reason: string }];
  scaled: [Stamped & { function: string; from: number; to: number }];
}

/** Everything the controller announces: its functions' events and the tier's. */
export interface AnnouncedEvents extends FunctionEvents {
  /** A function deployed through the API (`deployed`), or changed (`updated`): edges route to it now. */
  deployed: [Stamped & { function: string; action: 'deployed' | 'updated'; image?: string | undefined }];
  /** A function removed: edges answer 404 for it; its instances drain and stop. */
  removed: [Stamped & { function: string }];
  /** The controller changed how many edges run (the self-scaling edge tier). */
  edgesScaled: [Stamped & EdgeScaledEvent];
}

/** One announced event with the time it happened: what a controller keeps for edges that follow it later. */
export type Announcement = { [K in keyof AnnouncedEvents]: { kind: K; at: number; data: AnnouncedEvents[K][0] } }[keyof AnnouncedEvents];

export interface CapacityEvents extends AnnouncedEvents {
  /** The edge follows another controller (or its first): `history()` holds what that one announced before. */
  followed: [];
}

/**
 * An edge's view of the controller, the one place that starts and stops instances. Edges admit,
 * time and route calls; they only report what they use and ask for more. In one process the
 * controller is called directly; across processes and hosts, over HTTP: one contract for both.
 */
export interface Capacity extends EventEmitter<CapacityEvents> {
  /** The runtime's name (process, docker, swarm). */
  readonly kind: string;
  /** How many edges share each instance's concurrency. */
  edges(): number;
  /** The functions there are now: those the app declared and those deployed since. */
  functions(): FunctionSpec[];
  /**
   * Deploys a function (`create`: 409 if it exists) or changes one (`update`: 404 if it does not);
   * resolves once this edge routes to it. New calls go to new instances; calls in flight finish.
   */
  deploy(manifest: DeployManifest, how: 'create' | 'update'): Promise<FunctionSpec>;
  /** Removes a function (404 if unknown): no new calls; its instances drain and stop. */
  remove(fn: string): Promise<void>;
  /** The live instances of a function that take calls. */
  instances(fn: string): InstanceInfo[];
  /** One more instance of fn, started now or already starting; null when fn is at its limit. */
  grow(fn: string, signal: AbortSignal): Promise<InstanceInfo | null>;
  /** This edge's calls in flight on an instance changed: the controller's idle clock goes by it. */
  used(fn: string, instance: string, inFlight: number): void;
  /** No more calls to this instance: it is unreachable, or a call on it got stuck. */
  retire(fn: string, instance: string, reason: 'unreachable' | 'timeout'): void;
  /** A one-shot call in a fresh instance (only the controller may start one). */
  runOnce(fn: string, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse>;
  /** `POST /system/scale-function`: the number of warm instances, now. */
  scaleTo(fn: string, replicas: number): Promise<{ replicas: number }>;
  /** Instances of fn: all (starting, running one-shot calls included) and those taking calls. */
  counts(fn: string): { replicas: number; availableReplicas: number; coldStarts: number };
  /**
   * What the controller announced before this edge followed it (the last few hundred events), so
   * that a dashboard on an edge started later shows what happened before. Absent in one process,
   * where the edge hears every event itself.
   */
  history?(): Announcement[];
  /** The last lines a function's instances wrote, where the runtime keeps them. */
  logs?(fn: string, tail: number): LogLine[] | Promise<LogLine[]>;
  close(): Promise<void>;
}
