import { text } from 'node:stream/consumers';
import type { FunctionDefinition } from './types.js';
import type { InstanceSettings } from './context.js';
import { baseContext, createLogger } from './context.js';
import { parseInvocation, runHandler } from './invoke.js';

/** One call: an invocation as JSON on stdin, its response as JSON on stdout, then exit. */
export async function runOneShot(definition: FunctionDefinition, settings: InstanceSettings): Promise<void> {
  const log = createLogger(settings);
  let invocation;
  try {
    invocation = parseInvocation(await text(process.stdin));
  } catch (error) {
    process.stderr.write(`bad invocation on stdin: ${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const base = baseContext(settings, log);
  await definition.setup?.(base);
  try {
    const response = await runHandler(definition, invocation, base);
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(JSON.stringify(response), (error) => (error ? reject(error) : resolve())),
    );
  } finally {
    await definition.teardown?.();
  }
}
