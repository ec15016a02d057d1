import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { freePort, waitUntil } from './net.js';

export interface RedisServer {
  url: string;
  /** Restarts the server process on the same port (for fault tests); undefined for REDIS_URL. */
  stop(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.on('error', () => resolve(false));
  });
}

/** A private redis-server that a fault test may kill and start again. */
export interface RestartableRedis extends RedisServer {
  /** Kills the server process (SIGKILL, as a crash) and waits for it to be gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port, reading back what it persisted. */
  start(): Promise<void>;
}

/** Uses REDIS_URL when set, otherwise starts redis-server on a free port with nothing on disk. */
export async function startRedis(): Promise<RedisServer> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  return startPrivateRedis();
}

/**
 * Always a redis-server of its own on a free port. `appendonly` keeps an append-only file (with
 * `appendfsync` as given) in a temporary folder, so a restart reads the data back.
 */
export async function startPrivateRedis({
  appendonly = false,
  appendfsync = 'everysec',
}: {
  appendonly?: boolean;
  appendfsync?: 'always' | 'everysec' | 'no';
} = {}): Promise<RestartableRedis> {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error("redis-server is not installed and REDIS_URL is not set: run `npm test` (it installs Debian's redis-server) or set REDIS_URL");
  }
  const port = await freePort();
  const dir = appendonly ? await mkdtemp(join(tmpdir(), 'voting-redis-')) : undefined;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', ''];
  args.push(...(dir ? ['--dir', dir, '--appendonly', 'yes', '--appendfsync', appendfsync] : ['--appendonly', 'no']));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const launch = async () => {
    const started = spawn('redis-server', args, { stdio: 'ignore' });
    child = started;
    exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    await waitUntil(() => ping(port), { what: `redis-server on port ${port}` });
  };
  const end = async (signal: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
    child = undefined;
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await end('SIGTERM');
      if (dir) await rm(dir, { recursive: true, force: true });
    },
    kill: () => end('SIGKILL'),
    start: launch,
  };
}
