// Against the real app (embedded PostgreSQL, process runtime): a short `pnpm seed` run with zero
// loss checked in the database, and short runs of two bench scenarios (output shape, not timings).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '@platform/test-services';
import { repoRoot, startApp, type RunningApp } from '../src/app.js';
import { callOverhead, freshness } from '../src/scenarios.js';

let app: RunningApp;
let db: pg.Client;
const rows = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM votes')).rows[0]!.n;

beforeAll(async () => {
  app = await startApp();
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end();
  await app?.stop();
});

function seed(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, 'packages/loadgen/dist/cli.js'), '--url', app.url, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('pnpm seed against the app', () => {
  it('sends 200 form votes, all accepted and all recorded (zero loss), and prints the summary', async () => {
    const before = await rows();
    const run = await seed('--votes', '200', '--concurrency', '10');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^sent\s+200$/m);
    expect(run.stdout).toMatch(/^accepted\s+200 \(a: 133, b: 67; 200 distinct voters\)$/m);
    expect(run.stdout).toMatch(/^rejected\s+none$/m);
    expect(run.stdout).toMatch(/^errors\s+none$/m);
    expect(run.stdout).toMatch(/^latency ms\s+p50 [\d.]+\s+p95 [\d.]+\s+p99 [\d.]+\s+max [\d.]+$/m);
    expect(run.stdout).toMatch(/^throughput\s+\d+ votes\/s accepted over [\d.]+ s$/m);
    await waitUntil(async () => (await rows()) === before + 200, { timeoutMs: 20_000, what: '200 more rows in votes' });
  });

  it('keeps cookies in a voter pool (JSON API): one row per voter, their last votes counted', async () => {
    const before = await rows();
    const run = await seed('--votes', '60', '--concurrency', '1', '--voters', 'pool:6', '--mode', 'json', '--ratio', '1:1', '--json');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({ mode: 'json', voters: 'pool:6', sent: 60, accepted: 60, failed: 0, distinctVoters: 6, votes: { a: 30, b: 30 } });
    expect(Object.keys(summary.latencyMs as object).sort()).toEqual(['count', 'max', 'mean', 'min', 'p50', 'p95', 'p99']);
    await waitUntil(async () => (await rows()) === before + 6, { timeoutMs: 20_000, what: '6 more rows in votes' });
    await new Promise((r) => setTimeout(r, 300));
    expect(await rows()).toBe(before + 6);
  });
});

describe('bench scenarios against the app', () => {
  it('call overhead: the gateway figure, the direct floor and the overhead with its target', async () => {
    const result = await callOverhead(app, { calls: 40 });
    expect(result).toMatchObject({ id: 'call-overhead', status: 'ok' });
    expect(result.metrics.map((m) => m.name)).toEqual(['through the gateway, median', 'overhead, median', 'overhead, p99']);
    expect(result.metrics[0]!.floor).toMatchObject({ name: 'instance directly' });
    expect(result.metrics[0]!.value).toBeGreaterThan(0);
    expect(result.metrics[1]!.target).toEqual({ op: '<', value: 1 });
    expect(result.details).toMatchObject({ calls: 40 });
  });

  it('freshness: every vote shows up in a socket.io scores event', async () => {
    const result = await freshness(app, { samples: 5, gapMs: 5 });
    expect(result).toMatchObject({ id: 'freshness', status: 'ok' });
    expect(result.metrics.map((m) => [m.name, m.unit])).toEqual([
      ['median', 'ms'],
      ['p95', 'ms'],
      ['votes never seen within 5 s', 'votes'],
    ]);
    expect(result.metrics[2]!.value).toBe(0);
  });
});
