import { createServer } from 'node:net';
import { InvocationError } from '../errors.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

/** Polls `GET /_/health` until it answers 200; fails early if the instance exits. */
export async function waitForHealth(url: string, exited: Promise<void>, timeoutMs: number, maxDelayMs = 100): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, maxDelayMs)) {
    if (gone) throw new InvocationError(502, `instance at ${url} exited while starting`);
    try {
      const response = await fetch(`${url}/_/health`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new InvocationError(504, `instance at ${url} did not become healthy in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
  }
}
