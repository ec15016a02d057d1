import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import Docker from 'dockerode';
import { fixtureFunctions, pythonFixtureFunctions, repoFunctions } from './harness.js';

const root = join(import.meta.dirname, '..', '..', '..');
export const TEST_NETWORK = 'voting-test';

/**
 * Brings the Docker Engine up (installing it if need be), builds the function images, and
 * returns the test network with the host's address on it (where the gateway and the test
 * database listen for containers). Throws with the reason when Docker cannot be had.
 */
export async function prepareDocker(): Promise<{ network: string; hostAddress: string }> {
  execFileSync('bash', [join(root, 'infra/scripts/ensure-docker.sh')], { stdio: 'inherit' });
  for (const dir of [fixtureFunctions, pythonFixtureFunctions, repoFunctions]) {
    execFileSync(process.execPath, [join(root, 'infra/scripts/build-images.mjs'), '--functions-dir', dir, '--no-gateway'], { stdio: 'inherit' });
  }
  const docker = new Docker();
  const existing = await docker.listNetworks({ filters: { name: [TEST_NETWORK] } });
  if (!existing.some((n) => n.Name === TEST_NETWORK)) {
    await docker.createNetwork({ Name: TEST_NETWORK, Driver: 'bridge', Labels: { 'org.voting.test': 'true' } });
  }
  const info = await docker.getNetwork(TEST_NETWORK).inspect();
  const hostAddress = info.IPAM?.Config?.[0]?.Gateway as string | undefined;
  if (!hostAddress) throw new Error(`network ${TEST_NETWORK} has no gateway address`);
  return { network: TEST_NETWORK, hostAddress };
}
