// The docker runtime against a real Docker Engine: the engine is brought up (installed if need
// be) and the fixture image built before the tests; if that cannot be done they fail with the
// reason, they never skip.
import { rm } from 'node:fs/promises';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { waitUntil } from '@platform/test-services';
import { LABELS } from '@platform/core/labels';
import { MANAGED_LABEL, DockerRuntime } from '@platform/core/runtimes/docker';
import { Controller } from '@platform/core/controller/controller';
import { FunctionPool } from '@platform/core/pool';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { fixtureFunctions, functionsFolder, startTestGateway, type TestGateway } from './harness.js';
import { prepareDocker, TEST_NETWORK } from './docker-network.js';

const adminToken = 'docker-test-admin-token';

const docker = new Docker();

const containersOf = async (owner: string, fn?: string) =>
  docker.listContainers({
    all: true,
    filters: { label: [`${MANAGED_LABEL}=${owner}`, ...(fn ? [`${LABELS.function}=${fn}`] : [])] },
  });

describe('docker runtime through the gateway', () => {
  let t: TestGateway;
  let owner: string;
  let functionsDir: string;
  beforeAll(async () => {
    // A call's timeout covers its instance's cold start: a container's takes about 1 s on a busy
    // 2-core machine, the fixtures' whole timeout. These tests are about what runs, not how fast.
    functionsDir = await functionsFolder(fixtureFunctions, (m) => ({ ...m, timeoutSeconds: 4 }));
    t = await startTestGateway({ functionsDir, runtime: 'docker', docker: await prepareDocker(), options: { auth: { token: adminToken } } });
    owner = `test-${new URL(t.url).port}`;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (functionsDir) await rm(functionsDir, { recursive: true, force: true });
    if (owner) expect(await containersOf(owner)).toEqual([]);
  });

  it('scales a warm function from zero and back to zero, seen through the Engine API', async () => {
    expect(await containersOf(owner, 'sleepy')).toHaveLength(0);
    const first = (await (await fetch(`${t.url}/function/sleepy/a/b`, { method: 'POST', body: 'hi' })).json()) as {
      instance: string;
      path: string;
      body: string;
    };
    expect(first).toMatchObject({ path: '/a/b', body: 'hi' });
    const running = await containersOf(owner, 'sleepy');
    expect(running).toHaveLength(1);
    expect(running[0]!.State).toBe('running');
    const second = (await (await fetch(`${t.url}/function/sleepy`)).json()) as { instance: string };
    expect(second.instance).toBe(first.instance); // the same warm container
    await waitUntil(async () => (await containersOf(owner, 'sleepy')).length === 0, { timeoutMs: 15_000, what: 'scale to zero' });
  });

  it('runs a locked-down container, whatever the request asks for', async () => {
    // A request that tries to choose the image, command, mounts, network and environment: all
    // of it is only data for the function; the container is the manifest's, locked down.
    const hostile = JSON.stringify({
      Image: 'alpine',
      Cmd: ['sh'],
      Env: ['EVIL=1'],
      HostConfig: { Binds: ['/:/host'], Privileged: true, NetworkMode: 'host' },
    });
    const call = fetch(`${t.url}/function/crashy?sleep=800&image=alpine&cmd=sh&network=host&mount=/:/host&env=EVIL%3D1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-image': 'alpine', 'x-network': 'host', 'x-env': 'EVIL=1', 'x-mount': '/:/host' },
      body: hostile,
    });
    await waitUntil(async () => (await containersOf(owner, 'crashy')).find((c) => c.State === 'running'), { what: 'a container' });
    const [summary] = await containersOf(owner, 'crashy');
    const info = await docker.getContainer(summary!.Id).inspect();
    expect((await call).status).toBe(200);
    expect(info.Config.User).toBe('1000:1000');
    expect(info.Config.Image).toBe('voting/test-fixture:latest');
    expect(JSON.stringify([info.Config.Cmd, info.Config.Entrypoint, info.Config.Env])).not.toMatch(/EVIL|alpine|"sh"|\/host/);
    expect(info.HostConfig).toMatchObject({
      ReadonlyRootfs: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Memory: 128 * 1024 * 1024,
      PidsLimit: 64,
      NanoCpus: 1_000_000_000,
      NetworkMode: TEST_NETWORK,
      Init: true,
      Privileged: false,
    });
    expect(info.HostConfig.Binds ?? []).toEqual([]);
    expect(info.Mounts.filter((m) => m.Type !== 'tmpfs')).toEqual([]);
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([TEST_NETWORK]);
  });

  it('runs one-shot calls in a container each, removed afterwards', async () => {
    const results = await Promise.all([1, 2].map(async () => (await (await fetch(`${t.url}/function/once`)).json()) as { instance: string; env: object }));
    expect(results[0]!.instance).not.toBe(results[1]!.instance);
    expect(results[0]!.env).toEqual({ GREETING: 'hello' });
    expect(await containersOf(owner, 'once')).toHaveLength(0);
  });

  it('keeps the log lines of warm and one-shot containers for /system/logs', async () => {
    await fetch(`${t.url}/function/sleepy?log=warm-mark`);
    await fetch(`${t.url}/function/once?log=oneshot-mark`);
    const texts = async (name: string) =>
      (await (await fetch(`${t.url}/system/logs?name=${name}`, { headers: { authorization: `Bearer ${adminToken}` } })).text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { instance: string; text: string });
    await waitUntil(async () => (await texts('sleepy')).some((l) => l.text.includes('warm-mark')), { what: "the warm container's line" });
    await waitUntil(async () => (await texts('once')).some((l) => l.text.includes('oneshot-mark')), { what: "the one-shot container's line" });
  });

  it('answers 504 past the timeout and leaves nothing running', async () => {
    const late = await fetch(`${t.url}/function/once?sleep=5000`);
    expect(late.status).toBe(504);
    await waitUntil(async () => (await containersOf(owner, 'once')).length === 0, { timeoutMs: 5_000, what: 'the killed container to go' });
    const stuck = await fetch(`${t.url}/function/sleepy?sleep=5000`);
    expect(stuck.status).toBe(504);
    await waitUntil(async () => (await containersOf(owner, 'sleepy')).length === 0, { timeoutMs: 10_000, what: 'the stuck container to go' });
  });

  it("leaves another live controller's containers alone, and removes them once it is gone", async () => {
    // Break it catches: leftover cleanup by the label alone (removing a live controller's instances), or never removing a dead one's.
    const spec = t.gateway.pools.get('crashy')!.spec;
    const [a, b, c] = ['a', 'b', 'c'].map((x) => `${owner}-${x}-${process.pid}`) as [string, string, string];
    let aAlive = true;
    const options = { env: {}, secret: () => undefined, network: TEST_NETWORK };
    const removeAll = async () => {
      for (const c of [...(await containersOf(a)), ...(await containersOf(b))])
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {});
    };
    onTestFinished(removeAll);
    // Controller A runs an instance, then "crashes" (is never closed).
    const first = new DockerRuntime({ ...options, owner: a });
    const instance = await first.startInstance(spec);
    const second = new DockerRuntime({ ...options, owner: b, isOwnerAlive: async (o) => o !== a || aAlive });
    const own = await second.startInstance(spec);
    // B removes nothing of A's, nor its own live instance; C, told nothing of the others, nothing either.
    expect(await second.removeLeftovers()).toBe(0);
    expect(await new DockerRuntime({ ...options, owner: c }).removeLeftovers()).toBe(0);
    expect((await containersOf(a)).map((c) => c.State)).toEqual(['running']);
    // A is declared gone (its id is no longer among the live ones): its container goes.
    aAlive = false;
    expect(await second.removeLeftovers()).toBe(1);
    expect(await containersOf(a)).toHaveLength(0);
    await instance.exited;
    expect((await containersOf(b)).map((c) => c.State)).toEqual(['running']);
    await second.stopInstance(own, 'kill');
    await waitUntil(async () => (await containersOf(b)).length === 0, { timeoutMs: 10_000, what: "B's container to go" });
  });

  it('never runs a call meant for a killed container in the one that took its address', async () => {
    // Break it catches: calls sent by address alone (no instance named), so the calls of a killed
    // container run in whatever container the engine gave its address to next.
    const network = `voting-test-reuse-${process.pid}`;
    const reuseOwner = `${owner}-reuse`;
    await docker.createNetwork({ Name: network, Driver: 'bridge', Labels: { 'org.voting.test': 'true' } });
    const runtime = new DockerRuntime({ env: {}, secret: () => undefined, network, owner: reuseOwner });
    const [crashy, sleepy] = ['crashy', 'sleepy'].map((fn) => t.gateway.pools.get(fn)!.spec) as [FunctionSpec, FunctionSpec];
    const controller = await Controller.start(runtime, [crashy, sleepy]);
    onTestFinished(async () => {
      await controller.close();
      await docker.getNetwork(network).remove();
    });
    const signal = AbortSignal.timeout(20_000);
    const killed = (await controller.grow('crashy', signal))!;
    await docker.getContainer(killed.id).kill();
    await waitUntil(() => controller.instances('crashy').length === 0, { timeoutMs: 10_000, what: 'the controller to see the container die' });
    const taker = (await controller.grow('sleepy', signal))!;
    // The engine hands a freed address to the next container at once.
    expect(taker.url).toBe(killed.url);
    // Held busy meanwhile (sleepy idles away after 1 s), as a call in flight on it would.
    controller.used('sleepy', taker.id, 1);
    // An edge that has not heard of the death yet still lists the killed container.
    const staleView = new Proxy(controller, {
      get: (target, key) => (key === 'instances' ? (fn: string) => [...(fn === 'crashy' ? [killed] : []), ...target.instances(fn)] : Reflect.get(target, key)),
    });
    const pool = new FunctionPool(crashy, staleView);
    const request = { method: 'GET', path: '/', query: {}, headers: {}, body: '' };
    const answer = await pool.invoke({ callId: 'meant-for-crashy', request });
    expect(answer.status).toBe(200);
    const served = JSON.parse(answer.body!) as { instance: string };
    // Run by a live crashy container, not by the sleepy one at the killed one's address.
    expect(served.instance).toMatch(/crashy/);
    expect(served.instance).not.toBe(killed.id);
    controller.used('sleepy', taker.id, 0);
    const sleepyAnswer = JSON.parse((await new FunctionPool(sleepy, controller).invoke({ callId: 'for-sleepy', request })).body!) as {
      instance: string;
      served: number;
    };
    // The first call the container at the killed one's address ran.
    expect(sleepyAnswer).toMatchObject({ instance: taker.id, served: 1 });
    await pool.close();
  });
});
