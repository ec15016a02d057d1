// The behaviour every EventBus adapter owes its callers, run against each adapter.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '@platform/test-services';
import type { EventBus } from '../src/index.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function eventsContract(label: string, makeBus: () => EventBus): void {
  describe(`EventBus contract: ${label}`, () => {
    const opened: EventBus[] = [];
    const bus = () => {
      const b = makeBus();
      opened.push(b);
      return b;
    };
    // Unique topics keep test files apart on a shared server.
    const topic = (base: string) => `${base}.${randomBytes(4).toString('hex')}`;

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((b) => b.close()));
    });

    it('delivers a published payload to a subscriber on another connection', async () => {
      const [publisher, subscriber] = [bus(), bus()];
      const votes = topic('votes');
      const got: string[] = [];
      await subscriber.subscribe(votes, (payload) => got.push(payload));
      await publisher.publish(votes, '{"vote":"a","note":"ünïcode ✓"}');
      await waitUntil(() => got.length === 1, { what: 'the event' });
      expect(got).toEqual(['{"vote":"a","note":"ünïcode ✓"}']);
    });

    it('keeps topics apart', async () => {
      const b = bus();
      const [calls, votes] = [topic('fn.calls'), topic('votes')];
      const gotCalls: string[] = [];
      const gotVotes: string[] = [];
      await b.subscribe(calls, (p) => gotCalls.push(p));
      await b.subscribe(votes, (p) => gotVotes.push(p));
      await b.publish(votes, 'v1');
      await b.publish(calls, 'c1');
      await b.publish(votes, 'v2');
      await waitUntil(() => gotVotes.length === 2 && gotCalls.length === 1, { what: 'both topics' });
      await sleep(100);
      expect(gotVotes).toEqual(['v1', 'v2']);
      expect(gotCalls).toEqual(['c1']);
    });

    it('stops delivering to a listener once unsubscribed, and only to that one', async () => {
      const b = bus();
      const t = topic('votes');
      const kept: string[] = [];
      const dropped: string[] = [];
      await b.subscribe(t, (p) => kept.push(p));
      const unsubscribe = await b.subscribe(t, (p) => dropped.push(p));
      await b.publish(t, 'before');
      await waitUntil(() => kept.length === 1 && dropped.length === 1, { what: 'the first event' });
      await unsubscribe();
      await unsubscribe(); // a second call is harmless
      await b.publish(t, 'after');
      await waitUntil(() => kept.length === 2, { what: 'the second event' });
      await sleep(100);
      expect(kept).toEqual(['before', 'after']);
      expect(dropped).toEqual(['before']);
    });

    it('stops all delivery on a topic when its last listener unsubscribes', async () => {
      const [publisher, subscriber] = [bus(), bus()];
      const [t, probe] = [topic('votes'), topic('probe')];
      const got: string[] = [];
      const probed: string[] = [];
      const unsubscribe = await subscriber.subscribe(t, (p) => got.push(p));
      await subscriber.subscribe(probe, (p) => probed.push(p));
      await unsubscribe();
      await publisher.publish(t, 'lost');
      // Events are delivered in order: once the probe arrives, 'lost' would have too.
      await publisher.publish(probe, 'probe');
      await waitUntil(() => probed.length === 1, { what: 'the probe' });
      await sleep(50);
      expect(got).toEqual([]);
    });

    it('rejects invalid topic names', async () => {
      const b = bus();
      for (const bad of ['', 'has space', 'quote"d', 'semi;colon', 'x'.repeat(61), 'ünï']) {
        await expect(b.publish(bad, 'x')).rejects.toThrow(/invalid event topic/);
        await expect(b.subscribe(bad, () => {})).rejects.toThrow(/invalid event topic/);
      }
      await expect(b.publish('Fn.calls_2-x', 'ok')).resolves.toBeUndefined();
    });
  });
}
