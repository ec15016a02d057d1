import { randomBytes } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { startPrivatePostgres, type RestartablePostgres } from '@platform/test-services';
import { childGateway, report, sleep, type ChildGateway } from './faults.js';

// The app run with known secret values, logging at debug level, through votes, bad input, wrong
// credentials, an admin call and a database outage, then stopped: no secret value appears in
// anything it printed (its own and its functions' logs) or answered.
let postgres: RestartablePostgres | undefined;
let app: ChildGateway | undefined;
afterAll(async () => {
  await app?.close();
  await postgres?.stop();
});

// Break it catches: the gateway logging DATABASE_URL unredacted, password included, when it connects to PostgreSQL.
it('keeps secrets out of logs, answers and error messages', { timeout: 60_000 }, async () => {
  postgres = await startPrivatePostgres();
  const secrets = {
    'database password': new URL(postgres.url).password,
    'cookie key': `cookie-${randomBytes(12).toString('hex')}`,
    'admin token': `admin-${randomBytes(12).toString('hex')}`,
    'invoke token': `invoke-${randomBytes(12).toString('hex')}`,
  };
  app = await childGateway({
    DATABASE_URL: postgres.url,
    COOKIE_SECRET: secrets['cookie key'],
    GATEWAY_ADMIN_TOKEN: secrets['admin token'],
    GATEWAY_INVOKE_TOKEN: secrets['invoke token'],
    LOG_LEVEL: 'debug',
  });
  await app.start();
  const answers: string[] = [];
  const call = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${app!.url}${path}`, { redirect: 'manual', ...init });
    answers.push(`${response.status} ${JSON.stringify([...response.headers])} ${await response.text()}`);
    return response;
  };
  const json = { 'content-type': 'application/json' };
  const first = await call('/function/vote', { method: 'POST', headers: json, body: '{"vote":"a"}' });
  const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
  await call('/function/vote', { method: 'POST', headers: { ...json, cookie }, body: '{"vote":"b"}' });
  await call('/function/vote', { method: 'POST', headers: { ...json, cookie: `voter_id=${'0'.repeat(32)}.${'x'.repeat(22)}` }, body: '{"vote":"a"}' });
  await call('/function/vote', { method: 'POST', headers: json, body: '{"vote":' });
  await call('/', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'vote=b' });
  await call('/function/record-vote', { method: 'POST', headers: { ...json, 'x-invoke-token': 'guess' }, body: '{}' });
  await call('/system/scale-function/vote', { method: 'POST', headers: { ...json, authorization: 'Bearer wrong' }, body: '{"replicas":1}' });
  await call('/system/scale-function/vote', {
    method: 'POST',
    headers: { ...json, authorization: `Bearer ${secrets['admin token']}` },
    body: '{"replicas":1}',
  });
  const queued = await call('/async-function/results', { method: 'POST' });
  await call(`/system/calls/${queued.headers.get('x-call-id')}`);
  await call('/system/functions');
  await call('/metrics');
  // A database outage: the errors it causes are logged and answered without the password.
  await postgres.pause();
  for (let i = 0; i < 3; i++) await call('/function/vote', { method: 'POST', headers: json, body: '{"vote":"a"}' });
  await call('/function/results');
  await sleep(1_000);
  await postgres.resume();
  await sleep(1_500);
  await call('/function/results');
  const code = await app.signal('SIGTERM');
  const output = app.output();
  const found = Object.entries(secrets).flatMap(([name, value]) =>
    [value, encodeURIComponent(value), Buffer.from(value).toString('base64')].some((form) => output.includes(form) || answers.some((a) => a.includes(form)))
      ? [name]
      : [],
  );
  report([
    'secrets kept out of logs and answers:',
    ['lines logged (gateway and functions, debug level)', output.split('\n').length],
    ['answers checked', answers.length],
    ['statuses', answers.map((a) => Number(a.slice(0, 3)))],
    ['secrets found', found],
  ]);
  expect(code).toBe(0);
  expect(output).toMatch(/database|connect|ECONNREFUSED/i); // the outage was logged at all
  expect(answers.some((a) => a.startsWith('503'))).toBe(true);
  expect(found).toEqual([]);
});
