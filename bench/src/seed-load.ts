// The one load every throughput figure uses: the original app's seed (form posts `vote=a|b`,
// two a for one b, a new voter per request), and a warm-up of it before the measured part.
import { runSeed, type SeedSummary } from '@voting/loadgen';

/** `votes` seed votes, `concurrency` at a time, cut short by `signal`. */
export function seedLoad(url: string, { votes, concurrency, signal }: { votes: number; concurrency: number; signal?: AbortSignal }): Promise<SeedSummary> {
  return runSeed({ url, votes, concurrency, ratio: [2, 1], voters: { kind: 'new' }, mode: 'form', ...(signal ? { signal } : {}) });
}

/** Warm instances first: the figures are the steady state (cold starts have their own scenario). Throws if a warm-up vote fails. */
export async function warmUp(url: string): Promise<SeedSummary> {
  const warm = await seedLoad(url, { votes: 300, concurrency: 16 });
  if (warm.failed > 0) throw new Error(`warm-up votes failed: ${JSON.stringify({ rejected: warm.rejected, errors: warm.errors })}`);
  return warm;
}
