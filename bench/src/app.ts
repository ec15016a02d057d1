// Starts the app as `npm start` runs it (embedded PostgreSQL, process runtime) on free ports with
// its data in a temporary folder, like e2e/global-setup.ts, and finds its processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitUntil } from '@voting/test-services';

/** The repository's root (bench/dist/app.js → ../..). */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface RunningApp {
  /** The vote side, e.g. http://127.0.0.1:PORT. */
  url: string;
  /** The result side (socket.io `scores`). */
  resultUrl: string;
  pid: number;
  /** The app's embedded PostgreSQL, for counting rows. */
  databaseUrl: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startApp({
  env: extra = {},
  nodeArgs = [],
  root = repoRoot,
}: {
  env?: NodeJS.ProcessEnv;
  /** Options for the gateway's node, e.g. --cpu-prof (not allowed in NODE_OPTIONS). */
  nodeArgs?: string[];
  root?: string;
} = {}): Promise<RunningApp> {
  const [port, resultPort, pgPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const dataDir = await mkdtemp(join(tmpdir(), 'voting-bench-'));
  await chmod(dataDir, 0o755); // reachable by the postgres user the embedded server runs as
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    RESULT_PORT: String(resultPort),
    EMBEDDED_POSTGRES_PORT: String(pgPort),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    SYSTEM_READ_PUBLIC: 'true', // the bench reads /system/functions
    // The load comes from one address: its limit (a setting meant for the internet) would only measure itself.
    VOTE_RATE_LIMIT_PER_ADDRESS: '0',
    ...extra,
  };
  for (const name of ['DATABASE_URL', 'QUEUE_URL', 'EVENTS_URL', 'RUNTIME']) if (!(name in extra)) delete env[name];
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'apps/gateway/dist/main.js')], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(
      async () => {
        if (gone) throw new Error('the app exited during start-up');
        return (await fetch(`${url}/healthz`)).ok;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the app to start' },
    );
  } catch (error) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const password = (await readFile(join(dataDir, 'postgres', 'password'), 'utf8')).trim();
  return {
    url,
    resultUrl: `http://127.0.0.1:${resultPort}`,
    pid: child.pid!,
    databaseUrl: `postgres://postgres:${password}@127.0.0.1:${pgPort}/postgres`,
    child,
    async stop() {
      if (!gone) child.kill('SIGINT');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Resident set size of a process in MB (VmRSS in /proc/<pid>/status). */
export async function residentMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

export interface ChildInfo {
  pid: number;
  cmdline: string[];
  env: Record<string, string>;
}

/** The direct children of a process whose command line contains `match`. */
export async function childProcesses(parent: number, match: string): Promise<ChildInfo[]> {
  const found: ChildInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      if (!cmdline.join(' ').includes(match)) continue;
      const env = Object.fromEntries(
        (await readFile(`/proc/${entry}/environ`, 'utf8'))
          .split('\0')
          .filter(Boolean)
          .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
      );
      found.push({ pid: Number(entry), cmdline, env });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** CPU time (user + system, ms) of every process now, with its parent and command line. */
export async function cpuSnapshot(): Promise<Map<number, { ppid: number; name: string; cpuMs: number }>> {
  const ticksPerSecond = 100; // Linux USER_HZ
  const snapshot = new Map<number, { ppid: number; name: string; cpuMs: number }>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').filter(Boolean).join(' ');
      const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
      snapshot.set(Number(entry), { ppid: Number(fields[1]), name: cmdline || stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), cpuMs });
    } catch {
      // gone meanwhile
    }
  }
  return snapshot;
}

/**
 * CPU used between two snapshots, per part of the app: the gateway, each function, PostgreSQL,
 * the load generator (this process). Processes that started meanwhile count from zero.
 */
export function cpuByPart(before: Map<number, { cpuMs: number }>, after: Awaited<ReturnType<typeof cpuSnapshot>>, gatewayPid: number): Record<string, number> {
  const parts: Record<string, number> = {};
  const add = (part: string, ms: number) => (parts[part] = Math.round((parts[part] ?? 0) + ms));
  for (const [pid, now] of after) {
    const used = now.cpuMs - (before.get(pid)?.cpuMs ?? 0);
    if (used <= 0) continue;
    const fn = /functions\/([\w-]+)\//.exec(now.name)?.[1];
    if (pid === gatewayPid) add('gateway', used);
    else if (pid === process.pid) add('load generator', used);
    else if (fn && now.ppid === gatewayPid) add(`function ${fn}`, used);
    else if (/^postgres/.test(now.name) || /\/postgres\b/.test(now.name)) add('postgresql', used);
    else add('other', used);
  }
  return parts;
}

