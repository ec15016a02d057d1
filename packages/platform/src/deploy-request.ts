// The body of POST and PUT /system/functions: a function manifest (functions/<name>/function.json),
// or OpenFaaS's deployment request (`service`, `envVars`, `limits`...), or both mixed. Either way
// it becomes one manifest, checked like one from a folder: a bad field is named in the error.
import { manifestIssue, manifestSchema, type FunctionManifest } from '@platform/function-contract/manifest';
import { InvocationError } from './errors.js';

/** OpenFaaS memory quantities (`128Mi`, `1Gi`, `256M`, `128m` as Docker writes it) in MB. */
export function memoryMb(quantity: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|K|M|G|k|m|g)?$/.exec(quantity.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const unit = (match[2] ?? '').toLowerCase().replace('i', '');
  const mb = unit === 'g' ? value * 1_024 : unit === 'k' ? value / 1_024 : unit === 'm' ? value : value / 1_048_576;
  return Math.round(mb);
}

const bad = (field: string, problem: string) => new InvocationError(400, `field "${field}" ${problem}`);

/** A deploy's manifest: one that leaves `private` out keeps the current function's value (an update). */
export type DeployManifest = Omit<FunctionManifest, 'private'> & { private?: boolean };

/** The manifest a deploy request stands for; throws 400 naming the field at fault. */
export function parseDeployRequest(body: unknown): DeployManifest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvocationError(400, 'send a JSON object: a function manifest');
  const { service, envVars, limits, namespace, readOnlyRootFilesystem, ...rest } = body as Record<string, unknown>;
  const manifest: Record<string, unknown> = { ...rest };
  if (service !== undefined) {
    if (manifest.name !== undefined && manifest.name !== service) throw bad('service', `is "${String(service)}" but name is "${String(manifest.name)}"`);
    manifest.name = service;
  }
  if (envVars !== undefined) {
    if (manifest.env !== undefined) throw bad('envVars', 'and env are the same: give one');
    manifest.env = envVars;
  }
  if (limits !== undefined) {
    const memory = (limits as { memory?: unknown } | null)?.memory;
    if (typeof limits !== 'object' || limits === null || Object.keys(limits).some((k) => k !== 'memory' && k !== 'cpu')) {
      throw bad('limits', 'takes memory (e.g. "128Mi") and cpu only');
    }
    if (memory !== undefined) {
      const mb = typeof memory === 'string' ? memoryMb(memory) : undefined;
      if (mb === undefined) throw bad('limits.memory', `must be a quantity such as "128Mi", not ${JSON.stringify(memory)}`);
      manifest.memoryMb = mb;
    }
  }
  if (namespace !== undefined && namespace !== 'default') throw bad('namespace', 'must be "default": this platform has one namespace');
  // Every function's root file system is read-only here; asking for a writable one is refused.
  if (readOnlyRootFilesystem === false) throw bad('readOnlyRootFilesystem', 'cannot be false: function containers always run read-only');
  if (manifest.name === undefined) throw bad('name', 'is missing (or service, as OpenFaaS names it)');
  const parsed = manifestSchema.safeParse(manifest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') throw bad(issue.keys.join(', '), 'is not a manifest field (nor one of OpenFaaS that this platform takes)');
    const { field, problem } = manifestIssue(issue);
    throw bad(field, problem);
  }
  if (manifest.private !== undefined) return parsed.data;
  const { private: _default, ...unsaid } = parsed.data;
  return unsaid;
}

/** Patterns of allowed images, `*` standing for any characters: `voting/fn-*`, `registry.local:5000/*`. */
export function imageAllowed(image: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => new RegExp(`^${pattern.split('*').map(literal).join('.*')}$`).test(image));
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
