import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { secretEnvName } from './runtimes/function-env.js';

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

/** A random secret kept in DATA_DIR, made on first use: for embedded runs with none configured. */
export async function localSecret(dataDir: string, name: string): Promise<string> {
  const dir = join(dataDir, 'secrets');
  const file = join(dir, name);
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' }).catch(() => {});
  }
  return (await readFile(file, 'utf8')).trim();
}
