import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@platform/test-services';
import { startEntryPoint } from './entry-point.js';

const temporary: string[] = [];
const held: Server[] = [];
afterAll(async () => {
  for (const server of held) server.close();
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A port on loopback that this test holds, as another program would. */
async function holdPort(): Promise<number> {
  const server = createServer();
  held.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** Starts the entry point with `setting` on a port held here; what it printed and its exit status. */
async function startOnHeldPort(setting: string, env: Record<string, string> = {}) {
  const port = await holdPort();
  const dataDir = await mkdtemp(join(tmpdir(), 'voting-port-in-use-'));
  temporary.push(dataDir);
  const app = await startEntryPoint({ EMBEDDED_POSTGRES_PORT: String(await freePort()), ...env, [setting]: String(port) }, dataDir);
  const code = await app.exited;
  return { port, code, lines: app.output().trimEnd().split('\n') };
}

describe('a port in use at start', () => {
  // Fails if the listen error is logged as it comes (`listen EADDRINUSE …`) instead of the line
  // naming the setting, or if the app keeps running or exits 0.
  it('PORT: one line naming the port and the setting, last, and exit status 1', { timeout: 60_000 }, async () => {
    const { port, code, lines } = await startOnHeldPort('PORT', { GATEWAY_WORKERS: '1', LOG_FORMAT: 'pretty' });
    expect(code).toBe(1);
    expect(lines.at(-1)).toBe(`✖ port ${port} is in use (PORT): stop what uses it or start with PORT=${port + 10} npm start`);
    expect(lines.join('\n')).not.toContain('EADDRINUSE');
  });

  // Fails if the edges' balancer (GATEWAY_WORKERS > 1 listens there, not in main) passes its
  // listen error on unnamed.
  it('RESULT_PORT, with edge workers beside the controller', { timeout: 180_000 }, async () => {
    const { port, code, lines } = await startOnHeldPort('RESULT_PORT', { GATEWAY_WORKERS: '2', LOG_FORMAT: 'pretty' });
    expect(code).toBe(1);
    expect(lines.at(-1)).toBe(`✖ port ${port} is in use (RESULT_PORT): stop what uses it or start with RESULT_PORT=${port + 10} npm start`);
  });

  // Fails if the embedded database's port is not checked first (PostgreSQL's own failure says
  // only that it did not start).
  it("EMBEDDED_POSTGRES_PORT, the embedded database's, also as a JSON record when logs are JSON", { timeout: 60_000 }, async () => {
    const { port, code, lines } = await startOnHeldPort('EMBEDDED_POSTGRES_PORT', { LOG_FORMAT: 'json' });
    expect(code).toBe(1);
    const message = `port ${port} is in use (EMBEDDED_POSTGRES_PORT): stop what uses it or start with EMBEDDED_POSTGRES_PORT=${port + 10} npm start`;
    expect(lines).toContain(`✖ ${message}`);
    const records = lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number; msg: string });
    expect(records).toContainEqual(expect.objectContaining({ level: 60, msg: message }));
  });
});
