import { afterEach, describe, expect, it } from 'vitest';
import { loadFunctions } from '@platform/function-contract/manifest';
import { Controller } from '@platform/core/controller/controller';
import { ProcessRuntime } from '@platform/core/runtimes/process';
import { waitUntil } from '@platform/test-services';
import { fixtureFunctions } from './harness.js';

// The controller as edges in other processes use it: what they report decides when instances go.
describe('the controller', () => {
  let controller: Controller | undefined;
  let runtime: ProcessRuntime | undefined;
  afterEach(async () => {
    await controller?.close();
    await runtime?.close();
  });

  // Break it catches: the calls a dead edge last reported kept forever, so its instances never idle to zero.
  it('keeps an instance an edge reports busy, and lets it idle once that edge is gone', { timeout: 20_000 }, async () => {
    runtime = new ProcessRuntime({ env: {}, secret: () => undefined });
    controller = await Controller.start(runtime, await loadFunctions(fixtureFunctions));
    const stopped: string[] = [];
    controller.on('instanceStopped', (e) => stopped.push(`${e.instance} ${e.reason}`));
    const instance = (await controller.grow('sleepy', AbortSignal.timeout(10_000)))!;
    controller.setEdges(2);
    controller.used('sleepy', instance.id, 1, 'edge-a');
    // sleepy idles after 1 s: busy as reported, it stays.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(controller.instances('sleepy').map((i) => i.id)).toEqual([instance.id]);
    controller.forgetEdge('edge-a');
    await waitUntil(() => stopped.includes(`${instance.id} idle`), { timeoutMs: 5_000, what: 'the instance to idle' });
    expect(controller.instances('sleepy')).toEqual([]);
  });

  // Break it catches: an edge told to grow past maxInstances, or a second start while one is already starting.
  it('grows a function one instance at a time up to its limit, then answers null', { timeout: 20_000 }, async () => {
    runtime = new ProcessRuntime({ env: {}, secret: () => undefined });
    controller = await Controller.start(runtime, await loadFunctions(fixtureFunctions));
    const signal = AbortSignal.timeout(10_000);
    const [a, b] = await Promise.all([controller.grow('sleepy', signal), controller.grow('sleepy', signal)]);
    expect(a!.id).not.toBe(b!.id);
    expect(await controller.grow('sleepy', signal)).toBeNull();
    expect(controller.counts('sleepy')).toMatchObject({ replicas: 2, availableReplicas: 2 });
  });

  // Break it catches: a retiring instance not counted against maxInstances, so that a new one
  // starts beside it (Swarm's replicas above maxInstances while the old one stops).
  it('starts an instance in place of a retiring one only once it has stopped, never above maxInstances', { timeout: 20_000 }, async () => {
    runtime = new ProcessRuntime({ env: {}, secret: () => undefined });
    controller = await Controller.start(runtime, await loadFunctions(fixtureFunctions));
    const signal = AbortSignal.timeout(10_000);
    const running = new Set<string>();
    let most = 0;
    controller.on('instanceStarted', (e) => {
      running.add(e.instance);
      most = Math.max(most, running.size);
    });
    controller.on('instanceStopped', (e) => running.delete(e.instance));
    const [a, b] = await Promise.all([controller.grow('sleepy', signal), controller.grow('sleepy', signal)]);
    // a: a call on it timed out while the edge still holds it; it goes once the edge lets go.
    controller.used('sleepy', a!.id, 1, 'edge-a');
    controller.retire('sleepy', a!.id, 'timeout');
    const events: string[] = [];
    controller.on('instanceStopped', (e) => events.push(`stopped ${e.instance}`));
    controller.on('instanceStarted', (e) => events.push(`started ${e.instance}`));
    const growing = controller.grow('sleepy', signal);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events).toEqual([]); // still two: the retiring one holds its place
    controller.used('sleepy', a!.id, 0, 'edge-a');
    const c = await growing;
    expect(c!.id).not.toBe(a!.id);
    // b may idle out meanwhile on a slow machine (idleSeconds 1): only a's and c's events are in question.
    expect(events.filter((e) => !e.endsWith(b!.id)).slice(0, 2)).toEqual([`stopped ${a!.id}`, `started ${c!.id}`]);
    const ids = controller.instances('sleepy').map((i) => i.id);
    expect(ids).toContain(c!.id);
    expect(ids).not.toContain(a!.id);
    expect(most).toBe(2);
  });
});
