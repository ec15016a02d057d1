import { describe, expect, it } from 'vitest';
import { INVOKE_TOKEN_ENV } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { essentials } from '../src/runtimes/swarm/deploy.js';
import { invokeTokenOf, warmServiceSpec, withInvokeToken } from '../src/runtimes/swarm/spec.js';

const fn = { name: 'f', memoryMb: 64, timeoutSeconds: 5, maxConcurrency: 2, env: { GREETING: 'hi' }, secrets: [] } as unknown as FunctionSpec;
const network = { name: 'fn-net', id: 'o62gncdi3e4z4auequqtg6w6y' };
const context = { prefix: 'shop-fn', network: network.name, options: { env: {}, secret: () => undefined } };
const spec = () => warmServiceSpec(context, fn, { image: 'sha256:aaa', secrets: [] });

describe("a warm service's instance credential", () => {
  // Break it catches: the credential in what names a service version or what an update compares, so
  // each controller's deploy makes a service of its own, or updates the shared one and restarts every
  // task (whose callers hold the credential it had).
  it('is new in each spec built, while the version and what an update compares stay the same', () => {
    const [a, b] = [spec(), spec()];
    expect(invokeTokenOf(a)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(invokeTokenOf(a)).not.toBe(invokeTokenOf(b));
    expect(a.Name).toBe(b.Name);
    expect(essentials(a, network)).toBe(essentials(b, network));
  });

  // Break it catches: a controller taking over that cannot read the credential of the tasks it adopts,
  // or a kept credential added beside the new one (the task would get either).
  it('is read back from a spec, and replaced whole by the one a service already has', () => {
    const kept = withInvokeToken(spec(), 'kept-credential');
    expect(invokeTokenOf(kept)).toBe('kept-credential');
    expect(kept.TaskTemplate.ContainerSpec.Env.filter((entry) => entry.startsWith(`${INVOKE_TOKEN_ENV}=`))).toEqual([`${INVOKE_TOKEN_ENV}=kept-credential`]);
    expect(invokeTokenOf({ TaskTemplate: { ContainerSpec: { Env: ['A=1'] } } })).toBeUndefined();
  });
});
