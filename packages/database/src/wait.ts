import pg from 'pg';

/**
 * Waits until PostgreSQL accepts connections, instead of crashing while it starts
 * (the original's "Waiting for db" loop, with a deadline and the last error in the message).
 */
export async function waitForPostgres(
  databaseUrl: string,
  { timeoutMs = 60_000, onWait }: { timeoutMs?: number; onWait?: (error: Error) => void } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  for (;;) {
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      const err = error as Error;
      if (Date.now() + delay > deadline) {
        throw new Error(`PostgreSQL did not answer within ${timeoutMs} ms: ${err.message}`);
      }
      onWait?.(err);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2_000);
    } finally {
      await client.end().catch(() => {});
    }
  }
}
