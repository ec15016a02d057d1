import { describe, expect, it } from 'vitest';
import type { Member } from '../src/cluster/members.js';
import { EdgeScaler, edgesWanted, type EdgeScaledEvent, type ScalableService } from '../src/controller/edge-scaler.js';

const edge = (cpu: number): Member => ({
  id: `edge-${cpu}-${Math.random()}`,
  role: 'edge',
  host: 'h',
  pid: 1,
  url: null,
  leader: false,
  startedAt: new Date(),
  lastSeenAt: new Date(),
  inFlight: 0,
  cpu,
  details: {},
});

/** A service that holds a replica count, up to `limit` (what the nodes can place). */
function service(replicas: number, limit = Number.POSITIVE_INFINITY) {
  const writes: number[] = [];
  const s: ScalableService & { replicas: number; writes: number[] } = {
    name: 'tier_gateway',
    replicas,
    writes,
    read: async () => ({ replicas: s.replicas, limit }),
    scale: async (to) => {
      writes.push(to);
      s.replicas = to;
    },
  };
  return s;
}

describe('edgesWanted', () => {
  it('asks for enough edges to keep each under the target, within min and max', () => {
    const bounds = { min: 1, max: 4, targetCpu: 0.5 };
    expect(edgesWanted([], bounds)).toBe(1);
    expect(edgesWanted([0.2], bounds)).toBe(1);
    expect(edgesWanted([0.5], bounds)).toBe(1);
    expect(edgesWanted([0.9], bounds)).toBe(2);
    expect(edgesWanted([0.9, 0.8], bounds)).toBe(4);
    expect(edgesWanted([3, 3], bounds)).toBe(4);
    expect(edgesWanted([0.1, 0.1, 0.1], { ...bounds, min: 2 })).toBe(2);
  });
});

describe('EdgeScaler', () => {
  const scaler = (s: ScalableService, members: Member[][], events: EdgeScaledEvent[] = [], settings = {}) => {
    let i = 0;
    return new EdgeScaler({
      service: s,
      members: async () => members[Math.min(i++, members.length - 1)]!,
      min: 1,
      max: 3,
      targetCpu: 0.5,
      scaleDownAfterMs: 10_000,
      onScaled: (e) => events.push(e),
      ...settings,
    });
  };

  it('scales up at once under load, and says why', async () => {
    const s = service(1);
    const events: EdgeScaledEvent[] = [];
    await scaler(s, [[edge(0.95)]], events).tick(0);
    expect(s.writes).toEqual([2]);
    expect(events).toEqual([{ service: 'tier_gateway', from: 1, to: 2, reason: '0.95 cores used by 1 edge, target 0.5 each' }]);
  });

  it('scales down one edge at a time, only after the load stayed low for the whole window', async () => {
    const s = service(3);
    const busy = [edge(0.6), edge(0.6), edge(0.6)];
    const idle = [edge(0.05), edge(0.05), edge(0.05)];
    const a = scaler(s, [busy, idle, idle, busy, idle, idle, idle, idle]);
    await a.tick(0); // 1.8 cores: 3 wanted (4, at most 3), stays
    await a.tick(6_000); // low, but not for a whole window (10 s) yet
    expect(s.writes).toEqual([]);
    await a.tick(11_000); // low since the busy decision at 0 left the window: one edge less
    expect(s.writes).toEqual([2]);
    await a.tick(12_000); // busy again: back up at once
    expect(s.writes).toEqual([2, 3]);
    await a.tick(15_000);
    await a.tick(21_000); // 9 s since the last change
    expect(s.writes).toEqual([2, 3]);
    await a.tick(23_000); // 11 s of low load since the last change
    expect(s.writes).toEqual([2, 3, 2]);
    await a.tick(24_000); // one step, then a whole window again
    expect(s.writes).toEqual([2, 3, 2]);
  });

  it('never goes above what the service can place, nor below min', async () => {
    const s = service(1, 2);
    await scaler(s, [[edge(4)]]).tick(0);
    expect(s.writes).toEqual([2]);
    const t = service(1, 1);
    await scaler(t, [[edge(0)]], [], { min: 2 }).tick(0); // a single node: min 2 cannot be placed
    expect(t.writes).toEqual([]);
    const u = service(1);
    await scaler(u, [[edge(0)]], [], { min: 2 }).tick(0);
    expect(u.writes).toEqual([2]);
  });

  it('keeps going when the service cannot be read, and logs it once', async () => {
    const logs: string[] = [];
    const broken: ScalableService = { name: 'x', read: () => Promise.reject(new Error('no quorum')), scale: async () => {} };
    const a = new EdgeScaler({ service: broken, members: async () => [], min: 1, max: 2, targetCpu: 0.5, scaleDownAfterMs: 0, log: (m) => logs.push(m) });
    await a.tick(0);
    await a.tick(1);
    expect(logs).toEqual(['edges x: cannot scale now: no quorum']);
  });

  it('refuses settings that cannot work', () => {
    const s = service(1);
    const make = (o: object) => new EdgeScaler({ service: s, members: async () => [], min: 1, max: 2, targetCpu: 0.5, scaleDownAfterMs: 0, ...o });
    expect(() => make({ min: 0 })).toThrow(/min/);
    expect(() => make({ min: 3, max: 2 })).toThrow(/max/);
    expect(() => make({ targetCpu: 0 })).toThrow(/targetCpu/);
  });
});
