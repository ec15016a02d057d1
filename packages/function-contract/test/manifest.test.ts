import { mkdtemp as makeTemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFunctions, loadManifest, ManifestError } from '../src/manifest.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'functions');

const temporary: string[] = [];
async function mkdtemp(prefix: string): Promise<string> {
  const dir = await makeTemp(prefix);
  temporary.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('function manifests', () => {
  it('applies defaults to a minimal manifest', async () => {
    const spec = await loadManifest(join(fixtures, 'echo', 'function.json'));
    expect(spec).toMatchObject({
      name: 'echo',
      main: 'dist/main.js',
      mode: 'warm',
      timeoutSeconds: 5,
      maxConcurrency: 32,
      memoryMb: 128,
      idleSeconds: 30,
      env: { GREETING: 'hello' },
      secrets: [],
      dir: join(fixtures, 'echo'),
    });
  });

  it('names the file and the field of a bad value', async () => {
    const error = await loadManifest(join(fixtures, 'bad-field', 'function.json'), fixtures).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as ManifestError).message).toMatch(/^bad-field\/function\.json: field "timeoutSeconds" /);
    expect((error as ManifestError).field).toBe('timeoutSeconds');
  });

  it('rejects a name that does not match the folder', async () => {
    await expect(loadManifest(join(fixtures, 'wrong-folder', 'function.json'), fixtures)).rejects.toThrow(
      'wrong-folder/function.json: field "name" is "something-else" but the folder is "wrong-folder"',
    );
  });

  it.each([
    [{ name: 'x', mode: 'sometimes' }, 'mode'],
    [{ name: 'x', maxConcurrency: 0 }, 'maxConcurrency'],
    [{ name: 'x', env: { lower: 'no' } }, 'env.lower'],
    [{ name: 'x', secrets: ['UPPER'] }, 'secrets.0'],
    [{ name: 'x', unknown: true }, ''],
    [{ name: '../x' }, 'name'],
  ])('rejects %j naming field "%s"', async (manifest, field) => {
    const dir = await mkdtemp(join(tmpdir(), 'manifest-'));
    await mkdir(join(dir, 'x'));
    await writeFile(join(dir, 'x', 'function.json'), JSON.stringify(manifest));
    const error = (await loadManifest(join(dir, 'x', 'function.json'), dir).catch((e: unknown) => e)) as ManifestError;
    expect(error).toBeInstanceOf(ManifestError);
    expect(error.field).toBe(field);
  });

  it('reports invalid JSON with the file name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'manifest-'));
    await mkdir(join(dir, 'x'));
    await writeFile(join(dir, 'x', 'function.json'), '{"name": ');
    await expect(loadManifest(join(dir, 'x', 'function.json'), dir)).rejects.toThrow(/^x\/function\.json: is not valid JSON/);
  });

  it('loads every function of a folder and stops at the first bad one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'functions-'));
    for (const name of ['b-fn', 'a-fn']) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'function.json'), JSON.stringify({ name }));
    }
    expect((await loadFunctions(dir)).map((s) => s.name)).toEqual(['a-fn', 'b-fn']);
    await mkdir(join(dir, 'c-fn'));
    await writeFile(join(dir, 'c-fn', 'function.json'), JSON.stringify({ name: 'c-fn', idleSeconds: 'soon' }));
    await expect(loadFunctions(dir, dir)).rejects.toThrow('c-fn/function.json: field "idleSeconds"');
  });
});
