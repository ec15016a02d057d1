import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '@platform/test-services';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';

// The queue and the call records on the real PostgreSQL store, read back with SQL.
describe('what an async call stores of its caller', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions, start: false });
  });
  afterAll(async () => t.close());

  // Break it catches: the caller's headers queued as they came (Authorization, Cookie and
  // Proxy-Authorization in the queue's rows, then in what the function answered into the call record).
  it('keeps no credential in the queue or the call record, and the call still runs', async () => {
    const secrets = ['Bearer admin-credential-1234567890', 'session=user-session-0987654321', 'Basic cHJveHk6cHJveHktc2VjcmV0'];
    const accepted = await fetch(`${t.url}/async-function/crashy`, {
      method: 'POST',
      headers: { authorization: secrets[0]!, cookie: secrets[1]!, 'proxy-authorization': secrets[2]!, 'x-request-tag': 'kept' },
      body: 'payload',
    });
    expect(accepted.status).toBe(202);
    const { callId } = (await accepted.json()) as { callId: string };

    // Queued, not yet run (the worker has not started): the row holds the call without the credentials.
    const { rows: queued } = await t.db.query<{ body: string }>('SELECT body FROM fn_queue');
    expect(queued).toHaveLength(1);
    const stored = JSON.parse(queued[0]!.body) as { callId: string; request: { headers: Record<string, string>; body: string } };
    expect(stored.callId).toBe(callId);
    expect(stored.request.body).toBe('payload');
    expect(stored.request.headers['x-request-tag']).toBe('kept');
    for (const secret of secrets) expect(queued[0]!.body).not.toContain(secret.split(/[ =]/)[1]);
    expect(Object.keys(stored.request.headers)).not.toEqual(expect.arrayContaining(['authorization']));

    await t.gateway.start();
    const record = await waitUntil(
      async () => {
        const response = await fetch(`${t.url}/system/calls/${callId}`);
        const body = (await response.json()) as { status: string; result?: { body: string } };
        return body.status === 'succeeded' ? body : undefined;
      },
      { what: 'the call ran', timeoutMs: 20_000 },
    );
    // The function ran with the headers it needs, the caller's credentials not among them.
    const seen = JSON.parse(record.result!.body) as { headers: string[]; body: string };
    expect(seen.body).toBe('payload');
    expect(seen.headers).toContain('x-request-tag');
    for (const name of ['authorization', 'cookie', 'proxy-authorization']) expect(seen.headers).not.toContain(name);
    const { rows: records } = await t.db.query<{ row: string }>('SELECT c::text AS row FROM platform_calls c WHERE call_id = $1', [callId]);
    expect(records).toHaveLength(1);
    for (const secret of secrets) expect(records[0]!.row).not.toContain(secret.split(/[ =]/)[1]);
  });
});
