// The live platform data: the gateway sends it on the socket.io namespace PLATFORM_NAMESPACE as
// PLATFORM_EVENT, the workshop dashboard shows it. One definition for both sides.

export const PLATFORM_NAMESPACE = '/system';
export const PLATFORM_EVENT = 'snapshot';

export interface LiveInstance {
  id: string;
  pid?: number | undefined;
  startedAt: number;
  coldStartMs: number;
  /** `call`: started for a call (a cold start someone waited for); `scaled`: started by a scale request; `adopted`: left running by a controller before this one. */
  reason: string;
}

export interface LiveFunction {
  name: string;
  mode: string;
  maxInstances: number;
  idleSeconds: number;
  timeoutSeconds: number;
  instances: LiveInstance[];
  replicas: number;
  inFlight: number;
  waiting: number;
  invocationCount: number;
  coldStarts: number;
  callsPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number } | null;
  /** The newest failures; `message` (a function's own words, which may carry users' data) only for the admin. */
  lastErrors: Array<{ at: number; status: number; message?: string }>;
}

export interface TimelineEvent {
  at: number;
  function: string;
  /** `edges`: the tier's edges scaled (`function` names their service); `deployed`, `updated`, `removed`: through the deploy API. */
  kind: 'started' | 'stopped' | 'scaled' | 'edges' | 'deployed' | 'updated' | 'removed';
  instance?: string;
  detail: string;
}

/** What the dashboard shows, complete: sent on connect (so a reconnect is always correct) and on every change. */
export interface PlatformSnapshot {
  at: number;
  functions: LiveFunction[];
  queueDepth: number | null;
  timeline: TimelineEvent[];
}

/** Where the gateway lists its tier's members: GET, a JSON array of GatewayMember (501 where it keeps no list). */
export const GATEWAYS_PATH = '/system/gateways';

/** One live member of the gateway tier (an edge, or a controller: the leader or a standby), as it last reported itself. */
export interface GatewayMember {
  id: string;
  role: 'edge' | 'controller';
  host: string;
  pid: number;
  /** True for the leading controller only. */
  leader: boolean;
  /** ISO 8601: its first heartbeat. */
  startedAt: string;
  /** ISO 8601: its last heartbeat. */
  lastSeenAt: string;
  /** Calls in flight at its last heartbeat. */
  inFlight: number;
  /** The share of one CPU core it used between its last two heartbeats. */
  cpu: number;
}
