import { text } from 'node:stream/consumers';
import type { FunctionDefinition, Invocation } from './types.js';
import type { InstanceSettings } from './context.js';
import { baseContext, createLogger } from './context.js';
import { parseInvocation, runHandler } from './invoke.js';

/**
 * One call: an invocation as JSON on stdin, its response as JSON on stdout, then exit. A task
 * that has no stdin (a Swarm job) is given FN_INVOCATION_URL instead: it fetches the
 * invocation from there and posts its response back to the same URL.
 */
export async function runOneShot(definition: FunctionDefinition, settings: InstanceSettings): Promise<void> {
  const log = createLogger(settings);
  const url = settings.invocationUrl;
  let invocation: Invocation;
  try {
    invocation = parseInvocation(url ? await fetchInvocation(url) : await text(process.stdin));
  } catch (error) {
    process.stderr.write(`bad invocation on ${url ? url.replace(/[^/]*$/, '…') : 'stdin'}: ${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const base = baseContext(settings, log);
  await definition.setup?.(base);
  try {
    const response = await runHandler(definition, invocation, base);
    if (url) {
      const posted = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(response) });
      if (!posted.ok) throw new Error(`the platform refused the response: ${posted.status}`);
      return;
    }
    await new Promise<void>((resolve, reject) => process.stdout.write(JSON.stringify(response), (error) => (error ? reject(error) : resolve())));
  } finally {
    await definition.teardown?.();
  }
}

async function fetchInvocation(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`the platform answered ${response.status}`);
  return await response.text();
}
