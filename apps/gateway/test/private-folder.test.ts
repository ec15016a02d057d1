// `npm start` from a clone in a private folder (root's home, any `mktemp -d`). As root, the
// embedded PostgreSQL runs as the `postgres` user, which cannot enter that folder: neither its
// server files (under node_modules) nor its data may be used from there. Run as a normal user,
// the same flow shows that the usual start, from the clone itself, still works.
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { appProcess, repoRoot, waitUntil, type AppProcess } from '@platform/test-services';

const asRoot = process.getuid?.() === 0;
const cleanUp: string[] = [];
let app: AppProcess | undefined;
afterAll(async () => {
  // After a failure: Ctrl-C stops the app's PostgreSQL too; a kill would leave it running.
  await Promise.race([app?.signal('SIGINT'), new Promise((resolve) => setTimeout(resolve, 15_000))]);
  await app?.close();
  // As root, the data is kept outside the private folder, where the log says.
  for (const [moved] of app?.output().matchAll(/\/var\/lib\/serverless-voting\/[0-9a-f]{12}\b/g) ?? []) cleanUp.push(moved);
  await Promise.all(cleanUp.map((dir) => rm(dir, { recursive: true, force: true })));
});

/**
 * The built and installed repository, copied into `to`: hard links for the files (under 1 s,
 * a full copy takes about 8), while every folder is new and so inside the private one,
 * which is what decides whether the postgres user can reach a file. The app writes only into
 * DATA_DIR (not copied), never into the linked files.
 */
async function copyRepository(to: string): Promise<void> {
  const entries = (await readdir(repoRoot)).filter((name) => !['.git', '.data', '.turbo', '.tools'].includes(name));
  const copy = async (options: string) => {
    await rm(to, { recursive: true, force: true });
    await mkdir(to);
    await promisify(execFile)('cp', [options, ...entries.map((name) => join(repoRoot, name)), to]);
  };
  // A normal user may hard-link only files it owns (fs.protected_hardlinks).
  await copy('-al').catch(() => copy('-a'));
}

/** Processes whose command line mentions `text` (the postgres server names its data folder). */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.includes(text)) found.push(`${pid} ${commandLine.replaceAll('\0', ' ')}`);
  }
  return found;
}

describe('npm start from a clone in a private folder', () => {
  // Break it catches: the PostgreSQL server files left in the private folder (serverFilesForPostgresUser making no copy), where the postgres user cannot reach them.
  it('counts a vote with the embedded PostgreSQL, and leaves no server behind', { timeout: 120_000 }, async () => {
    const privateDir = await mkdtemp(join(tmpdir(), 'voting-private-'));
    cleanUp.push(privateDir);
    await chmod(privateDir, 0o700);
    const clone = join(privateDir, 'app');
    await copyRepository(clone);
    const dataDir = join(clone, '.data');
    app = await appProcess({ root: clone, env: { DATA_DIR: dataDir, LOG_LEVEL: 'info' } });
    await app.start();

    let database = join(dataDir, 'postgres');
    if (asRoot) {
      const said = /which cannot enter ([^\s:]+): keeping the server files in (\S+) and the database in ([^\s"]+)/.exec(app.output());
      expect(said, app.output()).not.toBe(null);
      expect(said![1]).toBe(privateDir);
      expect(said![2]).toMatch(/^\/var\/lib\/serverless-voting\/postgres-/);
      database = said![3]!;
    }
    expect(await processesMentioning(database)).not.toEqual([]);

    const vote = await fetch(`${app.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'vote=a',
      redirect: 'manual',
    });
    expect(vote.status).toBe(303);
    await waitUntil(async () => ((await (await fetch(`${app!.url}/function/results`)).json()) as { a?: number }).a === 1, {
      timeoutMs: 20_000,
      what: 'the vote counted',
    });

    expect(await app.signal('SIGINT')).toBe(0);
    expect(await processesMentioning(database)).toEqual([]);
  });
});
