#!/usr/bin/env node
// fn: the gateway's command line, run as `npx fn` (bin/fn.mjs). Exit codes: 0 ok, 1 the call failed
// (non-2xx, or the gateway could not be reached), 2 usage error (or a command this runtime does not support).
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { PYTHON_KIT_DIR } from '@platform/function-contract/python-kit';
import { loadManifest } from '@platform/function-contract/manifest';
import { languages, linkIntoWorkspace, scaffold, type Language } from './scaffold.js';

interface Global {
  gateway: string;
  token?: string;
  json?: boolean;
}

class Failure extends Error {
  constructor(
    message: string,
    readonly code: 1 | 2,
  ) {
    super(message);
  }
}

/** This CLI's release: its package's version. */
const cliVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const program = new Command('fn')
  .description("Write, deploy, list, invoke and scale the gateway's functions")
  .version(cliVersion, '-V, --version', "the CLI's version")
  .addOption(new Option('-g, --gateway <url>', 'gateway URL').env('GATEWAY_URL').default('http://127.0.0.1:8080'))
  .addOption(new Option('-t, --token <token>', 'admin token (deploy, rm, scale; reads when status is private)').env('GATEWAY_ADMIN_TOKEN'))
  .option('--json', 'print JSON')
  // A usage error: one line naming what is wrong, then the usage; set before the commands, which inherit it.
  .configureOutput({ outputError: (text, write) => write(`fn: ${text.replace(/^error: /, '')}`) })
  .showHelpAfterError()
  .exitOverride();

const global = () => program.opts<Global>();

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** Where `npm start` keeps the admin token it generated (DATA_DIR/secrets), unless GATEWAY_ADMIN_TOKEN_FILE says otherwise. */
const localTokenFile = () => process.env.GATEWAY_ADMIN_TOKEN_FILE ?? resolve(repoRoot, process.env.DATA_DIR ?? '.data', 'secrets', 'gateway-admin-token');

/** The token given, else, for a gateway on this machine, the one `npm start` generated: so `fn` works next to it with no setup. */
function adminToken(gateway: string): string | undefined {
  const { token } = global();
  if (token) return token;
  try {
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(gateway).hostname)) return undefined;
    return readFileSync(localTokenFile(), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

async function call(method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const { gateway } = global();
  const headers: Record<string, string> = { ...init.headers };
  // The admin token goes to the gateway's own routes only (/system/*, /metrics), never on to a function (nor into the queue).
  const token = path.startsWith('system/') || path === 'metrics' ? adminToken(gateway) : undefined;
  if (token) headers.authorization = `Bearer ${token}`;
  let url: URL;
  try {
    url = new URL(path, gateway.endsWith('/') ? gateway : `${gateway}/`);
  } catch {
    throw new Failure(`invalid gateway URL: ${gateway}`, 2);
  }
  try {
    return await fetch(url, { method, headers, body: init.body });
  } catch (error) {
    throw new Failure(`could not reach the gateway at ${gateway}: ${(error as { cause?: Error }).cause?.message ?? (error as Error).message}`, 1);
  }
}

/** The error of a non-2xx answer: the gateway's {"error"} message, or the body. */
async function failed(response: Response): Promise<Failure> {
  const text = await response.text();
  let message = text;
  try {
    message = (JSON.parse(text) as { error?: string }).error ?? text;
  } catch {
    // not JSON
  }
  const hint = response.status === 401 ? ` (give the admin token with --token or GATEWAY_ADMIN_TOKEN; npm start keeps it in ${localTokenFile()})` : '';
  return new Failure(`${response.status}: ${message}${hint}`, 1);
}

function print(value: unknown, text: () => string): void {
  process.stdout.write(global().json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

const name = (value: string) => {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(value)) throw new InvalidArgumentError('a function name is lower case letters, digits and dashes');
  return value;
};

program
  .command('list')
  .alias('ls')
  .description('the functions, their instances and calls')
  .action(async () => {
    const response = await call('GET', 'system/functions');
    if (!response.ok) throw await failed(response);
    const list = (await response.json()) as Array<{
      name: string;
      mode: string;
      replicas: number;
      maxInstances: number;
      invocationCount: number;
      coldStarts: number;
    }>;
    print(list, () =>
      table([
        ['NAME', 'MODE', 'REPLICAS', 'INVOCATIONS', 'COLD STARTS'],
        ...list.map((f) => [f.name, f.mode, `${f.replicas}/${f.maxInstances}`, String(f.invocationCount), String(f.coldStarts)]),
      ]),
    );
  });

/** The versions a gateway reports at GET /system/info (OpenFaaS's shape). */
interface SystemInfo {
  provider: { provider: string; orchestration: string; version: { release: string; sha: string } };
  version: { release: string; sha: string };
  arch: string;
}

async function systemInfo(): Promise<SystemInfo> {
  const response = await call('GET', 'system/info');
  if (!response.ok) throw await failed(response);
  return (await response.json()) as SystemInfo;
}

/** A release with its commit shortened, as people quote it. */
const releaseText = ({ release, sha }: { release: string; sha: string }) => (sha === 'unknown' ? release : `${release} (${sha.slice(0, 12)})`);

program
  .command('status')
  .description('the tier and every function in one screen')
  .action(async () => {
    const [info, functions, members, publicUrl, queueDepth] = await Promise.all([
      systemInfo(),
      call('GET', 'system/functions').then(async (response) => {
        if (!response.ok) throw await failed(response);
        return (await response.json()) as FunctionFigures[];
      }),
      // 501: a gateway alone, which keeps no list of members.
      call('GET', 'system/gateways').then(async (response) => {
        if (response.status === 501) return null;
        if (!response.ok) throw await failed(response);
        return (await response.json()) as Member[];
      }),
      call('GET', 'system/public-url').then(async (response) => {
        if (response.status === 404) return null;
        if (!response.ok) throw await failed(response);
        return ((await response.json()) as { url: string }).url;
      }),
      // The depth of the queue of async calls, where the gateway's metrics tell it.
      call('GET', 'metrics').then(async (response) => {
        if (!response.ok) return null;
        const line = /^gateway_queue_depth (\d+)$/m.exec(await response.text());
        return line ? Number(line[1]) : null;
      }),
    ]);
    const status = { gateway: global().gateway, info, members, queueDepth, publicUrl, functions };
    print(status, () => statusText(status));
  });

program
  .command('version')
  .description("the CLI's version and the gateway's")
  .action(async () => {
    const info = await systemInfo();
    print({ cli: { release: cliVersion }, gateway: info }, () =>
      [
        `fn       ${cliVersion}`,
        `gateway  ${releaseText(info.version)} at ${global().gateway}`,
        `runtime  ${info.provider.orchestration} (${info.provider.provider} ${releaseText(info.provider.version)}), ${info.arch}`,
      ].join('\n'),
    );
  });

program
  .command('invoke')
  .description('calls a function and prints its response body (with --async: queues the call and prints its id)')
  .argument('<name>', 'function name, optionally with a path and query: results/options, sleepy?ms=10', (value: string) => {
    name(/^[^/?]*/.exec(value)![0]);
    return value;
  })
  .option('--async', 'queue the call (POST /async-function/<name>)')
  .option('-d, --data <data>', 'request body: a string, or @file to read a file')
  .option('-X, --method <method>', 'HTTP method (default: POST with --data or --async, else GET)')
  .option('-H, --content-type <type>', 'content type of the body (default: application/json when the body is JSON, else text/plain)')
  .option('--callback-url <url>', 'with --async: where the result is posted')
  .action(async (target: string, options: { async?: boolean; data?: string; method?: string; contentType?: string; callbackUrl?: string }) => {
    let body: string | undefined = options.data;
    if (body?.startsWith('@')) {
      try {
        body = readFileSync(body.slice(1), 'utf8');
      } catch (error) {
        throw new Failure(`cannot read ${body.slice(1)}: ${(error as Error).message}`, 2);
      }
    }
    const method = (options.method ?? (body !== undefined || options.async ? 'POST' : 'GET')).toUpperCase();
    if (options.async && method !== 'POST') throw new Failure('--async calls are POST', 2);
    if (body !== undefined && (method === 'GET' || method === 'HEAD')) throw new Failure(`a ${method} call has no body`, 2);
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = options.contentType ?? (isJson(body) ? 'application/json' : 'text/plain');
    if (options.callbackUrl) headers['x-callback-url'] = options.callbackUrl;
    const response = await call(method, `${options.async ? 'async-function' : 'function'}/${target}`, { body, headers });
    const text = await response.text();
    const callId = response.headers.get('x-call-id') ?? undefined;
    if (global().json) {
      print({ status: response.status, callId, headers: Object.fromEntries(response.headers), body: text }, () => '');
    } else if (response.ok) {
      process.stdout.write(options.async ? `${callId}\n` : text.endsWith('\n') || text === '' ? text : `${text}\n`);
    }
    if (!response.ok) {
      if (!global().json) process.stderr.write(`fn: ${target} answered ${response.status}${callId ? ` (call ${callId})` : ''}: ${text}\n`);
      process.exitCode = 1;
    }
  });

program
  .command('scale')
  .description('sets the number of warm instances of a function now (0..maxInstances); needs the admin token')
  .argument('<name>', 'function name', name)
  .argument('<replicas>', 'instances', (value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError('replicas is a whole number');
    return Number(value);
  })
  .action(async (fn: string, replicas: number) => {
    const response = await call('POST', `system/scale-function/${fn}`, {
      body: JSON.stringify({ serviceName: fn, replicas }),
      headers: { 'content-type': 'application/json' },
    });
    if (!response.ok) throw await failed(response);
    const result = (await response.json()) as { serviceName: string; replicas: number };
    print(result, () => `${result.serviceName}: ${result.replicas} instance${result.replicas === 1 ? '' : 's'}`);
  });

program
  .command('calls')
  .description('status and result of an async call')
  .argument('<id>', 'call id (X-Call-Id of the 202)')
  .action(async (id: string) => {
    const response = await call('GET', `system/calls/${encodeURIComponent(id)}`);
    if (!response.ok) throw await failed(response);
    const record = (await response.json()) as {
      callId: string;
      function: string;
      status: string;
      attempts: number;
      result?: { status: number; body: string };
      error?: string;
    };
    print(record, () =>
      [
        `${record.callId}  ${record.function}  ${record.status}  (attempts: ${record.attempts})`,
        ...(record.result ? [`${record.result.status} ${record.result.body}`] : []),
        ...(record.error ? [`error: ${record.error}`] : []),
      ].join('\n'),
    );
    if (record.status === 'failed') process.exitCode = 1;
  });

program
  .command('logs')
  .description("the last lines a function's instances wrote, where the runtime keeps them")
  .argument('<name>', 'function name', name)
  .option(
    '-n, --tail <n>',
    'lines (1 to 1000)',
    (value: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 1_000) throw new InvalidArgumentError('an integer from 1 to 1000');
      return n;
    },
    100,
  )
  .action(async (fn: string, options: { tail: number }) => {
    const response = await call('GET', `system/logs?name=${fn}&tail=${options.tail}`);
    if (response.status === 501) {
      const error = await failed(response);
      throw new Failure(error.message, 2);
    }
    if (!response.ok) throw await failed(response);
    const lines = (await response.text())
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { instance: string; timestamp: string; text: string });
    print(lines, () => lines.map((l) => `${l.timestamp}  ${l.instance}  ${l.text}`).join('\n'));
  });

program
  .command('new')
  .description('writes a new function folder from a template: a manifest, a handler answering POST {"name": "x"} with a greeting, and its test')
  .argument('<name>', 'function name', name)
  .addOption(new Option('-l, --lang <language>', 'the language of the function').choices(languages).default('node'))
  .option('--dir <folder>', 'the folder of functions to write it in', 'functions')
  .option('--no-install', 'node: do not link the function contract into the workspace (pnpm install)')
  .action(async (fn: string, options: { lang: Language; dir: string; install: boolean }) => {
    let created: { dir: string; files: string[] };
    try {
      created = await scaffold(fn, options.lang, resolve(options.dir));
    } catch (error) {
      throw new Failure((error as Error).message, 2);
    }
    // A Node function is a workspace package: pnpm links its dependency on the function contract.
    const linked = options.lang === 'node' && options.install ? linkIntoWorkspace(created.dir) : undefined;
    const test = options.lang === 'python' ? `PYTHONPATH=${PYTHON_KIT_DIR} python3 -m unittest` : 'node --test';
    print(created, () =>
      [
        `created ${created.dir} (${options.lang}): ${created.files.join(', ')}`,
        ...(linked ? [`  ${linked}`] : []),
        `  its test:  cd ${created.dir} && ${test}`,
        `  deploy it: npx fn deploy ${relativeFolder(created.dir)}   (to the gateway running now)`,
        `  call it:   curl -d '{"name":"workshop"}' http://localhost:8080/function/${fn}`,
      ].join('\n'),
    );
  });

program
  .command('deploy')
  .description('deploys a function folder (or updates it, if deployed): every edge routes to it at once; needs the admin token')
  .argument('<folder>', 'the function folder, e.g. functions/hello')
  .action(async (folder: string) => {
    const dir = resolve(folder);
    let manifest: Awaited<ReturnType<typeof loadManifest>>;
    try {
      manifest = await loadManifest(join(dir, 'function.json'));
    } catch (error) {
      throw new Failure((error as Error).message, 2);
    }
    // A function with a build step (TypeScript) is built first: the runtime runs what it made.
    const pkg = join(dir, 'package.json');
    const scripts = existsSync(pkg) ? ((JSON.parse(readFileSync(pkg, 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {}) : {};
    if (scripts.build) {
      process.stderr.write(`› building ${manifest.name} (npm run build)\n`);
      const built = spawnSync('npm', ['run', '--silent', 'build'], { cwd: dir, stdio: ['ignore', 2, 2] });
      if (built.status !== 0) throw new Failure(`the build of ${manifest.name} failed`, 1);
    }
    // Containers run an image: built here, by the same builder as `npm run images`, onto this machine's Docker Engine.
    const health = await call('GET', 'healthz');
    const { runtime } = (await health.json().catch(() => ({}))) as { runtime?: string };
    if (runtime === 'docker' || runtime === 'swarm') {
      if (!manifest.image) throw new Failure(`${manifest.name} declares no image in its function.json: the ${runtime} runtime runs declared images only`, 2);
      process.stderr.write(`› building the image ${manifest.image} for the ${runtime} runtime\n`);
      const built = spawnSync(
        process.execPath,
        [join(repoRoot, 'infra/scripts/build-images.mjs'), '--functions-dir', dirname(dir), '--no-gateway', manifest.name],
        {
          stdio: ['ignore', 2, 2],
        },
      );
      if (built.status !== 0) throw new Failure(`the image of ${manifest.name} could not be built`, 1);
    }
    // The manifest as written (checked above): a field it leaves out is the gateway's to decide, so
    // an update without `private` keeps a private function private rather than sending the default.
    const body = JSON.parse(readFileSync(manifest.manifestPath, 'utf8')) as Record<string, unknown>;
    const send = (method: 'POST' | 'PUT') => call(method, 'system/functions', { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    process.stderr.write(`› deploying ${manifest.name}\n`);
    let response = await send('POST');
    const updated = response.status === 409;
    if (updated) response = await send('PUT');
    if (!response.ok) throw await failed(response);
    const status = (await response.json()) as { name: string };
    print(status, () => `${status.name}: ${updated ? 'updated' : 'deployed'}; call it at ${global().gateway.replace(/\/$/, '')}/function/${status.name}`);
  });

program
  .command('rm')
  .description('removes a function: new calls get 404, calls in flight finish; needs the admin token')
  .argument('<name>', 'function name', name)
  .action(async (fn: string) => {
    const response = await call('DELETE', 'system/functions', { body: JSON.stringify({ functionName: fn }), headers: { 'content-type': 'application/json' } });
    if (!response.ok) throw await failed(response);
    print({ functionName: fn }, () => `${fn}: removed`);
  });

/** One function as GET /system/functions shows it: the fields fn status reads. */
interface FunctionFigures {
  name: string;
  mode: string;
  replicas: number;
  availableReplicas: number;
  maxInstances: number;
  inFlight?: number;
  queued?: number;
  invocationCount: number;
  coldStarts: number;
  latencyMs?: { p50: number; p95: number; p99: number } | null;
}

/** One member of the tier as GET /system/gateways shows it. */
interface Member {
  role: string;
  host: string;
  pid: number;
  leader: boolean;
  startedAt: string;
  inFlight: number;
  cpu: number;
}

/** Rows as columns two spaces apart, each as wide as its widest cell. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function statusText(status: {
  gateway: string;
  info: SystemInfo;
  members: Member[] | null;
  queueDepth: number | null;
  publicUrl: string | null;
  functions: FunctionFigures[];
}): string {
  const { info, members, queueDepth, publicUrl, functions } = status;
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const controllers = members?.filter((m) => m.role === 'controller').length ?? 0;
  const lines = [
    `gateway  ${status.gateway}: ${releaseText(info.version)}, ${info.provider.orchestration} runtime, ${info.arch}`,
    members
      ? `tier     ${count(controllers, 'controller', 'controllers')}, ${count(members.length - controllers, 'edge', 'edges')}`
      : 'tier     one gateway (no member list)',
    `queue    ${queueDepth === null ? 'unknown' : count(queueDepth, 'call waiting', 'calls waiting')}`,
    `vote at  ${publicUrl ?? 'no public URL set (PUBLIC_URL)'}`,
  ];
  if (members?.length) {
    const since = (at: string) => new Date(at).toISOString().slice(11, 19);
    lines.push(
      '',
      table([
        ['ROLE', 'HOST', 'PID', 'IN FLIGHT', 'CPU', 'SINCE (UTC)'],
        ...members.map((m) => [`${m.role}${m.leader ? ' (leader)' : ''}`, m.host, String(m.pid), String(m.inFlight), m.cpu.toFixed(2), since(m.startedAt)]),
      ]),
    );
  }
  const ms = (value: number | undefined) => (value === undefined ? '-' : String(value));
  lines.push(
    '',
    functions.length === 0
      ? 'no functions'
      : table([
          ['FUNCTION', 'MODE', 'REPLICAS', 'AVAILABLE', 'IN FLIGHT', 'WAITING', 'INVOCATIONS', 'COLD STARTS', 'P50 MS', 'P95 MS'],
          ...functions.map((f) => [
            f.name,
            f.mode,
            `${f.replicas}/${f.maxInstances}`,
            String(f.availableReplicas),
            String(f.inFlight ?? 0),
            String(f.queued ?? 0),
            String(f.invocationCount),
            String(f.coldStarts),
            ms(f.latencyMs?.p50),
            ms(f.latencyMs?.p95),
          ]),
        ]),
  );
  return lines.join('\n');
}

const relativeFolder = (dir: string) => {
  const shown = relative(process.cwd(), dir);
  return shown && !shown.startsWith('..') ? shown : dir;
};

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version exit 0; every other commander error is a usage error.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (error instanceof Failure) {
    process.stderr.write(`fn: ${error.message}\n`);
    process.exitCode = error.code;
  } else {
    process.stderr.write(`fn: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
