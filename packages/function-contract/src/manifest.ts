import { readFile, readdir } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';

/**
 * Variables no manifest may set, `*` ending a prefix: the contract's own (the platform sets them),
 * and those that make a loader, an interpreter, a shell or the C library run other code or change
 * how it runs (NODE_OPTIONS=--import=..., LD_PRELOAD, PYTHONSTARTUP, PATH...).
 */
export const REFUSED_ENV: readonly string[] = [
  'FN_*',
  'SECRETS_DIR',
  'NODE_*',
  'LD_*',
  'DYLD_*',
  'PYTHON*',
  'PATH',
  'BASH_ENV',
  'ENV',
  'BASH_FUNC_*',
  'SHELLOPTS',
  'PS4',
  'PERL5*',
  'PERLLIB',
  'RUBY*',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  'GCONV_PATH',
  'GLIBC_TUNABLES',
  'MALLOC_*',
  'LOCPATH',
  'NLSPATH',
  'HOSTALIASES',
  'OPENSSL_CONF',
  'OPENSSL_ENGINES',
];

/** The entry of REFUSED_ENV that refuses this variable, if any. */
export function refusedEnvRule(name: string): string | undefined {
  return REFUSED_ENV.find((rule) => (rule.endsWith('*') ? name.startsWith(rule.slice(0, -1)) : name === rule));
}

const envName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]*$/, 'must be an UPPER_SNAKE_CASE variable name')
  .superRefine((name, ctx) => {
    const rule = refusedEnvRule(name);
    if (rule === undefined) return;
    const why = rule === 'FN_*' || rule === 'SECRETS_DIR' ? "is the platform's own" : 'controls how code is loaded or run';
    ctx.addIssue({ code: 'custom', message: `${name} ${why} (${rule}): a manifest may not set it` });
  });
const secretName = z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a lower-case-dashed secret name');

/** The manifest `functions/<name>/function.json`: everything the platform needs to run a function. */
export const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be lower case letters, digits and dashes, starting with a letter'),
    description: z.string().max(200).optional(),
    /** Entry module, relative to the function's folder. */
    main: z.string().default('dist/main.js'),
    /** Container image (docker and swarm runtimes). */
    image: z.string().min(1).optional(),
    /** `warm`: long-lived instances serving calls over HTTP; `oneshot`: one process per call. */
    mode: z.enum(['warm', 'oneshot']).default('warm'),
    timeoutSeconds: z.number().positive().max(900).default(10),
    /** Calls in flight at once across all instances; more wait in line. */
    maxConcurrency: z.number().int().min(1).max(10_000).default(32),
    /** Warm instances at most (scale-up limit). */
    maxInstances: z.number().int().min(1).max(100).default(2),
    /** Calls allowed to wait for a free slot; beyond it the gateway answers 429. */
    maxQueued: z.number().int().min(0).max(100_000).default(1_000),
    memoryMb: z.number().int().min(16).max(65_536).default(128),
    /** A warm instance with no calls for this long is stopped (scale to zero). */
    idleSeconds: z.number().positive().max(86_400).default(30),
    /**
     * Queued (async) calls the platform may combine into one invocation whose body is a JSON
     * array of the calls' JSON bodies; 1 means one invocation per call. The function must
     * then accept an array and be idempotent, as a retry repeats the whole batch.
     */
    batchSize: z.number().int().min(1).max(10_000).default(1),
    /**
     * Variables passed to the function; the value is the default, the platform's settings override
     * it. Names in REFUSED_ENV are refused.
     */
    env: z.record(envName, z.string()).default({}),
    /** Secrets the function reads with `context.secret(name)`. */
    secrets: z.array(secretName).default([]),
    /**
     * Invoked only by other functions (with the platform's invoke token, the secret
     * `gateway-invoke-token`), never from outside: e.g. a function that trusts its input.
     */
    private: z.boolean().default(false),
    /** Free-form labels and annotations (OpenFaaS's): shown with the function, not acted on. */
    labels: z.record(z.string().max(100), z.string().max(500)).optional(),
    annotations: z.record(z.string().max(100), z.string().max(2_000)).optional(),
  })
  .strict();

export type FunctionManifest = z.infer<typeof manifestSchema>;

/** The manifest as a JSON Schema (what a file or a deploy may hold), e.g. for an OpenAPI document. */
export function manifestJsonSchema(): { properties: Record<string, unknown> } & Record<string, unknown> {
  const { $schema: _draft, ...schema } = z.toJSONSchema(manifestSchema, { io: 'input' }) as { properties: Record<string, unknown> } & Record<string, unknown>;
  return schema;
}

/** A manifest plus where it was found. */
export interface FunctionSpec extends FunctionManifest {
  dir: string;
  manifestPath: string;
}

/** The field and the problem of a manifest's first issue; a bad variable name is told by its own message. */
export function manifestIssue(issue: z.core.$ZodIssue): { field: string; problem: string } {
  const problem = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  return { field: issue.path.join('.'), problem };
}

export class ManifestError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    problem: string,
  ) {
    super(`${file}: ${field ? `field "${field}" ` : ''}${problem}`);
    this.name = 'ManifestError';
  }
}

/** Reads and validates one manifest; throws a ManifestError naming the file and the field. */
export async function loadManifest(manifestPath: string, displayRoot = process.cwd()): Promise<FunctionSpec> {
  const shown = relative(displayRoot, manifestPath) || manifestPath;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (error) {
    throw new ManifestError(shown, '', `is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const { field, problem } = manifestIssue(parsed.error.issues[0]!);
    throw new ManifestError(shown, field, problem);
  }
  const dir = join(manifestPath, '..');
  const folder = dir.split(/[\\/]/).pop();
  if (folder !== parsed.data.name) {
    throw new ManifestError(shown, 'name', `is "${parsed.data.name}" but the folder is "${folder}"`);
  }
  return { ...parsed.data, dir, manifestPath };
}

/** Loads every `<dir>/<name>/function.json`; fails on the first bad one. */
export async function loadFunctions(functionsDir: string, displayRoot = process.cwd()): Promise<FunctionSpec[]> {
  const entries = await readdir(functionsDir, { withFileTypes: true });
  const specs: FunctionSpec[] = [];
  // A folder of functions may link to function folders kept elsewhere.
  const folders = entries.filter(
    (e) => e.isDirectory() || (e.isSymbolicLink() && statSync(join(functionsDir, e.name), { throwIfNoEntry: false })?.isDirectory()),
  );
  for (const entry of folders.sort((a, b) => a.name.localeCompare(b.name))) {
    const manifestPath = join(functionsDir, entry.name, 'function.json');
    if (existsSync(manifestPath)) specs.push(await loadManifest(manifestPath, displayRoot));
  }
  return specs;
}
