import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { boundedName, ownerLabels, type SecretRef } from './spec.js';

/**
 * A Swarm secret per declared secret and value: its name holds a hash of the value, so every
 * process with the same value finds the same secret, and a new value is a new secret (Swarm
 * secrets cannot change). Two processes making it at once both end up with the one made first.
 */
export async function ensureSecrets(docker: Docker, prefix: string, fn: FunctionSpec, value: (name: string) => string | undefined): Promise<SecretRef[]> {
  const refs: SecretRef[] = [];
  for (const secret of fn.secrets) {
    const data = value(secret);
    if (data === undefined) throw new Error(`function ${fn.name} needs secret "${secret}", which is not set`);
    const name = secretName(prefix, fn.name, secret, data);
    const id = (await findSecret(docker, name)) ?? (await createSecret(docker, name, ownerLabels(prefix, fn.name), data));
    refs.push({ SecretID: id, SecretName: name, File: { Name: secret, UID: '1000', GID: '1000', Mode: 0o400 } });
  }
  return refs;
}

/** The Swarm secret holding this value of a function's secret: distinct for every function, secret and value. */
export function secretName(prefix: string, fn: string, secret: string, data: string): string {
  const hash = createHash('sha256').update(data).digest('hex').slice(0, 10);
  return boundedName(`${prefix}-${fn}-${secret}-${hash}`);
}

async function findSecret(docker: Docker, name: string): Promise<string | undefined> {
  const found = await docker.listSecrets({ filters: JSON.stringify({ name: [name] }) });
  return found.find((s) => s.Spec?.Name === name)?.ID;
}

async function createSecret(docker: Docker, name: string, labels: Record<string, string>, data: string): Promise<string> {
  try {
    return ((await docker.createSecret({ Name: name, Labels: labels, Data: Buffer.from(data).toString('base64') })) as { id: string }).id;
  } catch (error) {
    // Another process made it in between (409): use theirs.
    const id = (error as { statusCode?: number }).statusCode === 409 ? await findSecret(docker, name) : undefined;
    if (!id) throw error;
    return id;
  }
}
