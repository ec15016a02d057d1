// `fn new`: a function folder from a template (packages/cli/templates/<language>), the name put in
// wherever the template says __NAME__. Templates are whole, working functions: a greeting.
import { cp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
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
