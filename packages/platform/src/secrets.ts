import { existsSync, readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { secretEnvName } from './runtimes/function-env.js';
import { CONTROLLER_TOKEN_SECRET } from './tokens.js';

/**
 * Secrets come from Docker secrets (files in SECRETS_DIR) or the environment, never from code.
 * `fixed` holds values the gateway itself decided (e.g. the embedded database's URL).
 */
export function secretResolver(secretsDir: string, fixed: Record<string, string>) {
  return (name: string): string | undefined => {
    if (fixed[name] !== undefined) return fixed[name];
    const file = join(secretsDir, name);
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    return process.env[secretEnvName(name)];
  };
}

/** The gateway's own credentials: no function is ever given them, whatever FUNCTION_SECRETS lists. */
export const GATEWAY_ONLY_SECRETS: readonly string[] = ['gateway-admin-token', CONTROLLER_TOKEN_SECRET];

/** The secrets the app's own manifests declare: the functions' allowed secrets unless configured. */
export function declaredSecrets(functions: ReadonlyArray<{ secrets: readonly string[] }>): string[] {
  return [...new Set(functions.flatMap((fn) => fn.secrets))].sort();
}

/** Throws naming the first of the gateway's own credentials in a list of secrets functions may be given. */
export function checkFunctionSecrets(allowed: readonly string[]): void {
  const own = allowed.find((name) => GATEWAY_ONLY_SECRETS.includes(name));
  if (own !== undefined) throw new Error(`"${own}" is the gateway's own credential: no function may be given it`);
}

/**
 * What functions' secrets are resolved with: the names in `allowed` only, so that a function can
 * never reach another secret, nor the gateway's environment by an arbitrary name.
 */
export function functionSecretResolver(resolve: (name: string) => string | undefined, allowed: readonly string[]) {
  checkFunctionSecrets(allowed);
  const names = new Set(allowed);
  return (name: string): string | undefined => (names.has(name) ? resolve(name) : undefined);
}

const newSecret = () => randomBytes(32).toString('base64url');

async function readSecretFile(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim() || undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * A random secret kept in DATA_DIR, made on first use: for embedded runs with none configured,
 * e.g. the admin token, which the CLI reads from there. The file appears whole or not at all: it
 * is written and synced under a name of its own, then linked into place, which fails if another
 * process got there first, whose value is then read. Where the file system has no hard links, it
 * is renamed into place instead (processes starting at the same moment may then disagree once).
 */
export async function localSecret(dataDir: string, name: string): Promise<string> {
  const dir = join(dataDir, 'secrets');
  const file = join(dir, name);
  const existing = await readSecretFile(file);
  if (existing !== undefined) return existing;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(newSecret());
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const noLinks = code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS';
    if (code !== 'EEXIST' && !noLinks) throw error;
    // Another process made it first (theirs is the secret), unless what is there is empty: the
    // leftover of a write cut short before files were linked into place.
    if ((await readSecretFile(file)) === undefined) await rename(temp, file);
  } finally {
    await unlink(temp).catch(() => {});
  }
  const value = await readSecretFile(file);
  if (value === undefined) throw new Error(`the secret file ${file} is empty`);
  return value;
}

/**
 * A random secret kept in the database's platform_secrets table (migratePlatform makes it): made
 * once, by whichever process asks first, and read by every other, so that all the gateways on one
 * database use the same value (e.g. the cookie key, the invoke token, when none is configured).
 * Two statements: the insert does nothing if the secret exists (waiting for one being inserted
 * meanwhile), and the read that follows sees whichever insert won. `fromFile`: a value an earlier
 * version kept in a file, which becomes the shared one if there is none yet (cookies already
 * signed with it stay valid).
 */
export async function sharedSecret(databaseUrl: string, name: string, { fromFile }: { fromFile?: string } = {}): Promise<string> {
  const initial = (fromFile === undefined ? undefined : await readSecretFile(fromFile)) ?? newSecret();
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query('INSERT INTO platform_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, initial]);
    const { rows } = await client.query<{ value: string }>('SELECT value FROM platform_secrets WHERE name = $1', [name]);
    if (!rows[0]) throw new Error(`the secret "${name}" could not be stored in the database`);
    return rows[0].value;
  } finally {
    await client.end();
  }
}
