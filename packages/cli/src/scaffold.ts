// `fn new`: a function folder from a template (packages/cli/templates/<language>), the name put in
// wherever the template says __NAME__, and a Node one linked into its pnpm workspace. Templates
// are whole, working functions: a greeting.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const languages = ['node', 'python'] as const;
export type Language = (typeof languages)[number];

const templates = fileURLToPath(new URL('../templates', import.meta.url));

/** Every file under `dir`, depth first. */
async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)])));
  return nested.flat();
}

/** Writes `<functionsDir>/<name>/` from the language's template; refuses a folder that exists. Returns the files written. */
export async function scaffold(name: string, language: Language, functionsDir: string): Promise<{ dir: string; files: string[] }> {
  const dir = join(functionsDir, name);
  if (
    await stat(dir).then(
      () => true,
      () => false,
    )
  ) {
    throw new Error(`${dir} already exists: pick another name, or remove it first`);
  }
  const template = join(templates, language);
  await cp(template, dir, { recursive: true });
  const written = await files(dir);
  for (const file of written) {
    const text = await readFile(file, 'utf8');
    if (text.includes('__NAME__')) await writeFile(file, text.replaceAll('__NAME__', name));
  }
  return { dir, files: written.map((f) => relative(dir, f)).sort() };
}

/** `pnpm install` in the workspace holding `dir`, if any: what happened, in a line. */
export function linkIntoWorkspace(dir: string): string {
  let root = dir;
  while (!existsSync(join(root, 'pnpm-workspace.yaml'))) {
    const parent = dirname(root);
    if (parent === root) return 'not in a pnpm workspace: install @platform/function-contract beside it yourself';
    root = parent;
  }
  const installed = spawnSync('pnpm', ['install', '--prefer-offline', '--reporter=silent'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  return installed.status === 0
    ? `linked into the workspace at ${root} (pnpm install; pnpm-lock.yaml lists it now)`
    : `pnpm install failed (${(installed.stderr || String(installed.error ?? installed.status)).trim().split('\n')[0]}): run it in ${root}`;
}
