import { readFile, readdir } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';

const envName = z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must be an UPPER_SNAKE_CASE variable name');
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
    /** Variables passed to the function; the value is the default, the platform's environment overrides it. */
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
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.');
    throw new ManifestError(shown, field, issue.message);
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
