import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('settings', () => {
  // Break it catches: a default of one edge per core, which on 2 cores takes the CPU the functions
  // and PostgreSQL need (the bench's `edges` scenario measures it).
  it('runs half the cores as edges by default, at least one; GATEWAY_WORKERS overrides it', () => {
    expect(loadConfig({}).GATEWAY_WORKERS).toBe(Math.max(1, Math.floor(availableParallelism() / 2)));
    expect(loadConfig({ GATEWAY_WORKERS: '3' }).GATEWAY_WORKERS).toBe(3);
  });

  it('refuses a count of edges it cannot run, naming the setting', () => {
    expect(() => loadConfig({ GATEWAY_WORKERS: '0' })).toThrow(/GATEWAY_WORKERS/);
    expect(() => loadConfig({ GATEWAY_WORKERS: 'many' })).toThrow(/GATEWAY_WORKERS/);
  });
});
