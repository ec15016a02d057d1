import { performance } from 'node:perf_hooks';

/**
 * Polls `count` until it reaches `expected` or `timeoutMs` passes. Returns the last count and,
 * when reached, how long after `since` (a performance.now() time) it was.
 */
export async function waitForRecorded(
  count: () => Promise<number>,
  { expected, since, timeoutMs, intervalMs = 10 }: { expected: number; since: number; timeoutMs: number; intervalMs?: number },
): Promise<{ rows: number; recordedMs: number | undefined }> {
  let rows = await count();
  while (rows < expected && performance.now() < since + timeoutMs) {
    await new Promise((r) => setTimeout(r, intervalMs));
    rows = await count();
  }
  return { rows, recordedMs: rows >= expected ? performance.now() - since : undefined };
}
