import { readFileSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { INVOKE_TOKEN_ENV, type FunctionContext } from './types.js';

/** The settings the platform hands a function process, all through its environment. */
export interface InstanceSettings {
  name: string;
  mode: 'oneshot' | 'warm';
  instance: string;
  port: number;
  host: string;
  /** Warm mode on the platform's machine: listen on this unix socket instead of host:port (a cheaper hop). */
  socket?: string | undefined;
  maxInFlight: number;
  /** Warm mode: the credential a call must carry (see INVOKE_TOKEN_ENV). */
  invokeToken?: string | undefined;
  idleSeconds: number;
  /** Longest wait for in-flight calls when stopping. */
  drainSeconds: number;
  env: Record<string, string>;
  secretNames: string[];
  secretsDir: string;
  /** One-shot without stdin (a Swarm job): where to fetch the invocation and post the response. */
  invocationUrl?: string | undefined;
}

const list = (value: string | undefined) => (value ? value.split(',').filter(Boolean) : []);

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): InstanceSettings {
  const mode = env.FN_MODE === 'warm' ? 'warm' : 'oneshot';
  return {
    name: env.FN_NAME ?? 'function',
    mode,
    instance: env.FN_INSTANCE ?? `${hostname()}-${process.pid}`,
    port: Number(env.PORT ?? 8080),
    socket: env.FN_SOCKET || undefined,
    host: env.FN_HOST ?? '0.0.0.0',
    maxInFlight: Number(env.FN_MAX_INFLIGHT ?? 64),
    invokeToken: env[INVOKE_TOKEN_ENV] || undefined,
    idleSeconds: Number(env.FN_IDLE_SECONDS ?? 0),
    drainSeconds: Number(env.FN_DRAIN_SECONDS ?? 10),
    env: Object.fromEntries(list(env.FN_ENV).map((key) => [key, env[key] ?? ''])),
    secretNames: list(env.FN_SECRETS),
    secretsDir: env.SECRETS_DIR ?? '/run/secrets',
    invocationUrl: env.FN_INVOCATION_URL || undefined,
  };
}

/** `votes-reader-url` is read from the file /run/secrets/votes-reader-url, else from $VOTES_READER_URL. */
export function secretReader(settings: InstanceSettings, env: NodeJS.ProcessEnv = process.env) {
  const cache = new Map<string, string>();
  return (name: string): string => {
    if (!settings.secretNames.includes(name)) {
      throw new Error(`secret "${name}" is not declared in the function's manifest`);
    }
    const cached = cache.get(name);
    if (cached !== undefined) return cached;
    const file = join(settings.secretsDir, name);
    const value = existsSync(file) ? readFileSync(file, 'utf8').trim() : env[name.toUpperCase().replaceAll('-', '_')];
    if (!value) throw new Error(`secret "${name}" is not set (no file ${file}, no $${name.toUpperCase().replaceAll('-', '_')})`);
    cache.set(name, value);
    return value;
  };
}

/**
 * Logs go to stderr (in one-shot mode stdout carries the response), written at once: nothing is
 * left in a buffer at exit, where a platform gone away (a broken pipe) would make sonic-boom's
 * flushSync retry forever and keep the instance alive. Functions log little; the cost is small.
 */
export function createLogger(settings: InstanceSettings): Logger {
  return pino(
    { name: settings.name, level: process.env.LOG_LEVEL ?? 'info', base: { instance: settings.instance } },
    pino.destination({ dest: 2, sync: true }),
  );
}

export function baseContext(settings: InstanceSettings, log: Logger): Omit<FunctionContext, 'callId'> {
  return { instance: settings.instance, log, env: settings.env, secret: secretReader(settings) };
}
