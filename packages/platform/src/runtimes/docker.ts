import { PassThrough } from 'node:stream';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { INVOKE_TOKEN_ENV, type FunctionResponse, type Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { newInvokeToken, type Instance, type Runtime, type RuntimeOptions } from './runtime.js';
import { goneOwners, type OwnerAlive } from './controller-id.js';
import { functionEnv, functionSecrets } from './function-env.js';
import { containerLockdown, declaredImage, lockdown } from './lockdown.js';
import { FunctionLogs } from './logs.js';
import { waitForHealth } from './net.js';
import { InvocationError } from '../errors.js';
import { LABELS } from '../labels.js';

/** Every container the gateway starts carries this label, so leftovers can be found and removed. */
export const MANAGED_LABEL = LABELS.managedBy;
const FUNCTION_LABEL = LABELS.function;
const PORT = 8080;
/** Where the function kits read secrets first, as Swarm puts them: files, never variables (`docker inspect` shows those). */
const SECRETS_PATH = '/run/secrets';

export interface DockerRuntimeOptions extends RuntimeOptions {
  docker?: Docker;
  /** The network function containers join: the one thing they can reach. */
  network: string;
  /** This controller's id (see newControllerId): its containers carry it, apart from other controllers' on the same engine. */
  owner: string;
  /** Whether another owner still runs; its containers are left alone unless this says it is gone. Default: all alive. */
  isOwnerAlive?: OwnerAlive;
}

interface ContainerInstance extends Instance {
  container: Docker.Container;
}

/**
 * Functions as containers started through the Docker Engine API: one container per one-shot
 * call, or warm containers reused until idle. Only the image a manifest names ever runs, with
 * the command, user, mounts and network fixed here: a request chooses none of them.
 */
export class DockerRuntime implements Runtime {
  readonly kind = 'docker';
  private readonly docker: Docker;
  private readonly live = new Set<Docker.Container>();
  private readonly lines: FunctionLogs;

  constructor(private readonly options: DockerRuntimeOptions) {
    this.docker = options.docker ?? new Docker();
    this.lines = new FunctionLogs(undefined, options.formatLogLine);
  }

  private image(fn: FunctionSpec): string {
    return declaredImage(fn);
  }

  async deploy(fn: FunctionSpec): Promise<void> {
    try {
      await this.docker.getImage(this.image(fn)).inspect();
    } catch {
      throw new Error(`function ${fn.name}: image ${this.image(fn)} is not on the Docker Engine; build it with \`pnpm images\``);
    }
  }

  /**
   * Removes the containers of owners that are gone (a controller that crashed, as `isOwnerAlive`
   * tells) and those of this owner that it no longer runs. Another owner's containers stay as long
   * as it may be alive: two controllers on one engine never remove each other's live instances.
   */
  async removeLeftovers(): Promise<number> {
    const found = await this.docker.listContainers({ all: true, filters: { label: [MANAGED_LABEL] } });
    const mine = new Set([...this.live].map((c) => c.id));
    const gone = goneOwners(this.options.owner, this.options.isOwnerAlive);
    const leftovers = [];
    for (const c of found) if (!mine.has(c.Id) && (await gone(c.Labels[MANAGED_LABEL]))) leftovers.push(c);
    await Promise.all(
      leftovers.map((c) =>
        this.docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => {}),
      ),
    );
    return leftovers.length;
  }

  /** Locked down (lockdown.ts), on the configured network only. */
  private containerSpec(fn: FunctionSpec, settings: Record<string, string>, oneShot: boolean): Docker.ContainerCreateOptions {
    const name = `fn-${fn.name}-${randomBytes(4).toString('hex')}`;
    const env = functionEnv(fn, this.options, { FN_INSTANCE: name, ...settings }, { includeSecrets: false });
    const locked = containerLockdown(fn);
    // Secrets go in an unnamed volume of the container's own (removed with it), filled before it starts.
    const secrets: Docker.MountSettings[] = fn.secrets.length > 0 ? [{ Type: 'volume', Source: '', Target: SECRETS_PATH }] : [];
    return {
      name,
      Image: this.image(fn),
      Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
      Labels: { [MANAGED_LABEL]: this.options.owner, [FUNCTION_LABEL]: fn.name },
      AttachStdin: oneShot,
      AttachStdout: oneShot,
      AttachStderr: oneShot,
      OpenStdin: oneShot,
      StdinOnce: oneShot,
      ...locked,
      HostConfig: { ...locked.HostConfig, NetworkMode: this.options.network, Mounts: secrets },
    };
  }

  /**
   * The function's secrets as files in its secrets volume, readable by its user only. Written into
   * the volume through the Engine (not a folder of this host), so it works as well when this
   * process runs in a container itself; the read-only root file system does not cover volumes.
   */
  private async putSecrets(fn: FunctionSpec, container: Docker.Container): Promise<void> {
    if (fn.secrets.length === 0) return;
    const [uid, gid] = lockdown.user.split(':').map(Number) as [number, number];
    await container.putArchive(tarOf(functionSecrets(fn, this.options), { uid, gid, mode: 0o400 }), { path: SECRETS_PATH });
  }

  async runOnce(fn: FunctionSpec, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    const container = await this.docker.createContainer(this.containerSpec(fn, { FN_MODE: 'oneshot' }, true));
    this.live.add(container);
    const kill = () => void container.kill().catch(() => {});
    signal.addEventListener('abort', kill, { once: true });
    try {
      await this.putSecrets(fn, container);
      const stream = await container.attach({ stream: true, hijack: true, stdin: true, stdout: true, stderr: true });
      const stdout = new PassThrough();
      const chunks: Buffer[] = [];
      stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
      const stderr = this.lines.sink(fn.name, container.id.slice(0, 12));
      this.docker.modem.demuxStream(stream, stdout, stderr);
      stream.once('end', () => stderr.end());
      const ended = new Promise<void>((resolve) => stream.once('end', resolve));
      await container.start();
      stream.end(JSON.stringify(invocation));
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      await Promise.race([ended, new Promise((r) => setTimeout(r, 1_000))]);
      if (signal.aborted) throw signal.reason;
      if (StatusCode !== 0) throw new InvocationError(502, `function ${fn.name} exited with ${StatusCode} before answering`);
      try {
        return JSON.parse(Buffer.concat(chunks).toString('utf8')) as FunctionResponse;
      } catch {
        throw new InvocationError(502, `function ${fn.name} wrote no valid response`);
      }
    } finally {
      signal.removeEventListener('abort', kill);
      this.live.delete(container);
      await container.remove({ force: true, v: true }).catch(() => {});
    }
  }

  async startInstance(fn: FunctionSpec): Promise<Instance> {
    const invokeToken = newInvokeToken();
    const settings = {
      FN_MODE: 'warm',
      [INVOKE_TOKEN_ENV]: invokeToken,
      PORT: String(PORT),
      FN_HOST: '0.0.0.0',
      FN_MAX_INFLIGHT: String(fn.maxConcurrency),
      FN_DRAIN_SECONDS: String(fn.timeoutSeconds),
    };
    const container = await this.docker.createContainer(this.containerSpec(fn, settings, false));
    this.live.add(container);
    const id = container.id.slice(0, 12);
    try {
      await this.putSecrets(fn, container);
      await container.start();
      const info = await container.inspect();
      const address = Object.values(info.NetworkSettings.Networks)[0]?.IPAddress;
      if (!address) throw new InvocationError(502, `container ${id} has no address on network ${this.options.network}`);
      const exited = container.wait().then(
        () => undefined,
        () => undefined,
      );
      const url = `http://${address}:${PORT}`;
      const name = info.Name.replace(/^\//, '');
      void this.followLogs(fn.name, name, container);
      await waitForHealth(url, exited, fn.timeoutSeconds * 1000 + 10_000);
      const instance: ContainerInstance = { id: name, url, invokeToken, exited, container };
      void exited.then(() => this.forget(container));
      return instance;
    } catch (error) {
      await this.forget(container);
      throw error;
    }
  }

  async stopInstance(instance: Instance, how: 'drain' | 'kill'): Promise<void> {
    const { container } = instance as ContainerInstance;
    if (how === 'drain') await container.stop({ t: 30 }).catch(() => {});
    else await container.kill().catch(() => {});
    await instance.exited;
    await this.forget(container);
  }

  logs(fn: string, tail: number) {
    return this.lines.tail(fn, tail);
  }

  /** A warm container's output, line by line, into the logs (and the gateway's output) until it stops. */
  private async followLogs(fn: string, instance: string, container: Docker.Container): Promise<void> {
    try {
      const stream = await container.logs({ follow: true, stdout: true, stderr: true });
      const sink = this.lines.sink(fn, instance);
      this.docker.modem.demuxStream(stream, sink, sink);
      stream.once('end', () => sink.end());
    } catch {
      // The container is already gone: nothing more to read.
    }
  }

  private async forget(container: Docker.Container): Promise<void> {
    this.live.delete(container);
    await container.remove({ force: true, v: true }).catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.live].map((c) =>
        c
          .stop({ t: 10 })
          .catch(() => {})
          .then(() => this.forget(c)),
      ),
    );
  }
}

/** A tar archive of files at its top, all of one owner and mode (tar-stream, as dockerode's own contexts). */
function tarOf(files: Record<string, string>, { uid, gid, mode }: { uid: number; gid: number; mode: number }): NodeJS.ReadableStream {
  const pack = tar.pack();
  for (const [name, text] of Object.entries(files)) pack.entry({ name, mode, uid, gid }, text);
  pack.finalize();
  return pack;
}
