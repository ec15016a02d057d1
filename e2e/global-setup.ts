// Starts the app exactly as `npm start` runs it (embedded PostgreSQL, process runtime), on free
// ports with its data in a temporary folder, and stops it with Ctrl-C's signal afterwards.
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitUntil } from '@voting/test-services';

const root = join(import.meta.dirname, '..');

export default async function globalSetup(): Promise<() => Promise<void>> {
  const [port, resultPort, pgPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const dataDir = await mkdtemp(join(tmpdir(), 'voting-e2e-'));
  await chmod(dataDir, 0o755); // reachable by the postgres user the embedded server runs as
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    RESULT_PORT: String(resultPort),
    EMBEDDED_POSTGRES_PORT: String(pgPort),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // Lets the dashboard test scale functions (POST /system/scale-function needs it).
    GATEWAY_ADMIN_TOKEN: 'e2e-admin-token',
  };
  delete env.DATABASE_URL;
  delete env.QUEUE_URL;
  delete env.EVENTS_URL;
  const app = spawn(process.execPath, [join(root, 'apps/gateway/dist/main.js')], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => app.once('exit', resolve));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitUntil(
    async () => {
      if (gone) throw new Error('the app exited during start-up');
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: 'the app to start' },
  );
  process.env.VOTE_URL = `http://127.0.0.1:${port}`;
  process.env.RESULT_URL = `http://127.0.0.1:${resultPort}`;
  process.env.GATEWAY_ADMIN_TOKEN = env.GATEWAY_ADMIN_TOKEN;
  return async () => {
    app.kill('SIGINT');
    const code = await exited;
    await rm(dataDir, { recursive: true, force: true });
    if (code !== 0) throw new Error(`the app exited with ${code} after SIGINT`);
    // Ctrl-C must leave nothing behind: no function process, no PostgreSQL on the app's data.
    const leftovers = processesMatching(`${root}/functions/|${dataDir}`);
    if (leftovers) throw new Error(`processes left running after SIGINT:\n${leftovers}`);
  };
}

function processesMatching(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-af', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return ''; // pgrep exits 1 when nothing matches
  }
}
