import { describe, expect, it } from 'vitest';
import { CallbackHostRefused, checkCallbackUrl, RESOLVE_TIMEOUT_MS, type Resolver } from '@platform/core/callback-url';
import type { InvocationError } from '@platform/core/errors';
import { waitUntil } from '@platform/test-services';

// Pure checks with injected resolvers: no name is looked up and nothing is connected to.

const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (error: unknown) => error,
  );

/** A resolver that answers only once its signal aborts (then with the abort), noting that it saw it. */
function cancellable(): { resolve: Resolver; cancelled: string[] } {
  const cancelled: string[] = [];
  const resolve: Resolver = (hostname, signal) =>
    new Promise((_, reject) =>
      signal.addEventListener('abort', () => {
        cancelled.push(`${hostname}: ${(signal.reason as Error).name}`);
        reject(signal.reason);
      }),
    );
  return { resolve, cancelled };
}

describe("a callback host's lookup", () => {
  // Break it catches: answers that tell an internal name (resolves, to a private address) from one
  // that does not exist, so that callers map the inside by trying names.
  it('is refused with one answer whether the name does not resolve, has no address or resolves to a refused address', async () => {
    const table: Record<string, string[]> = { 'internal.test': ['10.0.0.7'], 'loop.test': ['127.0.0.1'], 'empty.test': [] };
    const resolve: Resolver = async (name) => {
      if (name in table) return table[name]!;
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    };
    const errors = (await Promise.all(
      ['internal.test', 'loop.test', 'empty.test', 'nowhere.test'].map((host) => failure(checkCallbackUrl(`http://${host}/hook`, { resolve }))),
    )) as CallbackHostRefused[];
    for (const error of errors) {
      expect(error).toBeInstanceOf(CallbackHostRefused);
      expect(error.status).toBe(400);
    }
    const answers = errors.map((e, i) => e.message.replace(['internal.test', 'loop.test', 'empty.test', 'nowhere.test'][i]!, '<host>'));
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toBe(
      "X-Callback-Url's host <host> is refused: callbacks may only go to names that resolve to public addresses only, or to hosts in CALLBACK_ALLOWED_HOSTS",
    );
    // The log gets what the caller does not.
    expect(errors.map((e) => e.detail)).toEqual([
      'resolves to 10.0.0.7, a private address',
      'resolves to 127.0.0.1, a loopback address',
      'has no address',
      'could not be resolved (ENOTFOUND)',
    ]);
  });

  // Break it catches: a lookup that cannot be stopped: the caller gone (its request aborted), the
  // check still waits for the name, and the resolver is never told to give up.
  it('ends when the call is abandoned, and tells the resolver to cancel', async () => {
    const { resolve, cancelled } = cancellable();
    const left = new AbortController();
    const checking = failure(checkCallbackUrl('http://slow.test/hook', { resolve, signal: left.signal }));
    left.abort();
    const error = (await checking) as CallbackHostRefused;
    expect(error).toBeInstanceOf(CallbackHostRefused);
    expect(error.detail).toBe('lookup abandoned: the call was cancelled');
    expect(cancelled).toEqual(['slow.test: AbortError']);
  });

  // Break it catches: no deadline: a name server that never answers holds the call (and a lookup slot) for ever.
  it('gives up at its deadline, with the same answer, and tells the resolver', async () => {
    const { resolve, cancelled } = cancellable();
    const started = Date.now();
    const error = (await failure(checkCallbackUrl('http://silent.test/hook', { resolve }))) as CallbackHostRefused;
    expect(Date.now() - started).toBeGreaterThanOrEqual(RESOLVE_TIMEOUT_MS - 50);
    expect(error.message).toMatch(/^X-Callback-Url's host silent\.test is refused: /);
    expect(error.detail).toBe(`lookup timed out after ${RESOLVE_TIMEOUT_MS} ms`);
    expect(cancelled).toEqual(['silent.test: TimeoutError']);
  }, 15_000);

  // Break it catches: lookups counted until the check stops waiting rather than until they end, so
  // lookups that cannot be cancelled pile up in libuv's thread pool past the limit.
  it('counts a lookup no longer waited for until it really ends', async () => {
    const finish: Array<() => void> = [];
    // Ignores its signal, as getaddrinfo does; ends when the test says.
    const stubborn: Resolver = () => new Promise((resolve) => finish.push(() => resolve(['93.184.215.14'])));
    const left = new AbortController();
    const abandoned = Array.from({ length: 16 }, (_, i) => failure(checkCallbackUrl(`http://n${i}.test/`, { resolve: stubborn, signal: left.signal })));
    left.abort();
    for (const error of await Promise.all(abandoned)) expect(error).toBeInstanceOf(CallbackHostRefused);
    // Sixteen lookups still run: a seventeenth waits for none of them to be abandoned, it is refused.
    const busy = (await failure(checkCallbackUrl('http://one-more.test/', { resolve: async () => ['93.184.215.14'] }))) as InvocationError;
    expect(busy.status).toBe(503);
    for (const end of finish) end();
    // Once they have ended, a lookup may start again.
    const target = await waitUntil(() => checkCallbackUrl('http://one-more.test/', { resolve: async () => ['93.184.215.14'] }), { what: 'a lookup slot' });
    expect(target).toMatchObject({ address: '93.184.215.14' });
  });
});
