import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A function role's login (infra/migrations/…_function_roles.sql makes the roles and their table). */
export interface RoleLogin {
  role: string;
  password: string;
}

/**
 * The functions' database roles, able to log in: each role's password is made once (kept in the
 * database's `function_roles`, which only the owner reads) and set at every start, so that a
 * password lost with a restored database or changed by hand comes back. Run by the owner, after
 * the migrations. Starts running together take turns (a lock of this database).
 */
export async function functionRoles(databaseUrl: string): Promise<Map<string, RoleLogin>> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query('BEGIN');
    // Two ALTER ROLEs of one role at once fail ("tuple concurrently updated").
    await client.query("SELECT pg_advisory_xact_lock(hashtext('function_roles'))");
    const { rows } = await client.query<{ need: string; role: string; password: string | null }>(
      'SELECT need, role, password FROM function_roles ORDER BY need',
    );
    const logins = new Map<string, RoleLogin>();
    for (const row of rows) {
      let password = row.password;
      if (password === null) {
        password = randomBytes(32).toString('base64url');
        await client.query('UPDATE function_roles SET password = $1 WHERE need = $2', [password, row.need]);
      }
      await client.query(`ALTER ROLE ${client.escapeIdentifier(row.role)} WITH LOGIN PASSWORD ${client.escapeLiteral(password)}`);
      logins.set(row.need, { role: row.role, password });
    }
    await client.query('COMMIT');
    return logins;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
}

/** `url` (the owner's, or another URL of the same server and database) logging in as `login` instead. */
export function asRole(url: string, login: RoleLogin): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(login.role);
  parsed.password = encodeURIComponent(login.password);
  return parsed.toString();
}

/**
 * The secrets through which the voting functions reach the database, each with its role's URL
 * and never the owner's: `votes-writer-url` (record-vote), `votes-reader-url` (results), and
 * `votes-writer-events-url`, the event bus record-vote publishes to: on PostgreSQL (NOTIFY reaches
 * only listeners of the same database, so it is this one) as the writer role, else `eventsUrl` as
 * it is (Redis).
 */
export async function functionDatabaseSecrets(databaseUrl: string, eventsUrl: string): Promise<Record<string, string>> {
  const logins = await functionRoles(databaseUrl);
  const secrets: Record<string, string> = {};
  for (const [need, login] of logins) secrets[`${need}-url`] = asRole(databaseUrl, login);
  const writer = logins.get('votes-writer');
  if (!writer) throw new Error('the database has no votes-writer role: are the migrations of infra/migrations applied?');
  secrets['votes-writer-events-url'] = /^postgres(ql)?:/.test(eventsUrl) ? asRole(eventsUrl, writer) : eventsUrl;
  return secrets;
}
