import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { FunctionContext, FunctionRequest } from '@platform/function-contract';
import { voteFunction } from '../src/handler.js';
import { parseVote } from '../src/parse-vote.js';
import { cookieValue, newVoter, readVoter, signVoter } from '../src/voter-cookie.js';

const post = (contentType: string, body: string): FunctionRequest => ({
  method: 'POST',
  path: '/',
  query: {},
  headers: { 'content-type': contentType },
  body,
});

describe('parseVote', () => {
  it('reads JSON and the original form post', () => {
    expect(parseVote(post('application/json', '{"vote":"a"}'))).toEqual({ vote: 'a', form: false });
    expect(parseVote(post('application/json; charset=utf-8', '{"vote":"b"}'))).toEqual({ vote: 'b', form: false });
    expect(parseVote(post('application/x-www-form-urlencoded', 'vote=b'))).toEqual({ vote: 'b', form: true });
  });

  it.each([
    ['application/json', '{"vote":"c"}', 400, 'invalid vote "c": expected "a" or "b"'],
    ['application/json', '{"vote":1}', 400, 'invalid vote number'],
    ['application/json', '{}', 400, 'missing "vote"'],
    ['application/json', '{"vote":', 400, 'body is not valid JSON'],
    ['application/json', '["a"]', 400, 'body must be a JSON object'],
    ['application/x-www-form-urlencoded', 'vote=', 400, 'missing "vote"'],
    ['application/x-www-form-urlencoded', 'vote=a&vote=b', 400, 'more than one'],
    ['text/plain', 'vote=a', 415, 'Content-Type must be'],
    ['', '', 415, 'Content-Type must be'],
  ])('rejects %s %j with %i', (type, body, status, message) => {
    expect(() => parseVote(post(type, body))).toThrow(expect.objectContaining({ status, message: expect.stringContaining(message) }));
  });
});

describe('voter cookie', () => {
  const secret = 'test-secret';

  it('makes 128-bit random ids and reads back what it signed, with its vote count', () => {
    const voter = newVoter();
    expect(voter).toEqual({ id: expect.stringMatching(/^[0-9a-f]{32}$/), seq: 0 });
    expect(newVoter().id).not.toBe(voter.id);
    // Across refills of the pool the ids are drawn from.
    expect(new Set(Array.from({ length: 600 }, () => newVoter().id)).size).toBe(600);
    expect(readVoter(secret, signVoter(secret, { id: voter.id, seq: 7 }))).toEqual({ id: voter.id, seq: 7 });
    expect(signVoter(secret, { id: voter.id, seq: 7 })).toMatch(/^[0-9a-f]{32}\.7\.[\w-]{22}$/);
  });

  it('reads the older <id>.<mac> cookie as a voter with no vote counted yet', () => {
    const id = newVoter().id;
    const mac = createHmac('sha256', secret).update(id).digest('base64url').slice(0, 22);
    expect(readVoter(secret, `${id}.${mac}`)).toEqual({ id, seq: 0 });
  });

  it('rejects forged and malformed values, a count changed by hand included', () => {
    const { id } = newVoter();
    expect(readVoter(secret, signVoter('other-secret', { id, seq: 1 }))).toEqual({ error: 'voter_id cookie has an invalid signature' });
    const signed = signVoter(secret, { id, seq: 3 });
    const [, , mac] = signed.split('.');
    expect(readVoter(secret, `${id}.4.${mac}`)).toEqual({ error: 'voter_id cookie has an invalid signature' });
    expect(readVoter(secret, `${newVoter().id}.3.${mac}`)).toHaveProperty('error');
    for (const bad of [
      '',
      'abc',
      id,
      `${id}.`,
      `${id}.x.y`,
      `${id}.0.${mac}`,
      `${id}.03.${mac}`,
      `${id}.-1.${mac}`,
      `${id}.99999999999999999.${mac}`,
      `${id}.3.${mac}.x`,
      `${'ZZ'.repeat(16)}.abc`,
      `${id.toUpperCase()}.3.${mac}`,
    ]) {
      expect(readVoter(secret, bad), bad).toHaveProperty('error');
    }
  });

  it('finds the cookie among others', () => {
    expect(cookieValue('a=1; voter_id=xyz; b=2', 'voter_id')).toBe('xyz');
    expect(cookieValue('voter_idx=1', 'voter_id')).toBeUndefined();
    expect(cookieValue(undefined, 'voter_id')).toBeUndefined();
  });
});

describe('queueing a vote', () => {
  /** A gateway on loopback answering each queue post as `answers` says, in turn (`drop`: closes the connection). */
  async function gateway(answers: Array<number | 'drop'>, delayMs = 0) {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push(body);
        const answer = answers[seen.length - 1] ?? 202;
        if (answer === 'drop') return req.socket.destroy();
        setTimeout(() => res.writeHead(answer).end(), delayMs);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
  }
  const context = (gatewayUrl: string): FunctionContext => ({
    callId: 'c1',
    instance: 'vote-test',
    log: { warn() {}, info() {}, error() {}, debug() {} } as unknown as FunctionContext['log'],
    env: { GATEWAY_URL: gatewayUrl },
    secret: (name) => `${name}-value`,
  });
  const vote = (gatewayUrl: string) => voteFunction().handler(post('application/x-www-form-urlencoded', 'vote=a'), context(gatewayUrl));

  // Break it catches: a vote answered once a gateway that has just gone (a dropped connection, a
  // stopping gateway's 503) failed it, although sending it again reaches a live one.
  it('sends the votes again when the gateway dropped the connection or failed, and answers once they are queued', async () => {
    const stub = await gateway(['drop', 503, 202]);
    try {
      const answer = await vote(stub.url);
      expect(answer.status).toBe(303);
      expect(stub.seen).toHaveLength(3);
      expect(new Set(stub.seen).size).toBe(1); // the same votes each time
    } finally {
      stub.close();
    }
  });

  // Break it catches: retrying a refusal (it cannot help), or answering 303 for a vote not queued.
  it('does not send again what the gateway refused, and answers 503 for a vote not queued', async () => {
    const refused = await gateway([400]);
    const failing = await gateway([503, 503, 503, 503, 503]);
    try {
      await expect(vote(refused.url)).rejects.toMatchObject({ status: 503 });
      expect(refused.seen).toHaveLength(1);
      await expect(vote(failing.url)).rejects.toMatchObject({ status: 503 });
      expect(failing.seen).toHaveLength(4);
    } finally {
      refused.close();
      failing.close();
    }
  });

  /** Votes in each queue post, in the order the posts came. */
  const sizes = (seen: string[]) => seen.map((body) => (body.startsWith('[') ? (JSON.parse(body) as unknown[]).length : 1));

  // Break it catches: a new queue call for each vote while others are in flight (each then costs a
  // queued message, a call record and a record-vote invocation of its own), or a full batch left
  // waiting behind a slow call.
  it('gathers the votes that arrive while a queue call is in flight into the next call; a full batch goes at once', async () => {
    const stub = await gateway([], 150);
    try {
      const first = vote(stub.url);
      // One at a time, while the first call is held.
      const waiting: Array<Promise<unknown>> = [];
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 2));
        waiting.push(vote(stub.url));
      }
      await Promise.all([first, ...waiting]);
      expect(sizes(stub.seen)).toEqual([1, 30]);

      stub.seen.length = 0;
      const lone = vote(stub.url);
      await new Promise((r) => setTimeout(r, 20));
      const burst = Array.from({ length: 120 }, () => vote(stub.url));
      // Two full batches are posted while the first call is still held.
      await new Promise((r) => setTimeout(r, 60));
      expect(sizes(stub.seen)).toEqual([1, 50, 50]);
      const answers = await Promise.all([lone, ...burst]);
      expect(answers.every((a) => a.status === 303)).toBe(true);
      expect(sizes(stub.seen)).toEqual([1, 50, 50, 20]);
    } finally {
      stub.close();
    }
  });

  // Break it catches: posting at once whatever the rate (each call then carries only the votes of
  // one call's time), or waiting before a call after one that carried a single vote.
  it('under a steady stream, waits as long as the last call took before the next, so each carries more', async () => {
    const stub = await gateway([], 40);
    try {
      const votes: Array<Promise<{ status: number }>> = [];
      // A vote every 2 ms for 400 ms: votes come faster than calls end.
      for (let i = 0; i < 200; i++) {
        votes.push(vote(stub.url));
        await new Promise((r) => setTimeout(r, 2));
      }
      const answers = await Promise.all(votes);
      expect(answers.every((a) => a.status === 303)).toBe(true);
      const carried = sizes(stub.seen);
      expect(carried.reduce((sum, n) => sum + n, 0)).toBe(200);
      // The first call carries one vote and the next goes as soon as it ends, with what came during
      // it; from then on each waits one call's time more, gathering about twice as many.
      expect(carried[0]).toBe(1);
      const steady = carried.slice(2, -1);
      expect(steady.length).toBeGreaterThan(0);
      for (const n of steady) expect(n).toBeGreaterThanOrEqual(1.5 * carried[1]!);
    } finally {
      stub.close();
    }
  });
});
