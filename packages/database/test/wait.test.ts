import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startPrivatePostgres, waitUntil, type RestartablePostgres } from '@platform/test-services';
import { waitForPostgres } from '../src/index.js';

// A private server of its own: it checks passwords, which a configured DATABASE_URL's server
// (trust auth) may not.
describe('waitForPostgres', () => {
  let server: RestartablePostgres;
  const withUrl = (change: (url: URL) => void) => {
    const url = new URL(server.url);
    change(url);
    return url.toString();
  };
  beforeAll(async () => {
    server = await startPrivatePostgres();
  });
  afterAll(async () => server?.stop());

  it('returns once the server accepts the connection', async () => {
    await waitForPostgres(server.url, { timeoutMs: 5_000 });
  });

  it('stops at once on a rejected password, saying so, without the password', async () => {
    const wrong = 'not-the-password-0123';
    const waits: Error[] = [];
    const began = Date.now();
    const error = await waitForPostgres(
      withUrl((u) => (u.password = wrong)),
      { timeoutMs: 20_000, onWait: (e) => waits.push(e) },
    ).catch((e: unknown) => e as Error);
    const tookMs = Date.now() - began;
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /^PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres rejected the password for user "postgres": the database was initialised with another password \(DATABASE_PASSWORD_FILE \/ the postgres-password secret\)$/,
    );
    expect((error as Error).message).not.toContain(wrong);
    expect(waits).toEqual([]);
    expect(tookMs).toBeLessThan(2_000);
  });

  it('stops at once when the database does not exist', async () => {
    const began = Date.now();
    await expect(
      waitForPostgres(
        withUrl((u) => (u.pathname = '/no_such_database')),
        { timeoutMs: 20_000 },
      ),
    ).rejects.toThrow(/has no database "no_such_database"/);
    expect(Date.now() - began).toBeLessThan(2_000);
  });

  it('keeps waiting for a server that does not answer, until the timeout', async () => {
    const port = await freePort();
    const waits: Error[] = [];
    const began = Date.now();
    await expect(
      waitForPostgres(
        withUrl((u) => (u.port = String(port))),
        { timeoutMs: 1_500, onWait: (e) => waits.push(e) },
      ),
    ).rejects.toThrow(/^PostgreSQL did not answer within 1500 ms: .*ECONNREFUSED/);
    expect(Date.now() - began).toBeGreaterThanOrEqual(1_500);
    expect(waits.length).toBeGreaterThanOrEqual(3);
  });

  it('waits for a server that is stopped, and returns once it is back', async () => {
    await server.pause();
    const waits: Error[] = [];
    const waiting = waitForPostgres(server.url, { timeoutMs: 30_000, onWait: (e) => waits.push(e) });
    // Resumed only once it is seen waiting: the wait is what is tested.
    await waitUntil(() => waits.length > 0, { timeoutMs: 10_000, what: 'waitForPostgres to wait' });
    await server.resume();
    await waiting;
  });
});
