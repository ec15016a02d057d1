// One table of calls to the app's real functions, run through the process runtime and the
// docker runtime: both must give the expected answers, so both give the same ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startPostgres, waitUntil, type PostgresServer } from '@platform/test-services';
import { startTestGateway, TEST_INVOKE_TOKEN, type TestGateway } from './harness.js';
import { prepareDocker } from './docker-network.js';

interface Row {
  label: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  status: number;
  /** The JSON answer with per-call values (voterId, instance) left out. */
  json?: unknown;
  location?: string;
}

const json = { 'content-type': 'application/json' };
const form = { 'content-type': 'application/x-www-form-urlencoded' };
const table: Row[] = [
  { label: 'vote page data', method: 'GET', path: '/function/vote', status: 200, json: { question: 'Cats vs Dogs!', options: { a: 'Cats', b: 'Dogs' } } },
  { label: 'a JSON vote', method: 'POST', path: '/function/vote', headers: json, body: '{"vote":"a"}', status: 200, json: { vote: 'a' } },
  { label: 'a form vote', method: 'POST', path: '/', headers: form, body: 'vote=b', status: 303, location: '/' },
  {
    label: 'an invalid vote',
    method: 'POST',
    path: '/function/vote',
    headers: json,
    body: '{"vote":"c"}',
    status: 400,
    json: { error: 'invalid vote "c": expected "a" or "b"' },
  },
  {
    label: 'a wrong content type',
    method: 'POST',
    path: '/function/vote',
    headers: { 'content-type': 'text/plain' },
    body: 'a',
    status: 415,
    json: { error: 'Content-Type must be application/json or application/x-www-form-urlencoded' },
  },
  {
    label: 'a forged cookie',
    method: 'POST',
    path: '/function/vote',
    headers: { ...json, cookie: `voter_id=${'0'.repeat(32)}.${'x'.repeat(22)}` },
    body: '{"vote":"a"}',
    status: 400,
    json: { error: 'voter_id cookie has an invalid signature' },
  },
  { label: 'the option names', method: 'GET', path: '/function/results/options', status: 200, json: { a: 'Cats', b: 'Dogs' } },
  { label: 'an unknown results path', method: 'GET', path: '/function/results/nope', status: 404, json: { error: 'no such path "/nope": use / or /options' } },
  { label: 'results by POST', method: 'POST', path: '/function/results', status: 405, json: { error: 'use GET' } },
  {
    label: 'a malformed record, with the invoke token',
    method: 'POST',
    path: '/function/record-vote',
    headers: { ...json, 'x-invoke-token': TEST_INVOKE_TOKEN },
    body: '{"voterId":"x"}',
    status: 400,
    json: { error: 'vote 0 is not {"voterId": hex, "vote": "a"|"b", "seq": integer, "votedAt": integer}' },
  },
  {
    label: 'a direct record, with the invoke token',
    method: 'POST',
    path: '/function/record-vote',
    headers: { ...json, 'x-invoke-token': TEST_INVOKE_TOKEN },
    body: '{"voterId":"00000000000000ff","vote":"b","votedAt":1}',
    status: 200,
    json: { received: 1, changed: 1 },
  },
  {
    label: 'a direct record from outside',
    method: 'POST',
    path: '/function/record-vote',
    headers: json,
    body: '{"voterId":"00000000000000fe","vote":"b","votedAt":1}',
    status: 403,
    json: { error: 'function "record-vote" is private: only functions of this app may invoke it' },
  },
];

async function call(t: TestGateway, row: Row) {
  const response = await fetch(`${t.url}${row.path}`, {
    method: row.method,
    headers: row.headers,
    body: row.body,
    redirect: 'manual',
  });
  const text = await response.text();
  let body: unknown = text;
  if (response.headers.get('content-type')?.includes('json')) {
    const { voterId: _voter, instance: _instance, ...rest } = JSON.parse(text) as Record<string, unknown>;
    body = rest;
  }
  return { status: response.status, json: body, location: response.headers.get('location') ?? undefined };
}

describe('the same answers from the process and docker runtimes', () => {
  let postgres: PostgresServer;
  const gateways: Record<string, TestGateway> = {};

  beforeAll(async () => {
    const docker = await prepareDocker();
    postgres = await startPostgres({ listen: [docker.hostAddress] });
    gateways.process = await startTestGateway({ databaseServer: postgres.url });
    gateways.docker = await startTestGateway({ databaseServer: postgres.url, runtime: 'docker', docker });
  }, 180_000);
  afterAll(async () => {
    await Promise.all(Object.values(gateways).map((g) => g.close()));
    await postgres?.stop();
  });

  for (const runtime of ['process', 'docker']) {
    it(`${runtime}: every row of the table`, async () => {
      const t = gateways[runtime]!;
      for (const row of table) {
        const got = await call(t, row);
        const expected = { status: row.status, json: row.json ?? '', location: row.location };
        expect({ label: row.label, ...got }).toEqual({ label: row.label, ...expected });
      }
      // The two votes went through the queue and record-vote; the direct record too.
      const db = new pg.Client({ connectionString: t.databaseUrl });
      await db.connect();
      try {
        await waitUntil(async () => (await db.query('SELECT count(*)::int AS n FROM votes')).rows[0].n === 3, { what: 'votes recorded' });
      } finally {
        await db.end();
      }
      const scores = await fetch(`${t.url}/function/results`);
      expect(await scores.json()).toEqual({ a: 1, b: 2 });
    });
  }
});
