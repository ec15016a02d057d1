import { spawn, spawnSync } from 'node:child_process';
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

/** Uses REDIS_URL when set, otherwise starts redis-server on a free port with nothing on disk. */
export async function startRedis(): Promise<RedisServer> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error(
      'redis-server is not installed and REDIS_URL is not set: run `npm test` (it installs Debian\'s redis-server) or set REDIS_URL',
    );
  }
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitUntil(() => ping(port), { what: `redis-server on port ${port}` });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
