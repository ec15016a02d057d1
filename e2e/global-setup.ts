// Starts the app exactly as `npm start` runs it (embedded PostgreSQL, process runtime), on free
// ports with its data in a temporary folder, and stops it with Ctrl-C's signal afterwards.
import { execFileSync } from 'node:child_process';
import { appProcess, repoRoot } from '@platform/test-services';

export default async function globalSetup(): Promise<() => Promise<void>> {
  // The admin token lets the dashboard test scale functions (POST /system/scale-function).
  const app = await appProcess({ env: { GATEWAY_ADMIN_TOKEN: 'e2e-admin-token-0123456789' }, output: 'inherit' });
  try {
    await app.start();
  } catch (error) {
    await app.close();
    throw error;
  }
  process.env.VOTE_URL = app.url;
  process.env.RESULT_URL = app.resultUrl;
  process.env.GATEWAY_ADMIN_TOKEN = 'e2e-admin-token-0123456789';
  return async () => {
    const code = await app.signal('SIGINT');
    await app.close();
    if (code !== 0) throw new Error(`the app exited with ${code} after SIGINT`);
    // Ctrl-C must leave nothing behind: no function process, no PostgreSQL on the app's data.
    const leftovers = processesMatching(`${repoRoot}functions/|${app.dataDir}`);
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
