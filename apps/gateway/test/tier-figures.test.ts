import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import { PLATFORM_EVENT, PLATFORM_NAMESPACE, type LiveFunction, type PlatformSnapshot } from '@platform/protocol';
import { waitUntil, type AppProcess } from '@platform/test-services';
import { startTier } from './harness.js';

// Edges as processes of their own (GATEWAY_ROLE=edge) beside a controller, as the stack runs them:
// each edge counts the calls it serves and shares its figures on the event bus, so that every
// edge's /system/functions and dashboard show the whole tier.

type Status = { inFlight: number; queued: number; invocationCount: number };
const status = async (edge: AppProcess): Promise<Status> => (await (await fetch(`${edge.url}/system/function/slow`)).json()) as Status;

/** The dashboard of an edge: the latest snapshot its `/system` namespace sent. */
function dashboard(edge: AppProcess): { socket: Socket; slow: () => LiveFunction | undefined } {
  const socket = connect(`${edge.url}${PLATFORM_NAMESPACE}`, { transports: ['websocket'], forceNew: true, reconnection: false });
  let snapshot: PlatformSnapshot | undefined;
  socket.on(PLATFORM_EVENT, (s: PlatformSnapshot) => (snapshot = s));
  return { socket, slow: () => snapshot?.functions.find((f) => f.name === 'slow') };
}

describe('the figures of every edge, on every edge', () => {
  let tier: Awaited<ReturnType<typeof startTier>>;
  let a: AppProcess;
  let b: AppProcess;
  beforeAll(async () => {
    tier = await startTier();
    ({ a, b } = tier);
  }, 120_000);
  afterAll(() => tier?.close());

  // Break it catches: /system/functions or the dashboard counting only the calls of the edge answering.
  it('counts on edge B the calls sent only through edge A: in flight, invoked, latency, errors', { timeout: 60_000 }, async () => {
    const watch = dashboard(b);
    try {
      const call = fetch(`${a.url}/function/slow?sleep=3000`);
      await waitUntil(async () => (await status(b)).inFlight === 1, {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: "B's /system/functions counting A's call in flight",
      });
      await waitUntil(() => watch.slow()?.inFlight === 1, { timeoutMs: 5_000, what: "B's dashboard counting A's call in flight" });
      expect((await call).status).toBe(200);
      const failed = await fetch(`${a.url}/function/slow?status=500`);
      expect(failed.status).toBe(500);

      await waitUntil(
        async () => {
          const s = await status(b);
          return s.inFlight === 0 && s.invocationCount === 2;
        },
        { timeoutMs: 5_000, what: "B's /system/functions counting A's two calls, none in flight" },
      );
      await waitUntil(() => watch.slow()?.invocationCount === 2 && watch.slow()?.inFlight === 0, {
        timeoutMs: 5_000,
        what: "B's dashboard counting A's two calls",
      });
      const slow = watch.slow()!;
      expect(slow.callsPerSecond).toBe(0.2);
      // A's latencies, merged: the slow call is the 99th percentile (within the buckets' 2.2%).
      expect(slow.latencyMs!.p99).toBeGreaterThan(3_000 * 0.978);
      expect(slow.latencyMs!.p99).toBeLessThan(5_000);
      // The public dashboard: when and how it failed, not the function's words.
      expect(slow.lastErrors).toEqual([{ at: expect.any(Number), status: 500 }]);
      // Metrics stay each process's own: B served none of these calls.
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      expect(metrics).not.toMatch(/gateway_function_invocation_total\{function_name="slow"/);
      expect(await (await fetch(`${a.url}/metrics`)).text()).toMatch(/gateway_function_invocation_total\{function_name="slow",code="200"\} 1/);
    } finally {
      watch.socket.close();
    }
  });

  // Break it catches: an edge's last report counted for ever once it is gone.
  it("drops a killed edge's figures within a few seconds", { timeout: 60_000 }, async () => {
    const watch = dashboard(b);
    try {
      void fetch(`${a.url}/function/slow?sleep=20000`).catch(() => {});
      await waitUntil(async () => (await status(b)).inFlight === 1, { timeoutMs: 10_000, intervalMs: 100, what: "B counting A's call in flight" });
      await waitUntil(() => watch.slow()?.inFlight === 1, { timeoutMs: 5_000, what: "B's dashboard counting A's call in flight" });
      expect((await status(b)).invocationCount).toBe(2);
      const killedAt = Date.now();
      await a.signal('SIGKILL');
      await waitUntil(
        async () => {
          const s = await status(b);
          return s.inFlight === 0 && s.invocationCount === 0;
        },
        { timeoutMs: 10_000, intervalMs: 100, what: "A's figures gone from B's /system/functions" },
      );
      const gone = Date.now() - killedAt;
      await waitUntil(() => watch.slow()?.inFlight === 0 && watch.slow()?.invocationCount === 0 && watch.slow()?.latencyMs === null, {
        timeoutMs: 5_000,
        what: "A's figures gone from B's dashboard",
      });
      // A's last report was at most a second old at the kill, and reports count for 3 s.
      expect(gone).toBeLessThan(5_000);
      expect(gone).toBeGreaterThan(1_500);
    } finally {
      watch.socket.close();
    }
  });
});
