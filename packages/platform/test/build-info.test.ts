import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { releaseFrom, shaFrom, UNKNOWN } from '../src/build-info.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('the release and commit GET /system/info reports, read from files next to the code', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'build-info-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const write = async (path: string, text: string) => {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text);
  };

  // Break it catches: the release taken from the nearest package.json whatever its name (the gateway's own).
  it("takes the platform package's version, from its folder or a repository layout, and no other package's", async () => {
    await write('packages/platform/package.json', JSON.stringify({ name: '@platform/core', version: '1.2.3' }));
    await write('packages/platform/dist/routes/x.js', '');
    await write('apps/gateway/package.json', JSON.stringify({ name: '@voting/gateway', version: '9.9.9' }));
    await write('apps/gateway/dist/main.mjs', '');
    expect(releaseFrom(join(dir, 'packages/platform/dist/routes'))).toBe('1.2.3');
    expect(releaseFrom(join(dir, 'apps/gateway/dist'))).toBe('1.2.3');
    await rm(join(dir, 'packages'), { recursive: true });
    expect(releaseFrom(join(dir, 'apps/gateway/dist'))).toBe(UNKNOWN);
  });

  // Break it catches: a branch's commit read from its loose ref only (refs packed by git gc), or a detached HEAD taken for a ref.
  it('reads the commit of HEAD: a loose ref, a packed one, or a detached HEAD', async () => {
    await write('src/x.js', '');
    expect(shaFrom(join(dir, 'src'))).toBe(UNKNOWN);
    await write('.git/HEAD', 'ref: refs/heads/main\n');
    expect(shaFrom(join(dir, 'src'))).toBe(UNKNOWN);
    await write('.git/packed-refs', `# pack-refs with: peeled fully-peeled sorted\n${B} refs/heads/other\n${A} refs/heads/main\n`);
    expect(shaFrom(join(dir, 'src'))).toBe(A);
    await write('.git/refs/heads/main', `${B}\n`);
    expect(shaFrom(join(dir, 'src'))).toBe(B);
    await write('.git/HEAD', `${A}\n`);
    expect(shaFrom(join(dir, 'src'))).toBe(A);
  });

  // Break it catches: a linked work tree (.git is a file) read as no repository, or its refs looked for in its own folder only.
  it("follows a linked work tree's .git file to its HEAD, and the refs to the common folder", async () => {
    await write('main/.git/packed-refs', `${B} refs/heads/feature\n`);
    await write('main/.git/worktrees/wt/HEAD', 'ref: refs/heads/feature\n');
    await write('main/.git/worktrees/wt/commondir', '../..\n');
    await write('wt/.git', `gitdir: ${join(dir, 'main/.git/worktrees/wt')}\n`);
    await write('wt/src/x.js', '');
    expect(shaFrom(join(dir, 'wt/src'))).toBe(B);
  });
});
