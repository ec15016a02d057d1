// What a person starting the app reads: log lines fit for a terminal, and start-up failures they
// can fix said in one line with the setting that fixes them.
import { pino, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { Config } from './config.js';

/** LOG_FORMAT as it applies here: `auto` is pretty on a terminal, JSON otherwise (a file, a pipe, a log collector). */
export function isPretty(format: Config['LOG_FORMAT'], stdoutIsTTY = process.stdout.isTTY === true): boolean {
  return format === 'pretty' || (format === 'auto' && stdoutIsTTY);
}

/** One line a record: its time, level, source and message; other fields after it on the same line. */
const prettyOptions = (colorize: boolean) => ({
  colorize,
  translateTime: 'SYS:HH:MM:ss',
  ignore: 'pid,hostname',
  singleLine: true,
});

/**
 * The gateway's logger. Pretty lines are written synchronously in this thread (no transport
 * worker), so the last lines before an exit are not lost.
 */
export function createLog(options: { name: string; level: string; format: Config['LOG_FORMAT'] }): Logger {
  const settings = { name: options.name, level: options.level };
  if (!isPretty(options.format)) return pino(settings);
  return pino(settings, pinoPretty({ ...prettyOptions(process.stdout.isTTY === true), sync: true, destination: 1 }));
}

/**
 * Rewrites a function instance's log line (JSON from the function kit's logger) as a pretty one;
 * other text as it is. Undefined when lines are to stay as they are.
 */
export function functionLogFormat(format: Config['LOG_FORMAT']): ((line: string) => string) | undefined {
  if (!isPretty(format)) return undefined;
  const pretty = pinoPretty.prettyFactory(prettyOptions(process.stderr.isTTY === true));
  return (line) => pretty(line);
}

/** A start-up failure whose message says, in one line, what to do about it. */
export class FixableFailure extends Error {}

/**
 * What the runtime's first call to the Docker Engine failed with, as a FixableFailure when no
 * engine answered there (RUNTIME=docker or swarm without Docker); any other error as it is.
 */
export function dockerFailure(error: unknown, dockerHost = process.env.DOCKER_HOST): unknown {
  const failure = error as NodeJS.ErrnoException & { address?: string };
  if (failure?.syscall !== 'connect') return error;
  const engine = dockerHost?.replace(/^unix:\/\//, '') ?? failure.address ?? '/var/run/docker.sock';
  if (failure.code === 'EACCES') {
    return new FixableFailure(`no Docker Engine answers at ${engine}: this user may not use its socket: add it to the socket's group, then log in again`);
  }
  return new FixableFailure(`no Docker Engine answers at ${engine}: install Docker (Docker Desktop on macOS) and start it, or set DOCKER_HOST`);
}

/** The setting that moves each port the app listens on, for the message when one is taken. */
type PortSetting = 'PORT' | 'RESULT_PORT' | 'EMBEDDED_POSTGRES_PORT';

/**
 * The one line for a start-up failure a person can fix where they stand, or undefined for any other.
 * A port in use names the port, the setting that moves it and a command line that does.
 */
export function friendlyFailure(error: unknown, config: Pick<Config, PortSetting>): string | undefined {
  if (error instanceof FixableFailure) return error.message;
  const failure = error as NodeJS.ErrnoException & { port?: number };
  if (failure?.code !== 'EADDRINUSE' || typeof failure.port !== 'number') return undefined;
  const setting = (['PORT', 'RESULT_PORT', 'EMBEDDED_POSTGRES_PORT'] as const).find((name) => config[name] === failure.port);
  if (!setting) return `port ${failure.port} is in use: stop what uses it`;
  return `port ${failure.port} is in use (${setting}): stop what uses it or start with ${setting}=${failure.port + 10} npm start`;
}
