// The README's commands as a newcomer types them: in a shell, in a fresh clone, one after the
// other; long-running ones in their own process group, stopped as a terminal's Ctrl-C stops them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The commands of the README's `sh` blocks, continuation lines joined, comments dropped. */
export function readmeCommands(markdown: string): string[] {
  const commands: string[] = [];
  for (const [, block] of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const joined = block!.replace(/\s*\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      const command = line.split(/\s+#\s/)[0]!.trim();
      if (command && !command.startsWith('#')) commands.push(command);
    }
  }
  return commands;
}

export interface Shell {
  /** Runs a command to its end (bash -c), with a time limit. */
  run(command: string, options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<Ran>;
  /** Starts a command that runs until stopped; `output()` is what it printed so far. */
  start(command: string): { child: ChildProcess; output(): string; ctrlC(): Promise<number | null> };
}

/**
 * A shell in `cwd`, as `user` when given (this process being root), else as this process's user,
 * with `settings` over a newcomer's empty environment of the app's settings.
 */
export function shell(cwd: string, user?: string, settings: NodeJS.ProcessEnv = {}): Shell {
  const argv = (command: string): [string, string[]] => ['bash', ['-c', command]];
  const env: NodeJS.ProcessEnv = { ...process.env };
  let ids: { uid?: number; gid?: number } = {};
  if (user) {
    const [uid, gid, home] = execFileSync('bash', ['-c', `id -u ${user}; id -g ${user}; getent passwd ${user} | cut -d: -f6`], { encoding: 'utf8' })
      .trim()
      .split('\n');
    ids = { uid: Number(uid), gid: Number(gid) };
    Object.assign(env, { HOME: home, USER: user, LOGNAME: user });
    for (const name of Object.keys(env)) if (/^(XDG_|npm_config_|PNPM_)/.test(name)) delete env[name];
  }
  // The walk is a newcomer's: none of the test run's own settings leak into it.
  for (const name of Object.keys(env))
    if (/^(DATABASE_URL|REDIS_URL|VOTE_URL|RESULT_URL|GATEWAY_|PORT$|RESULT_PORT|DATA_DIR|RUNTIME|STACK_NAME|VOTING_SECRETS)/.test(name)) delete env[name];
  Object.assign(env, settings);
  return {
    run(command, { timeoutMs = 600_000, env: extra = {} } = {}) {
      const [cmd, args] = argv(command);
      return new Promise((resolve) => {
        const child = spawn(cmd, args, { cwd, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...ids });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => {
          stderr += `\n[killed after ${timeoutMs} ms]`;
          killGroup(child, 'SIGKILL');
        }, timeoutMs);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    },
    start(command) {
      const [cmd, args] = argv(command);
      const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...ids });
      let printed = '';
      child.stdout!.on('data', (d: Buffer) => (printed += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (printed += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return {
        child,
        output: () => printed,
        async ctrlC() {
          killGroup(child, 'SIGINT');
          const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 60_000);
          const code = await exited;
          clearTimeout(timer);
          return code;
        },
      };
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Processes whose command line mentions `text` (e.g. the clone's folder): none should outlive a stop. */
export function processesMentioning(text: string): string {
  try {
    return execFileSync('pgrep', ['-af', text], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line && !line.includes('pgrep'))
      .join('\n');
  } catch {
    return '';
  }
}
