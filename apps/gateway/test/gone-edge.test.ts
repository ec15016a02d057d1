import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil, type AppProcess } from '@platform/test-services';
import { startTier } from './harness.js';

// Edges as processes of their own (GATEWAY_ROLE=edge), as a stack runs them: no supervisor sees
// one die. The leading controller does, from the member list, and releases what it held of the
// queue, so that the calls run again on another edge without waiting out the visibility timeout.
describe('an edge of its own that dies holding queued calls', () => {
  let tier: Awaited<ReturnType<typeof startTier>>;
  let a: AppProcess;
  let b: AppProcess;
  let controller: AppProcess;
  beforeAll(async () => {
    // A minute: calls a dead edge held come back after it unless released.
    tier = await startTier({ QUEUE_VISIBILITY_SECONDS: '60' });
    ({ a, b, controller } = tier);
  }, 120_000);
  afterAll(() => tier?.close());

  // Break it catches: no release when an edge leaves the member list (the calls then wait out
  // the 60 s visibility timeout), or a release of the wrong consumer.
  it('has its calls released by the leading controller and run by another edge, well within the visibility timeout', { timeout: 90_000 }, async () => {
    const calls: string[] = [];
    // Each edge runs 4 at once (its share of `slow`'s 8): with 8, A holds some whichever edge takes first.
    for (let i = 0; i < 8; i++) {
      const accepted = await fetch(`${a.url}/async-function/slow?sleep=6000`, { method: 'POST', body: `call ${i}` });
      expect(accepted.status).toBe(202);
      calls.push(((await accepted.json()) as { callId: string }).callId);
    }
    const state = async (id: string) => ((await (await fetch(`${b.url}/system/calls/${id}`)).json()) as { status: string; attempts: number }).status;
    // Both edges' async workers take them: all running, some on A. Then A dies.
    await waitUntil(async () => (await Promise.all(calls.map(state))).every((s) => s === 'running'), { timeoutMs: 10_000, what: 'A running the calls' });
    await a.signal('SIGKILL');
    const killedAt = Date.now();
    await waitUntil(async () => (await Promise.all(calls.map(state))).every((s) => s === 'succeeded'), {
      timeoutMs: 45_000,
      intervalMs: 250,
      what: 'the calls run again on B and succeeded',
    });
    // Released: gone from the member list (5 s), seen gone twice (2 s apart), run again (6 s, after
    // B's own); not the 60 s a held call waits otherwise.
    expect(Date.now() - killedAt).toBeLessThan(35_000);
    const released = /is gone holding (\d+) queued calls: released to the other edges/.exec(controller.output());
    expect(Number(released?.[1])).toBeGreaterThan(0);
  });
});
