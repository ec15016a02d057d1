#!/usr/bin/env node
// `fn` as `npx fn` and `pnpm fn` from the repository (the root package.json's bin and script point
// here) and as node_modules/.bin/fn: runs the built CLI, or, in a clone not built yet, first installs
// and builds through the bootstrap, which then runs it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (existsSync(main)) {
  await import(main.href);
} else {
  const bootstrap = fileURLToPath(new URL('../../../infra/scripts/bootstrap.mjs', import.meta.url));
  const child = spawn(process.execPath, [bootstrap, 'fn', ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code) => process.exit(code ?? 1));
}
