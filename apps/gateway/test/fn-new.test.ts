import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON_KIT_DIR } from '@platform/function-contract/python-kit';
import { startTestGateway } from './harness.js';

const run = promisify(execFile);
const cliDir = join(import.meta.dirname, '..', '..', '..', 'packages', 'cli');
const cli = join(cliDir, 'dist', 'main.js');

/** `fn ...args`: exit code and output. */
const fn = (args: string[], cwd: string) =>
  run(process.execPath, [cli, ...args], { cwd }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

// A workshop writes a function: `fn new <name> --lang node|python` gives a working greeting with
// its test, which the gateway then runs as it finds it.
describe('fn new', () => {
  const made: string[] = [];
  const folder = async (parent = tmpdir()) => {
    const dir = await mkdtemp(join(parent, 'fn-new-'));
    made.push(dir);
    return dir;
  };
  afterAll(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });

  it('writes a Python function whose own test passes and which the gateway runs, warm', async () => {
    const root = await folder();
    const created = await fn(['new', 'hello', '--lang', 'python'], root);
    expect(created.code).toBe(0);
    expect(created.stdout).toContain(`created ${join(root, 'functions', 'hello')} (python): function.json, main.py, test_main.py`);
    expect(JSON.parse(await readFile(join(root, 'functions', 'hello', 'function.json'), 'utf8'))).toMatchObject({ name: 'hello', main: 'main.py' });
    // Its test, as fn new says to run it.
    const test = await run('python3', ['-m', 'unittest'], { cwd: join(root, 'functions', 'hello'), env: { ...process.env, PYTHONPATH: PYTHON_KIT_DIR } });
    expect(test.stderr).toMatch(/Ran 2 tests[\s\S]*OK/);

    const t = await startTestGateway({ functionsDir: join(root, 'functions') });
    try {
      const answer = await fetch(`${t.url}/function/hello`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"workshop"}' });
      expect(answer.status).toBe(200);
      expect(await answer.json()).toMatchObject({ greeting: 'Hello, workshop!', instance: expect.stringMatching(/^hello-/) });
      const refused = await fetch(`${t.url}/function/hello`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({ error: 'missing "name"' });
    } finally {
      await t.close();
    }
  });

  it('writes a Node function whose own test passes and which the gateway runs, warm', async () => {
    // Inside the cli's folder, where the function contract resolves as it does in functions/.
    const root = await folder(cliDir);
    const created = await fn(['new', 'hello-node', '--lang', 'node', '--dir', 'fns', '--no-install'], root);
    expect(created.code).toBe(0);
    const dir = join(root, 'fns', 'hello-node');
    expect((await readdir(dir)).sort()).toEqual(['Dockerfile', 'function.json', 'handler.mjs', 'main.mjs', 'package.json', 'test']);
    expect(JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))).toMatchObject({ name: 'fn-hello-node' });
    const test = await run(process.execPath, ['--test'], { cwd: dir });
    expect(test.stdout).toMatch(/# pass 2\n# fail 0/);

    const t = await startTestGateway({ functionsDir: join(root, 'fns') });
    try {
      const answer = await fetch(`${t.url}/function/hello-node`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"name":"workshop"}',
      });
      expect(await answer.json()).toMatchObject({ greeting: 'Hello, workshop!' });
    } finally {
      await t.close();
    }
  });

  it('refuses a bad name, an unknown language and a folder that exists, writing nothing', async () => {
    const root = await folder();
    const bad = await fn(['new', 'Hello_World'], root);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('a function name is lower case letters, digits and dashes');
    const language = await fn(['new', 'hello', '--lang', 'cobol'], root);
    expect(language.code).toBe(2);
    expect(language.stderr).toMatch(/Allowed choices are node, python/);
    await expect(readdir(join(root, 'functions'))).rejects.toThrow();
    expect((await fn(['new', 'hello', '--lang', 'python'], root)).code).toBe(0);
    const again = await fn(['new', 'hello', '--lang', 'node', '--no-install'], root);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');
    expect((await readdir(join(root, 'functions', 'hello'))).sort()).toEqual(['function.json', 'main.py', 'test_main.py']);
  });
});
