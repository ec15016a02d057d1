// Starts the app as `npm start` runs it (embedded PostgreSQL, process runtime) on free ports with
// its data in a temporary folder, and finds its processes and what they use.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { appProcess, repoRoot } from '@platform/test-services';

export { repoRoot };

export interface RunningApp {
  /** The vote side, e.g. http://127.0.0.1:PORT. */
  url: string;
  /** The result side (socket.io `scores`). */
  resultUrl: string;
  pid: number;
  /** The app's embedded PostgreSQL, for counting rows. */
  databaseUrl: string;
  stop(): Promise<void>;
}

/** The app as `npm start` runs it, for measuring, at default settings (the load comes from loopback, which the per-address limit leaves alone). */
export async function startApp({ env = {}, nodeArgs = [] }: { env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Promise<RunningApp> {
  const app = await appProcess({
    // SYSTEM_READ_PUBLIC: the bench reads /system/functions.
    env: { SYSTEM_READ_PUBLIC: 'true', ...env },
    nodeArgs,
    output: 'inherit',
  });
  try {
    await app.start();
  } catch (error) {
    await app.close();
    throw error;
  }
  const password = (await readFile(join(app.dataDir, 'postgres', 'password'), 'utf8')).trim();
  return {
    url: app.url,
    resultUrl: app.resultUrl,
    pid: app.pid()!,
    databaseUrl: `postgres://postgres:${password}@127.0.0.1:${app.embeddedPostgresPort}/postgres`,
    async stop() {
      await app.signal('SIGINT');
      await app.close();
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
 * CPU used between two snapshots, per part of the app: the gateway, its edges (GATEWAY_WORKERS
 * above 1), each function, PostgreSQL, the load generator (this process and what it runs, e.g.
 * `ab`). Processes that started meanwhile count from zero.
 */
export function cpuByPart(before: Map<number, { cpuMs: number }>, after: Awaited<ReturnType<typeof cpuSnapshot>>, gatewayPid: number): Record<string, number> {
  const parts: Record<string, number> = {};
  const add = (part: string, ms: number) => (parts[part] = Math.round((parts[part] ?? 0) + ms));
  for (const [pid, now] of after) {
    const used = now.cpuMs - (before.get(pid)?.cpuMs ?? 0);
    if (used <= 0) continue;
    const fn = /functions\/([\w-]+)\//.exec(now.name)?.[1];
    if (pid === gatewayPid) add('gateway', used);
    else if (pid === process.pid || now.ppid === process.pid) add('load generator', used);
    else if (fn && now.ppid === gatewayPid) add(`function ${fn}`, used);
    else if (now.ppid === gatewayPid && now.name.startsWith(`${process.execPath} `)) add('edges', used);
    else if (/^postgres/.test(now.name) || /\/postgres\b/.test(now.name)) add('postgresql', used);
    else add('other', used);
  }
  return parts;
}
