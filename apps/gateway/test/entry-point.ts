import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '@platform/test-services';

/** The app's built entry point, as `npm start` runs it. */
export const entryPoint = join(import.meta.dirname, '..', 'dist', 'main.js');

/**
 * Runs the app's entry point with the given settings on free ports, with its data in `dataDir`,
 * nothing else of the test's environment but PATH: what it prints and when it exits, for tests of
 * what it refuses at start.
 */
export async function startEntryPoint(env: Record<string, string>, dataDir: string) {
  const [port, resultPort] = await Promise.all([freePort(), freePort()]);
  const child = spawn(process.execPath, [entryPoint], {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', PORT: String(port), RESULT_PORT: String(resultPort), DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { url: `http://127.0.0.1:${port}`, child, exited, dataDir, output: () => output };
}
