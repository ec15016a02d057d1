import pg from 'pg';

/** Socket errors of a server not up yet, or of a name its DNS does not resolve yet (Swarm, Compose). */
const passingSocketErrors = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENOENT',
]);

/**
 * SQLSTATEs a later try may not get: starting up or shutting down (57P03), stopped (57P01, 57P02),
 * too many connections (53300), and the connection exceptions (class 08).
 */
const passingSqlStates = new Set(['57P03', '57P01', '57P02', '53300']);

/** A URL fit for logs and messages: the password replaced by ***. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

function canPass(error: Error & { code?: unknown }): boolean {
  const code = typeof error.code === 'string' ? error.code : undefined;
  if (code && (passingSocketErrors.has(code) || passingSqlStates.has(code) || code.startsWith('08'))) return true;
  // pg's own words for a server that closed the socket while starting, and for connectionTimeoutMillis.
  return !code && /connection terminated|timeout/i.test(error.message);
}

/** The error to stop with: what the server said, and what is wrong on this side. */
function fatal(databaseUrl: string, error: Error & { code?: unknown }): Error {
  const at = `PostgreSQL at ${redact(databaseUrl)}`;
  let user = 'postgres';
  let database = 'postgres';
  try {
    const parsed = new URL(databaseUrl);
    user = decodeURIComponent(parsed.username) || user;
    database = decodeURIComponent(parsed.pathname.slice(1)) || user;
  } catch {
    // redact() already says the URL is unparsable.
  }
  switch (error.code) {
    case '28P01':
      return new Error(
        `${at} rejected the password for user "${user}": the database was initialised with another password (DATABASE_PASSWORD_FILE / the postgres-password secret)`,
        { cause: error },
      );
    case '28000':
      return new Error(`${at} does not let user "${user}" in: ${error.message}`, { cause: error });
    case '3D000':
      return new Error(`${at} has no database "${database}": ${error.message}`, { cause: error });
    default:
      return new Error(`${at} cannot be used: ${error.message}`, { cause: error });
  }
}

/**
 * Waits until PostgreSQL accepts connections, instead of crashing while it starts (the original's
 * "Waiting for db" loop, with a deadline and the last error in the message). Only errors that
 * time can cure are waited out; a rejected password or a missing database stop it at once, since
 * retrying them only hides the cause behind "waiting".
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
      const err = error as Error & { code?: unknown };
      if (!canPass(err)) throw fatal(databaseUrl, err);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`PostgreSQL did not answer within ${timeoutMs} ms: ${err.message}`);
      onWait?.(err);
      // The last try comes at the deadline, not a backoff step before it.
      await new Promise((r) => setTimeout(r, Math.min(delay, left)));
      delay = Math.min(delay * 2, 2_000);
    } finally {
      await client.end().catch(() => {});
    }
  }
}
