import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FunctionContext, FunctionResponse } from '@platform/function-contract';
import { voteFunction } from '@voting/fn-vote/handler';
import { waitUntil } from '@platform/test-services';
import { startTestGateway, TEST_INVOKE_TOKEN, type TestGateway } from './harness.js';
import { report } from './faults.js';

// Two vote instances whose clocks differ by 10 s (injected clocks, as two nodes may have), one
// browser voting through both in turn: the vote it cast last must be the one recorded.
// Break it catches: ordering a voter's votes by the instances' time stamps (the clock-ahead
// instance's earlier vote then wins) instead of the count its cookie carries.
let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => t.close());

const secrets: Record<string, string> = { 'cookie-secret': 'test-cookie-secret', 'gateway-invoke-token': TEST_INVOKE_TOKEN };
const contextOf = (instance: string): FunctionContext => ({
  callId: `${instance}-${Math.random()}`,
  instance,
  log: pino({ level: 'silent' }),
  env: { GATEWAY_URL: t.url },
  secret: (name) => secrets[name]!,
});

it("records a browser's last vote although the instances' clocks disagree by seconds", async () => {
  const instances = [
    { name: 'vote-ahead', definition: voteFunction(() => Date.now() + 5_000) },
    { name: 'vote-behind', definition: voteFunction(() => Date.now() - 5_000) },
  ];
  let cookie: string | undefined;
  const cast: Array<{ vote: 'a' | 'b'; instance: string }> = [];
  let voterId = '';
  for (let i = 0; i < 6; i++) {
    const instance = instances[i % 2]!;
    const vote = i % 2 === 0 ? 'a' : 'b';
    const response = (await instance.definition.handler(
      { method: 'POST', path: '/', query: {}, headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: JSON.stringify({ vote }) },
      contextOf(instance.name),
    )) as FunctionResponse;
    expect(response.status).toBe(200);
    cookie = String(response.headers!['set-cookie']).split(';')[0]!;
    voterId = (JSON.parse(response.body!) as { voterId: string }).voterId;
    cast.push({ vote, instance: instance.name });
  }
  // The last vote, b, went through the instance whose clock is 10 s behind the other's.
  expect(cast.at(-1)).toEqual({ vote: 'b', instance: 'vote-behind' });
  await waitUntil(async () => (await t.queue.depth()) === 0, { what: 'the queue to drain' });
  await waitUntil(async () => (await t.db.query('SELECT 1 FROM votes WHERE id = $1', [voterId])).rowCount === 1, { what: 'the voter recorded' });
  const { rows } = await t.db.query<{ vote: string; seq: string }>('SELECT vote, seq FROM votes WHERE id = $1', [voterId]);
  report(['a voter through two instances 10 s apart:', ['votes cast', cast.map((c) => `${c.vote}@${c.instance}`).join(' ')], ['recorded', rows[0]]]);
  expect(rows).toEqual([{ vote: 'b', seq: '6' }]);
  expect(cookie).toMatch(/^voter_id=[0-9a-f]{32}\.6\.[\w-]{22}$/);
});
