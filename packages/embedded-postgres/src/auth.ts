import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** How every connection logs in: a password, never sent in the clear (initdb's `--auth`). */
export const AUTH_METHOD = 'scram-sha-256';

/** pg_hba.conf methods that let a connection in without its password, or send it in the clear. */
const weakMethods = new Set(['trust', 'password', 'md5']);

/**
 * pg_hba.conf's text with every weak method replaced by scram-sha-256. A rule is
 * `local DATABASE USER METHOD [OPTIONS]` or `host… DATABASE USER ADDRESS [MASK] METHOD [OPTIONS]`:
 * its method is the first word after those that is not an address mask.
 */
export function requirePasswordsIn(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const rule = line.replace(/#.*/, '');
      const words = rule.trim().split(/\s+/);
      if (words.length < 4) return line;
      let at = words[0] === 'local' ? 3 : 4;
      // A host rule's address may be an IP followed by a separate mask.
      if (words[0] !== 'local' && /^\d+\.\d+\.\d+\.\d+$|^[0-9a-f:]+:[0-9a-f:]*$/i.test(words[at] ?? '')) at += 1;
      const method = words[at];
      if (!method || !weakMethods.has(method)) return line;
      const pattern = new RegExp(`(^\\s*(?:\\S+\\s+){${at}})${method}(?=\\s|$)`);
      return line.replace(pattern, `$1${AUTH_METHOD}`);
    })
    .join('\n');
}

/**
 * Makes a data folder's server ask every connection for its password (unix socket and TCP):
 * data made by an older start (or by hand) may still say `trust`, which lets any local process
 * in as the superuser by naming it, or `password`, sent in the clear. Whether anything changed.
 * Run before the server starts; the superuser's password was set by initdb (`--pwfile`).
 */
export async function requirePasswords(dataDir: string): Promise<boolean> {
  const file = join(dataDir, 'pg_hba.conf');
  const text = await readFile(file, 'utf8');
  const strict = requirePasswordsIn(text);
  if (strict === text) return false;
  await writeFile(file, strict);
  return true;
}
