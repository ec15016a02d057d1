import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { INVOKE_TOKEN_ENV, type FunctionResponse, type Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { PYTHON_KIT_DIR } from '@platform/function-contract/python-kit';
import { newInvokeToken, type Instance, type Runtime, type RuntimeOptions } from './runtime.js';
import { functionEnv } from './function-env.js';
import { FunctionLogs } from './logs.js';
import { InvocationError } from '../errors.js';

interface ProcessInstance extends Instance {
  child: ChildProcess;
}

/** Functions as local processes (Node, or Python for a `.py` main): the embedded default, no Docker needed. */
export class ProcessRuntime implements Runtime {
  readonly kind = 'process';
  private readonly children = new Set<ChildProcess>();
  private readonly lines: FunctionLogs;
  /** Warm instances listen on unix sockets in here: a cheaper hop than TCP on loopback, private to this user. */
  private readonly socketDir: string;

  constructor(private readonly options: RuntimeOptions) {
    this.lines = new FunctionLogs(undefined, options.formatLogLine);
    const parent = socketFolderParent();
    removeStaleSocketDirs(parent);
    this.socketDir = mkdtempSync(join(parent, `fn-sockets-${process.pid}-`));
  }

  async deploy(): Promise<void> {}

  logs(fn: string, tail: number) {
    return this.lines.tail(fn, tail);
  }

  private spawn(fn: FunctionSpec, settings: Record<string, string>, instance: string, ipc = false): ChildProcess {
    const { file, args, env: runEnv } = command(fn);
    // How the code is run (PATH, the Python kit's path) is the platform's, whatever the function's env says.
    const env = {
      ...functionEnv(fn, this.options, settings, { includeSecrets: true }),
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...runEnv,
    };
    const child = spawn(file, args, {
      cwd: fn.dir,
      env,
      stdio: ipc ? ['pipe', 'pipe', 'pipe', 'ipc'] : ['pipe', 'pipe', 'pipe'],
    });
    child.stderr!.pipe(this.lines.sink(fn.name, instance));
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async runOnce(fn: FunctionSpec, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    const instance = `${fn.name}-${randomBytes(3).toString('hex')}`;
    const child = this.spawn(fn, { FN_MODE: 'oneshot', FN_INSTANCE: instance }, instance);
    const kill = () => child.kill('SIGKILL');
    signal.addEventListener('abort', kill, { once: true });
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdin!.on('error', () => {}); // a function that exits without reading stdin
    child.stdin!.end(JSON.stringify(invocation));
    const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
    signal.removeEventListener('abort', kill);
    if (signal.aborted) throw signal.reason;
    const output = Buffer.concat(chunks).toString('utf8');
    if (code !== 0) throw new InvocationError(502, `function ${fn.name} exited with ${code ?? sig} before answering`);
    try {
      return JSON.parse(output) as FunctionResponse;
    } catch {
      throw new InvocationError(502, `function ${fn.name} wrote no valid response`);
    }
  }

  async startInstance(fn: FunctionSpec): Promise<Instance> {
    const id = `${fn.name}-${randomBytes(3).toString('hex')}`;
    const invokeToken = newInvokeToken();
    const child = this.spawn(
      fn,
      {
        FN_MODE: 'warm',
        FN_INSTANCE: id,
        [INVOKE_TOKEN_ENV]: invokeToken,
        // A short name: the whole path must fit a socket address (see socketFolderParent).
        FN_SOCKET: join(this.socketDir, `${randomBytes(SOCKET_NAME_BYTES).toString('hex')}.sock`),
        FN_MAX_INFLIGHT: String(fn.maxConcurrency),
        FN_DRAIN_SECONDS: String(fn.timeoutSeconds),
        // The pipe on stdin closes if the gateway dies, so no instance outlives it.
        FN_EXIT_WITH_PARENT: '1',
      },
      id,
      true,
    );
    child.stdout!.pipe(this.lines.sink(fn.name, id, process.stdout));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let url: string;
    try {
      url = `unix:${await readySignal(child, exited, fn.timeoutSeconds * 1000 + 10_000)}`;
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    const instance: ProcessInstance = { id, url, invokeToken, exited, child };
    return instance;
  }

  async stopInstance(instance: Instance, how: 'drain' | 'kill'): Promise<void> {
    (instance as ProcessInstance).child.kill(how === 'drain' ? 'SIGTERM' : 'SIGKILL');
    await instance.exited;
  }

  async close(): Promise<void> {
    const exits = [...this.children].map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of this.children) child.kill('SIGTERM');
    await Promise.all(exits);
    rmSync(this.socketDir, { recursive: true, force: true });
  }
}

/**
 * How a function's main module runs here: a Python file with python3 and the contract's Python
 * kit on its path, anything else with this Node (its heap capped at the manifest's memory).
 */
function command(fn: FunctionSpec): { file: string; args: string[]; env: Record<string, string> } {
  const main = join(fn.dir, fn.main);
  if (main.endsWith('.py')) return { file: 'python3', args: [main], env: { PYTHONPATH: PYTHON_KIT_DIR, PYTHONDONTWRITEBYTECODE: '1' } };
  return { file: process.execPath, args: [`--max-old-space-size=${fn.memoryMb}`, main], env: {} };
}

/** The instance says it is ready, and on which socket, over its IPC channel (a JSON line, from any language): no polling. */
function readySignal(child: ChildProcess, exited: Promise<void>, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new InvocationError(504, `instance ${child.pid} did not become ready in ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: unknown) => {
      const { ready, socket } = (message ?? {}) as { ready?: unknown; socket?: unknown };
      if (ready !== true || typeof socket !== 'string') return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(socket);
    };
    child.on('message', onMessage);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new InvocationError(502, `instance ${child.pid} exited while starting`));
    });
  });
}

/** Longest unix socket path on every supported system: macOS's holds 104 bytes with its NUL (Linux's 108). */
const SOCKET_PATH_BYTES = 103;
/** Random bytes in a socket's name (written in hex). */
const SOCKET_NAME_BYTES = 6;

/**
 * Where the socket folders go: the temporary folder, unless a socket's path in it would be too
 * long for a socket address (a deep TMPDIR), then /tmp. macOS's per-user one (/var/folders/…/T)
 * leaves room, with the sockets' short names.
 */
export function socketFolderParent(temporary = tmpdir()): string {
  const longest = join(temporary, `fn-sockets-${'9'.repeat(10)}-XXXXXX`, `${'f'.repeat(SOCKET_NAME_BYTES * 2)}.sock`);
  return Buffer.byteLength(longest) <= SOCKET_PATH_BYTES ? temporary : '/tmp';
}

/** Socket folders of gateways that died without stopping (SIGKILL): named by their pid. */
function removeStaleSocketDirs(parent: string): void {
  for (const name of readdirSync(parent)) {
    const pid = Number(/^fn-sockets-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') continue;
      // Another user's leftovers (root's, on a shared machine) are theirs to remove.
      try {
        rmSync(join(parent, name), { recursive: true, force: true });
      } catch {
        // not ours
      }
    }
  }
}
