import type { FunctionDefinition, Handler } from './types.js';
import { settingsFromEnv } from './context.js';
import { runOneShot } from './oneshot.js';
import { runWarm } from './warm.js';

/**
 * The entry point of every function: `serveFunction(handler)` in its main module. The platform
 * chooses the mode through FN_MODE, so one build serves as process, container or Swarm task.
 */
export function serveFunction(definition: FunctionDefinition | Handler): void {
  const fn = typeof definition === 'function' ? { handler: definition } : definition;
  const settings = settingsFromEnv();
  const run = settings.mode === 'warm' ? runWarm(fn, settings) : runOneShot(fn, settings);
  run.catch((error: unknown) => {
    process.stderr.write(`function ${settings.name} failed to run: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
