// Call overhead: the same warm function called through the gateway and directly, in
// alternating blocks so drift in the machine's load hits both sides alike.
import { performance } from 'node:perf_hooks';
import { round, summarize } from '@voting/loadgen';
import type { ScenarioResult } from './types.js';

export async function measureOverhead({
  id,
  title,
  calls,
  what,
  directName,
  viaGateway,
  direct,
}: {
  id: string;
  title: string;
  calls: number;
  /** The call, for the report (e.g. "results GET /options"). */
  what: string;
  /** The floor's name in the table (e.g. "instance directly"). */
  directName: string;
  viaGateway: () => Promise<void>;
  direct: () => Promise<void>;
}): Promise<ScenarioResult> {
  for (let i = 0; i < 50; i++) {
    await viaGateway();
    await direct();
  }
  const gateway: number[] = [];
  const floor: number[] = [];
  const block = Math.max(1, Math.floor(calls / 10));
  for (let done = 0; done < calls; done += block) {
    for (const [side, times] of [
      [viaGateway, gateway],
      [direct, floor],
    ] as const) {
      for (let i = 0; i < block; i++) {
        const t = performance.now();
        await side();
        times.push(performance.now() - t);
      }
    }
  }
  const g = summarize(gateway);
  const d = summarize(floor);
  return {
    id,
    title,
    status: 'ok',
    metrics: [
      { name: 'through the gateway, median', value: g.p50, unit: 'ms', floor: { name: directName, value: d.p50 } },
      { name: 'overhead, median', value: round(g.p50 - d.p50), unit: 'ms', target: { op: '<', value: 1 } },
      { name: 'overhead, p99', value: round(g.p99 - d.p99), unit: 'ms' },
    ],
    details: { calls: gateway.length, function: what, gatewayMs: g, directMs: d },
  };
}
