import { EventEmitter } from 'node:events';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { DeployManifest } from '../deploy-request.js';
import type { Announcement, Capacity, CapacityEvents, InstanceInfo } from '../capacity.js';
import { STANDBY_HEADER, type ControllerState } from '../controller/api.js';
import { InvocationError } from '../errors.js';
import type { LogLine } from '../runtimes/logs.js';

/** Usage reports are sent at most this often; an unchanged busy instance is reported again each second. */
const REPORT_EVERY_MS = 100;
const REPORT_AGAIN_MS = 1_000;

/** Where the controller is: one fixed URL, or found anew (the leader among standbys) whenever it cannot be reached. */
export type ControllerLocator = () => Promise<string>;

/**
 * The controller as an edge in another process sees it: instances from a long poll of its state,
 * requests for more over HTTP. Calls go straight from the edge to the instances, so they go on
 * while the controller restarts or hands over; only growing and one-shot calls wait for it. When
 * the controller cannot be reached or stands by, the edge looks for the leader again.
 */
export class RemoteCapacity extends EventEmitter<CapacityEvents> implements Capacity {
  kind = 'remote';
  private state: ControllerState | undefined;
  /** What the controller followed now announced before this edge followed it. */
  private past: Announcement[] = [];
  /** Waiting for the next state (see caughtUp). */
  private readonly waiting: Array<() => void> = [];
  private readonly usage = new Map<string, { fn: string; instance: string; inFlight: number }>();
  private reportTimer: NodeJS.Timeout | undefined;
  private readonly keepReporting: NodeJS.Timeout;
  private readonly polling = new AbortController();
  private closed = false;

  private url = '';
  private locating: Promise<void> | undefined;

  private constructor(
    private readonly locate: ControllerLocator,
    private readonly token: string,
    readonly edgeId: string,
    private readonly log: { warn(message: string): void },
  ) {
    super();
    this.setMaxListeners(0);
    this.keepReporting = setInterval(() => this.report(), REPORT_AGAIN_MS).unref();
  }

  /**
   * Connects to the controller `locate` answers (a fixed URL, e.g. `http://127.0.0.1:8090`, or the
   * leader of the moment); resolves once its state is known, trying again until a controller answers.
   */
  static async connect(options: {
    locate: ControllerLocator;
    /** The controller token (secret `gateway-controller-token`), sent as a bearer token with every request. */
    token: string;
    edgeId: string;
    kind?: string;
    log: { warn(message: string): void };
  }): Promise<RemoteCapacity> {
    const capacity = new RemoteCapacity(options.locate, options.token, options.edgeId, options.log);
    if (options.kind) capacity.kind = options.kind;
    for (let tries = 0; ; tries++) {
      try {
        await capacity.relocate();
        capacity.follow(await capacity.fetchState(-1));
        break;
      } catch (error) {
        if (tries % 10 === 0) options.log.warn(`waiting for a controller: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    void capacity.poll();
    return capacity;
  }

  history(): Announcement[] {
    return this.past;
  }

  functions(): FunctionSpec[] {
    return Object.values(this.state?.functions ?? {}).map((f) => f.spec);
  }

  async deploy(manifest: DeployManifest, how: 'create' | 'update'): Promise<FunctionSpec> {
    const { spec, version } = await this.call<{ spec: FunctionSpec; version: number }>('POST', '/controller/functions', { manifest, how });
    await this.caughtUp(version);
    return spec;
  }

  async remove(fn: string): Promise<void> {
    const { version } = await this.call<{ version: number }>('DELETE', `/controller/functions/${fn}`);
    await this.caughtUp(version);
  }

  edges(): number {
    return this.state?.edges ?? 1;
  }

  instances(fn: string): InstanceInfo[] {
    return this.state?.functions[fn]?.instances ?? [];
  }

  counts(fn: string) {
    return this.state?.functions[fn]?.counts ?? { replicas: 0, availableReplicas: 0, coldStarts: 0 };
  }

  async grow(fn: string, signal: AbortSignal): Promise<InstanceInfo | null> {
    const { instance } = await this.call<{ instance: InstanceInfo | null }>('POST', `/controller/functions/${fn}/grow`, undefined, signal);
    // Usable at once, before the next state says so.
    const known = this.state?.functions[fn];
    if (instance && known && !known.instances.some((i) => i.id === instance.id)) known.instances.push(instance);
    return instance;
  }

  used(fn: string, instance: string, inFlight: number): void {
    this.usage.set(`${fn}\u0000${instance}`, { fn, instance, inFlight });
    this.reportTimer ??= setTimeout(() => this.report(), REPORT_EVERY_MS);
  }

  retire(fn: string, instance: string, reason: 'unreachable' | 'timeout'): void {
    const known = this.state?.functions[fn];
    if (known) known.instances = known.instances.filter((i) => i.id !== instance);
    this.call('POST', `/controller/functions/${fn}/retire`, { instance, reason }).catch((error: Error) =>
      this.log.warn(`could not retire ${instance}: ${error.message}`),
    );
  }

  runOnce(fn: string, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    return this.call<FunctionResponse>('POST', `/controller/functions/${fn}/run-once`, invocation, signal);
  }

  scaleTo(fn: string, replicas: number): Promise<{ replicas: number }> {
    return this.call('POST', `/controller/functions/${fn}/scale`, { replicas });
  }

  logs(fn: string, tail: number): Promise<LogLine[]> {
    return this.call('GET', `/controller/functions/${fn}/logs?tail=${tail}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.polling.abort();
    clearInterval(this.keepReporting);
    if (this.reportTimer) clearTimeout(this.reportTimer);
  }

  /** Resolves once this edge's state has the controller's `version` (or a state of another controller), within 5 s. */
  private async caughtUp(version: number): Promise<void> {
    const epoch = this.state?.epoch;
    const deadline = Date.now() + 5_000;
    while (this.state?.epoch === epoch && (this.state?.version ?? -1) < version && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        setTimeout(resolve, 250);
      });
    }
  }

  /**
   * Another controller's state (or the first) comes whole: its instances are taken as they are, and
   * its events, which happened before this edge followed it, are history, not news.
   */
  private follow(next: ControllerState): void {
    this.state = next;
    this.past = next.events.map(({ version: _version, ...event }) => event as Announcement);
    this.emit('followed');
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Follows the controller's state; when it cannot be reached, keeps the last one and tries again. */
  private async poll(): Promise<void> {
    while (!this.closed) {
      try {
        const next = await this.fetchState(this.state?.version ?? -1);
        if (next.epoch !== this.state?.epoch) {
          this.follow(next);
          continue;
        }
        // The state first: whoever hears of a deployed function finds it in functions().
        this.state = next;
        for (const event of next.events) this.emit(event.kind, { ...event.data, at: event.at } as never);
        for (const wake of this.waiting.splice(0)) wake();
      } catch (error) {
        if (this.closed) return;
        this.log.warn(`controller state unavailable: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        await this.relocate().catch((e: Error) => this.log.warn(`no controller found: ${e.message}`));
      }
    }
  }

  private fetchState(after: number): Promise<ControllerState> {
    return this.call(
      'GET',
      `/controller/state?after=${after}&epoch=${this.state?.epoch ?? ''}`,
      undefined,
      AbortSignal.any([this.polling.signal, AbortSignal.timeout(15_000)]),
    );
  }

  /** Sends what changed since the last report, or (again) every busy instance once a second. */
  private report(): void {
    if (this.reportTimer) clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    const batch = [...this.usage.values()];
    // Idle ones are told once; busy ones again each second, so the controller's idle clock never stops them.
    for (const [key, u] of this.usage) if (u.inFlight === 0) this.usage.delete(key);
    if (batch.length === 0) return;
    this.call('POST', '/controller/usage', batch).catch((error: Error) => this.log.warn(`could not report usage: ${error.message}`));
  }

  /** Looks for the controller again (one look at a time). */
  private relocate(): Promise<void> {
    this.locating ??= this.locate()
      .then((url) => {
        this.url = url.replace(/\/$/, '');
      })
      .finally(() => {
        this.locating = undefined;
      });
    return this.locating;
  }

  private async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          'x-edge-id': this.edgeId,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ?? null,
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      void this.relocate().catch(() => {});
      throw new InvocationError(503, `the controller cannot be reached: ${(error as Error).message}`, { 'retry-after': '1' });
    }
    if (response.status === 204) return undefined as T;
    const payload = (await response.json().catch(() => ({}))) as { error?: string };
    // A controller standing by (it lost the lead, or never had it): the leader is elsewhere.
    if (response.status === 503 && response.headers.get(STANDBY_HEADER)) void this.relocate().catch(() => {});
    if (!response.ok) {
      const retry: Record<string, string> = response.status === 503 ? { 'retry-after': '1' } : {};
      throw new InvocationError(response.status, payload.error ?? `the controller answered ${response.status}`, retry);
    }
    return payload as T;
  }
}
