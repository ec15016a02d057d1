import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { RuntimeOptions } from './runtime.js';

export const secretEnvName = (name: string) => name.toUpperCase().replaceAll('-', '_');

/**
 * The environment of a function instance: only what its manifest declares (a function never
 * sees the gateway's own environment), plus the FN_* settings of the function contract. The
 * platform's own variables are set last: a manifest's env or a secret's name never replaces them.
 */
export function functionEnv(
  fn: FunctionSpec,
  options: RuntimeOptions,
  settings: Record<string, string>,
  { includeSecrets }: { includeSecrets: boolean },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, fallback] of Object.entries(fn.env)) env[key] = options.env[key] ?? fallback;
  if (includeSecrets) for (const [name, value] of Object.entries(functionSecrets(fn, options))) env[secretEnvName(name)] = value;
  Object.assign(env, { FN_NAME: fn.name, FN_ENV: Object.keys(fn.env).join(','), FN_SECRETS: fn.secrets.join(','), ...settings });
  if (process.env.LOG_LEVEL) env.LOG_LEVEL = process.env.LOG_LEVEL;
  return env;
}

/** The values of the secrets a function declares; throws naming one that is not set. */
export function functionSecrets(fn: FunctionSpec, options: RuntimeOptions): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of fn.secrets) {
    const value = options.secret(name);
    if (value === undefined) throw new Error(`function ${fn.name} needs secret "${name}", which is not set`);
    values[name] = value;
  }
  return values;
}
