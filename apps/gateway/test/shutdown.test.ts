import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, waitUntil } from '@voting/test-services';
import { childGateway, report, sleep, type ChildGateway } from './faults.js';
import { alive } from './harness.js';

// SIGTERM while calls are in flight: the gateway stops taking connections and requests at once,
// lets the calls in flight finish (within SHUTDOWN_GRACE_SECONDS), stops every function process
// it started and exits 0. `results` calls are held in flight by a lock on `votes`.

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function lockVotes(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE votes IN ACCESS EXCLUSIVE MODE');
  return async () => {
    await client.query('COMMIT').catch(() => {});
    await client.end();
  };
}

describe('graceful shutdown on SIGTERM', () => {
  let app: ChildGateway | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it.each([
    ['drains calls in flight, refuses new ones, leaves no process behind', 10, 1_000],
    ['stops calls still running at the grace bound, and still leaves nothing behind', 1, undefined],
  ])('%s', { timeout: 60_000 }, async (_label, grace, releaseAfterMs) => {
    await app?.close();
    await db?.drop();
    db = await createTestDatabase(process.env.DATABASE_URL!);
    app = await childGateway({ DATABASE_URL: db.url, SHUTDOWN_GRACE_SECONDS: String(grace) });
    await app.start();
    // Warm instances of vote and results.
    expect((await fetch(`${app.url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"a"}' })).status).toBe(200);
    await waitUntil(async () => ((await (await fetch(`${app!.url}/function/results`)).json()) as { a: number }).a === 1, { what: 'the vote recorded' });
    const gatewayPid = app.pid()!;
    const functionPids = childrenOf(gatewayPid);
    const release = await lockVotes(db.url);
    const inFlight = Array.from({ length: 4 }, () =>
      fetch(`${app!.url}/function/results`).then(
        async (r) => ({ status: r.status, body: await r.text() }),
        (e: Error) => ({ status: 0, body: e.message }),
      ),
    );
    await sleep(500);
    const started = Date.now();
    const exited = app.signal('SIGTERM');
    await sleep(300);
    const late = await fetch(`${app.url}/function/results`).then(
      (r) => `answered ${r.status}`,
      () => 'connection refused',
    );
    let released = false;
    if (releaseAfterMs !== undefined) {
      await sleep(releaseAfterMs);
      await release();
      released = true;
    }
    const code = await exited;
    const tookMs = Date.now() - started;
    if (!released) await release();
    const answers = await Promise.all(inFlight);
    const left = await waitUntil(() => (functionPids.some(alive) ? undefined : []), { timeoutMs: 5_000, what: 'function processes gone' }).catch(() =>
      functionPids.filter(alive),
    );
    report([
      `SIGTERM with 4 calls in flight (SHUTDOWN_GRACE_SECONDS=${grace}, calls ${releaseAfterMs === undefined ? 'held past the bound' : `released after ${releaseAfterMs} ms`}):`,
      ['exit code', code],
      ['shutdown took, ms', tookMs],
      ['a new request during shutdown', late],
      ['calls in flight answered', answers.map((a) => a.status)],
      ['function processes before', functionPids],
      ['left running', left],
    ]);
    expect(late).toMatch(/connection refused|answered 503/);
    expect(functionPids.length).toBeGreaterThanOrEqual(2);
    expect(left).toEqual([]);
    if (releaseAfterMs !== undefined) {
      expect(code).toBe(0);
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(JSON.parse(answers[0]!.body)).toEqual({ a: 1, b: 0 });
    } else {
      // Past the bound, the calls are cut short and the gateway still exits soon after it.
      expect(answers.every((a) => a.status !== 200)).toBe(true);
      expect(tookMs).toBeLessThan(grace * 1_000 + 8_000);
    }
  });
});
