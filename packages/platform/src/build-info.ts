// What GET /system/info says of the running code: the platform package's release and the commit
// checked out where the gateway started. Read once from files next to the code (no git binary
// needed); "unknown" where they are not at hand, e.g. in the bundled gateway image.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BuildInfo {
  release: string;
  sha: string;
}

export const UNKNOWN = 'unknown';
const PACKAGE_NAME = '@platform/core';

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** `start` and every folder above it, nearest first. */
function* upwards(start: string): Generator<string> {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    yield dir;
    if (dirname(dir) === dir) return;
  }
}

/** The version in the platform's package.json: its own folder, or packages/platform of a repository layout. */
export function releaseFrom(start: string): string {
  for (const dir of upwards(start)) {
    for (const file of [join(dir, 'package.json'), join(dir, 'packages', 'platform', 'package.json')]) {
      const text = read(file);
      if (text === undefined) continue;
      try {
        const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
        if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // not JSON: not the platform's
      }
    }
  }
  return UNKNOWN;
}

/** The commit a ref names: its loose file, else its line in packed-refs. */
function resolveRef(gitDirs: string[], ref: string): string | undefined {
  for (const dir of gitDirs) {
    const loose = read(join(dir, ref))?.trim();
    if (loose && /^[0-9a-f]{40,64}$/.test(loose)) return loose;
    const packed = read(join(dir, 'packed-refs'))
      ?.split('\n')
      .find((line) => line.endsWith(` ${ref}`));
    if (packed) return packed.split(' ')[0];
  }
  return undefined;
}

/** The commit checked out in the nearest git repository above `start` (a work tree's .git file followed). */
export function shaFrom(start: string): string {
  for (const dir of upwards(start)) {
    const dotGit = join(dir, '.git');
    let gitDir: string;
    try {
      gitDir = statSync(dotGit).isDirectory() ? dotGit : resolve(dir, /^gitdir: (.+)$/m.exec(read(dotGit) ?? '')?.[1]?.trim() ?? '');
    } catch {
      continue;
    }
    // A linked work tree keeps its HEAD in its own folder and the refs in the common one.
    const common = read(join(gitDir, 'commondir'))?.trim();
    const gitDirs = common ? [gitDir, resolve(gitDir, common)] : [gitDir];
    const head = read(join(gitDir, 'HEAD'))?.trim() ?? '';
    if (/^[0-9a-f]{40,64}$/.test(head)) return head;
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    return (ref && resolveRef(gitDirs, ref)) || UNKNOWN;
  }
  return UNKNOWN;
}

let known: BuildInfo | undefined;

/** This code's release and commit, read on first use. */
export function buildInfo(): BuildInfo {
  const here = dirname(fileURLToPath(import.meta.url));
  known ??= { release: releaseFrom(here), sha: shaFrom(here) };
  return known;
}
