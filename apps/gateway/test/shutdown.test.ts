import { execFileSync } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, waitUntil } from '@platform/test-services';
import { childGateway, report, type ChildGateway } from './faults.js';
import { alive } from './harness.js';

// SIGTERM while calls are in flight: the gateway stops taking connections and requests at once,
// lets the calls in flight finish (within SHUTDOWN_GRACE_SECONDS), stops every function process
// it started and exits 0. `results` calls are held in flight by a lock on `votes`. A call still
// running at the bound is cut short: main.ts closes its connection without an answer (the
// client sees a reset), no earlier than the bound.

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function lockVotes(url: string) {
  const client = new pg.Client({ connectionString: url });
  // Dropping the database at the end ends this connection too.
  client.on('error', () => {});
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE votes IN ACCESS EXCLUSIVE MODE');
  let released: Promise<void> | undefined;
  return () =>
    (released ??= (async () => {
      await client.query('COMMIT').catch(() => {});
      await client.end().catch(() => {});
    })());
}

interface Outcome {
  /** 0: no answer. */
  status: number;
  body: string;
  /** The error code of a call that got no (whole) answer, e.g. ECONNRESET or ECONNREFUSED. */
  code?: string;
  endedAt: number;
}

/** A GET on a connection of its own (never a kept-alive one), so refusals and resets show as such. */
function getOnNewConnection(url: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const failed = (error: NodeJS.ErrnoException, status = 0) => resolve({ status, body: '', code: error.code ?? error.message, endedAt: Date.now() });
    const req = httpGet(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, endedAt: Date.now() }));
      res.on('error', (error) => failed(error, res.statusCode));
    });
    req.on('error', (error) => failed(error));
  });
}

describe('graceful shutdown on SIGTERM', () => {
  let app: ChildGateway | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;
  // A failed case lets its held calls go before its gateway is killed.
  let release: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await release?.();
    await app?.close();
    await db?.drop();
  });

  it.each([
    // Break it catches: exiting at once on SIGTERM (process.exit in its handler), dropping the calls in flight.
    ['drains calls in flight, refuses new ones, leaves no process behind', 10, 1_000],
    // Break it catches: exiting 1, or at once, on SIGTERM instead of waiting SHUTDOWN_GRACE_SECONDS.
    ['cuts calls still running at the grace bound short, exits 0, and still leaves nothing behind', 1, undefined],
  ])('%s', { timeout: 60_000 }, async (_label, grace, releaseAfterMs) => {
    await release?.();
    await app?.close();
    await db?.drop();
    db = await createTestDatabase(process.env.DATABASE_URL!);
    app = await childGateway({ DATABASE_URL: db.url, SHUTDOWN_GRACE_SECONDS: String(grace) });
    await app.start();
    // Warm instances of vote and results.
    expect((await fetch(`${app.url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"a"}' })).status).toBe(
      200,
    );
    await waitUntil(async () => ((await (await fetch(`${app!.url}/function/results`)).json()) as { a: number }).a === 1, { what: 'the vote recorded' });
    const gatewayPid = app.pid()!;
    const functionPids = childrenOf(gatewayPid);
    release = await lockVotes(db.url);
    const inFlight = Array.from({ length: 4 }, () => getOnNewConnection(`${app!.url}/function/results`));
    await waitUntil(async () => ((await (await fetch(`${app!.url}/system/function/results`)).json()) as { inFlight: number }).inFlight === 4, {
      timeoutMs: 10_000,
      what: 'the gateway to report 4 calls of results in flight',
    });
    const started = Date.now();
    const exited = app.signal('SIGTERM');
    let running = true;
    void exited.then(() => (running = false));
    // New connections are refused on both ports once the gateway handles the signal, while it still runs.
    const refusedAt: Array<number | 'only once it exited'> = [];
    for (const url of [app.url, app.resultUrl]) {
      await waitUntil(async () => (await getOnNewConnection(`${url}/healthz`)).code === 'ECONNREFUSED', {
        timeoutMs: 5_000,
        intervalMs: 10,
        what: `new connections to ${url} refused after SIGTERM`,
      });
      refusedAt.push(running ? Date.now() - started : 'only once it exited');
    }
    let releasedAt: number | undefined;
    if (releaseAfterMs !== undefined) {
      await new Promise((r) => setTimeout(r, releaseAfterMs));
      await release();
      releasedAt = Date.now() - started;
    }
    const code = await exited;
    const tookMs = Date.now() - started;
    if (releasedAt === undefined) await release();
    const answers = await Promise.all(inFlight);
    const left = await waitUntil(() => (functionPids.some(alive) ? undefined : []), { timeoutMs: 5_000, what: 'function processes gone' }).catch(() =>
      functionPids.filter(alive),
    );
    report([
      `SIGTERM with 4 calls in flight (SHUTDOWN_GRACE_SECONDS=${grace}, calls ${releaseAfterMs === undefined ? 'held past the bound' : `released after ${releaseAfterMs} ms`}):`,
      ['exit code', code],
      ['shutdown took, ms', tookMs],
      ['new connections refused after, ms', refusedAt],
      ['calls in flight ended, as', answers.map((a) => a.code ?? a.status)],
      ['calls in flight ended after, ms', answers.map((a) => a.endedAt - started)],
      ['function processes before', functionPids],
      ['left running', left],
    ]);
    expect(code).toBe(0);
    expect(refusedAt.every((ms) => typeof ms === 'number')).toBe(true);
    expect(functionPids.length).toBeGreaterThanOrEqual(2);
    expect(left).toEqual([]);
    if (releasedAt !== undefined) {
      // Each call finished with its answer, and the gateway exited once they had, before the bound.
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      for (const a of answers) expect(JSON.parse(a.body)).toEqual({ a: 1, b: 0 });
      expect(tookMs).toBeGreaterThanOrEqual(releasedAt);
      expect(tookMs).toBeLessThan(grace * 1_000);
    } else {
      // Cut short at the bound, not before: the connection closed without an answer.
      expect(answers.map((a) => a.code)).toEqual(['ECONNRESET', 'ECONNRESET', 'ECONNRESET', 'ECONNRESET']);
      for (const a of answers) expect(a.endedAt - started).toBeGreaterThanOrEqual(grace * 1_000 - 20);
      expect(tookMs).toBeGreaterThanOrEqual(grace * 1_000 - 20);
      expect(tookMs).toBeLessThan(grace * 1_000 + 5_000);
    }
  });
});
