import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '@voting/database';
import { freePort, waitUntil } from '@platform/test-services';
import { startEntryPoint } from './entry-point.js';

const temporary: string[] = [];
afterAll(async () => Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true }))));

/** Runs the app's entry point as `npm start` does, with the given settings and a data folder of its own. */
async function startApp(env: Record<string, string>) {
  const dataDir = await mkdtemp(join(tmpdir(), 'voting-main-'));
  temporary.push(dataDir);
  return startEntryPoint(env, dataDir);
}

describe('the app entry point', () => {
  it('refuses to start on a bad manifest, naming the file and the field', async () => {
    const app = await startApp({
      FUNCTIONS_DIR: join(import.meta.dirname, 'fixtures', 'bad-functions'),
    });
    expect(await app.exited).toBe(1);
    expect(app.output()).toContain('broken/function.json: field \\"maxConcurrency\\"');
    expect(existsSync(join(app.dataDir, 'postgres'))).toBe(false); // no database was started
  });

  it('waits for a database that is not up yet, then serves the configured options', async () => {
    const pgPort = await freePort();
    const pgDir = await mkdtemp(join(tmpdir(), 'voting-late-pg-'));
    temporary.push(pgDir);
    await chmod(pgDir, 0o755);
    // The embedded server takes its password from this file when it exists.
    await mkdir(join(pgDir, 'pg'));
    await writeFile(join(pgDir, 'pg', 'password'), 'late-password');
    const app = await startApp({
      DATABASE_URL: `postgres://postgres:late-password@127.0.0.1:${pgPort}/postgres`,
      OPTION_A: 'Tabs',
      OPTION_B: 'Spaces',
    });
    let pg: { stop(): Promise<void> } | undefined;
    try {
      // Break it catches: a start that gives up (exits) when the database does not answer yet.
      await waitUntil(() => /waiting for PostgreSQL at postgres:\/\/postgres:\*\*\*@/.test(app.output()) || app.child.exitCode !== null, {
        timeoutMs: 30_000,
        what: 'the app to say it waits for PostgreSQL',
      });
      expect(app.child.exitCode).toBe(null); // still waiting, not crashed
      expect(app.output()).toMatch(/waiting for PostgreSQL at postgres:\/\/postgres:\*\*\*@/);
      expect(app.output()).not.toContain('late-password');
      pg = await startEmbeddedPostgres({ dir: join(pgDir, 'pg'), port: pgPort });
      await waitUntil(async () => (await fetch(`${app.url}/healthz`)).ok, { timeoutMs: 30_000, what: 'the app to start' });
      expect(await (await fetch(`${app.url}/function/vote`)).json()).toEqual({
        question: 'Tabs vs Spaces!',
        options: { a: 'Tabs', b: 'Spaces' },
      });
      expect(await (await fetch(`${app.url}/function/results/options`)).json()).toEqual({ a: 'Tabs', b: 'Spaces' });
      app.child.kill('SIGTERM');
      expect(await app.exited).toBe(0);
    } finally {
      app.child.kill('SIGKILL');
      await pg?.stop();
    }
  });
});
