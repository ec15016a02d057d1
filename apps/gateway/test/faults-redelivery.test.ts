import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import fc from 'fast-check';
import { waitUntil } from '@platform/test-services';
import { startTestGateway, TEST_INVOKE_TOKEN, type TestGateway } from './harness.js';
import { report } from './faults.js';
import type { VoteMessage } from '@voting/fn-record-vote/message';

// Duplicate and out-of-order deliveries of record-vote messages, as at-least-once delivery
// produces them (a redelivery after a crash, a retry overtaking a newer vote): whatever the
// order and however often each arrives, each voter ends with the vote they cast last, once.
// Each vote is stamped by a clock that may be seconds off (as on another instance or node): the
// order cast is the voter's own count, `seq`.
// Break it catches: record-vote ordering by votedAt, or updating without comparing at all.
let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => {
  await t.close();
});

type Message = VoteMessage;

// A voter's votes in the order cast; each delivered 1-3 times; all deliveries shuffled; sent
// through the async route one by one or in arrays (as `vote` batches them), or put on the queue.
const scenario = fc.array(fc.array(fc.constantFrom<'a' | 'b'>('a', 'b'), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 40 }).chain((voters) => {
  const base = Date.now() * 1_000;
  return fc
    .record({
      voters: fc.constant(voters.length),
      // Clock skew of up to 5 s either way per vote: stamps say nothing about the order.
      messages: fc
        .tuple(...voters.map((votes) => fc.array(fc.integer({ min: -5_000_000, max: 5_000_000 }), { minLength: votes.length, maxLength: votes.length })))
        .map((skews) =>
          voters.flatMap((votes, v) => {
            const voterId = randomBytes(16).toString('hex');
            return votes.map((vote, i): Message => ({ voterId, vote, seq: i + 1, votedAt: base + skews[v]![i]! }));
          }),
        ),
    })
    .chain(({ voters: count, messages }) =>
      fc.record({
        voters: fc.constant(count),
        messages: fc.constant(messages),
        deliveries: fc
          .tuple(...messages.map((m) => fc.tuple(fc.constant(m), fc.integer({ min: 1, max: 3 }))))
          .map((list) => list.flatMap(([m, times]) => Array.from({ length: times }, () => m)))
          .chain((list) => fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length })),
        chunk: fc.integer({ min: 1, max: 20 }),
        direct: fc.boolean(),
      }),
    );
});

it('keeps the latest vote of each voter, counted once, whatever the deliveries', { timeout: 60_000 }, async () => {
  let runs = 0;
  let delivered = 0;
  let messagesTotal = 0;
  await fc.assert(
    fc.asyncProperty(scenario, async ({ voters, messages, deliveries, chunk, direct }) => {
      runs++;
      delivered += deliveries.length;
      messagesTotal += messages.length;
      await t.db.query('TRUNCATE votes');
      for (let i = 0; i < deliveries.length; i += chunk) {
        const part = deliveries.slice(i, i + chunk);
        const body = JSON.stringify(part.length === 1 ? part[0] : part);
        if (direct) {
          // As a redelivery straight from the queue: the stored call, enqueued again.
          await t.queue.enqueue(
            JSON.stringify({
              callId: randomBytes(8).toString('hex'),
              function: 'record-vote',
              request: { method: 'POST', path: '/', query: {}, headers: { 'content-type': 'application/json' }, body },
              acceptedAt: Date.now(),
            }),
          );
        } else {
          const response = await fetch(`${t.url}/async-function/record-vote`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-invoke-token': TEST_INVOKE_TOKEN },
            body,
          });
          expect(response.status).toBe(202);
        }
      }
      await waitUntil(async () => (await t.queue.depth()) === 0, { timeoutMs: 15_000, what: 'the queue to drain' });
      const latest = new Map<string, Message>();
      for (const m of messages) if ((latest.get(m.voterId)?.seq ?? 0) < m.seq) latest.set(m.voterId, m);
      const { rows } = await t.db.query<{ id: string; vote: string; seq: string }>('SELECT id, vote, seq FROM votes');
      expect(rows.length).toBe(voters);
      for (const row of rows) {
        const want = latest.get(row.id)!;
        expect({ id: row.id, vote: row.vote, seq: Number(row.seq) }).toEqual({ id: want.voterId, vote: want.vote, seq: want.seq });
      }
      const expected = { a: 0, b: 0 };
      for (const m of latest.values()) expected[m.vote]++;
      const { rows: tallies } = await t.db.query<{ vote: 'a' | 'b'; n: number }>('SELECT vote, COUNT(id)::int AS n FROM votes GROUP BY vote');
      expect({ a: 0, b: 0, ...Object.fromEntries(tallies.map((r) => [r.vote, r.n])) }).toEqual(expected);
    }),
    { numRuns: 25 },
  );
  report([
    'duplicate and out-of-order deliveries of record-vote messages:',
    ['scenarios', runs],
    ['messages (votes cast)', messagesTotal],
    ['deliveries (duplicates included, shuffled)', delivered],
    ['clock skew of the stamps', 'up to ±5 s per vote'],
    ['result', 'every voter holds their latest vote, one row each, tallies exact'],
  ]);
});
