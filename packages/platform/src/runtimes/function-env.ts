import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { RuntimeOptions } from './runtime.js';

export const secretEnvName = (name: string) => name.toUpperCase().replaceAll('-', '_');

/**
 * The environment of a function instance: only what its manifest declares (a function never
 * sees the gateway's own environment), plus the FN_* settings of the function contract.
 */
export function functionEnv(
  fn: FunctionSpec,
  options: RuntimeOptions,
  settings: Record<string, string>,
  { includeSecrets }: { includeSecrets: boolean },
): Record<string, string> {
  const env: Record<string, string> = {
    FN_NAME: fn.name,
    FN_ENV: Object.keys(fn.env).join(','),
    FN_SECRETS: fn.secrets.join(','),
    ...settings,
  };
  if (process.env.LOG_LEVEL) env.LOG_LEVEL = process.env.LOG_LEVEL;
  for (const [key, fallback] of Object.entries(fn.env)) env[key] = options.env[key] ?? fallback;
  if (includeSecrets) {
    for (const name of fn.secrets) {
      const value = options.secret(name);
      if (value === undefined) throw new Error(`function ${fn.name} needs secret "${name}", which is not set`);
      env[secretEnvName(name)] = value;
    }
  }
  return env;
}
