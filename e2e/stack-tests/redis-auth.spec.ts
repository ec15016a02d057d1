// The stack's Redis holds the async queue and the events: only those given its password (the
// redis-password secret: the controllers and the edges, and record-vote's events URL) may use it.
// Checked from inside the Redis task itself, over its loopback.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { runningTasks } from './engine.js';

const execFileAsync = promisify(execFile);
const stack = () => process.env.STACK_NAME!;

/** The container of a service's running task on this engine. */
async function container(service: string): Promise<string> {
  const [task] = await runningTasks(`${stack()}_${service}`);
  const id = task?.Status.ContainerStatus?.ContainerID;
  if (!id) throw new Error(`no running task of ${stack()}_${service}`);
  return id;
}

/** redis-cli in the Redis task, to 127.0.0.1; with `password` when given (REDISCLI_AUTH, never on a command line). */
async function redisCli(args: string[], password?: string): Promise<string> {
  const env = password === undefined ? [] : ['--env', 'REDISCLI_AUTH'];
  const { stdout } = await execFileAsync('docker', ['exec', ...env, await container('redis'), 'redis-cli', '-h', '127.0.0.1', ...args], {
    env: { ...process.env, REDISCLI_AUTH: password ?? '' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return stdout.trim();
}

// Break it catches: Redis started without `requirepass` (the redis-config secret left out of its
// command), so any container on the stack's network reads and writes the queue.
test("the stack's Redis refuses every command without its password, and answers with it", async () => {
  for (const command of [['PING'], ['KEYS', '*'], ['SET', 'intruder', '1']]) {
    expect({ command, answer: await redisCli(command) }).toEqual({ command, answer: 'NOAUTH Authentication required.' });
  }
  // The password the tier was given, read where the controller reads it.
  const { stdout: password } = await execFileAsync(
    'docker',
    ['exec', await container('controller'), 'node', '-e', "process.stdout.write(require('fs').readFileSync('/run/secrets/redis-password', 'utf8').trim())"],
    { encoding: 'utf8', timeout: 30_000 },
  );
  expect(password).toMatch(/^[0-9a-f]{64}$/);
  expect(await redisCli(['PING'], password)).toBe('PONG');
  expect(await redisCli(['EXISTS', 'intruder'], password)).toBe('0');
});
