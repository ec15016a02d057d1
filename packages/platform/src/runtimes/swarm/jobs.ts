import type Docker from 'dockerode';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { InvocationError } from '../../errors.js';
import type { JobDesk } from './job-desk.js';
import type { ServiceSpec } from './spec.js';
import { hasEnded, listTasks, removeTaskContainers, sleep } from './tasks.js';

export interface JobContext {
  docker: Docker;
  desk: JobDesk;
  nodeId(): string | undefined;
  closed(): boolean;
}

/**
 * One-shot calls, a `replicated-job` service each. Having no stdin, the job's task fetches its
 * invocation from this process's desk and posts the response back there (FN_INVOCATION_URL),
 * so the answer reaches the process that waits for it. The job's service and its finished
 * container are removed once the call is over, whatever its outcome.
 */
export class Jobs {
  /** The job services of calls in flight in this process. */
  readonly running = new Set<string>();

  constructor(private readonly context: JobContext) {}

  /** Runs one call; `spec` builds the job's service for the desk's URL and token. */
  async run(
    fn: FunctionSpec,
    invocation: Invocation,
    signal: AbortSignal,
    spec: (job: { token: string; invocationUrl: string }) => Promise<ServiceSpec>,
  ): Promise<FunctionResponse> {
    const { docker } = this.context;
    const job = await this.context.desk.open(invocation);
    let serviceId: string | undefined;
    try {
      const service = await spec({ token: job.token, invocationUrl: job.url });
      serviceId = ((await docker.createService(service as unknown as Docker.CreateServiceOptions)) as { id?: string; ID?: string }).id;
      serviceId ??= service.Name;
      this.running.add(serviceId);
      const aborted = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      return await Promise.race([job.answered, aborted, this.failure(fn, serviceId, job.answered, signal)]);
    } finally {
      job.close();
      if (serviceId) {
        this.running.delete(serviceId);
        await this.remove(serviceId);
      }
    }
  }

  /** Removes the job services of this process's calls in flight (which can no longer be answered). */
  async close(): Promise<void> {
    await Promise.all([...this.running].map((id) => this.remove(id)));
  }

  private async remove(serviceId: string): Promise<void> {
    const { docker } = this.context;
    const tasks = await listTasks(docker, serviceId).catch(() => []);
    await docker
      .getService(serviceId)
      .remove()
      .catch(() => {});
    await removeTaskContainers(docker, tasks, this.context.nodeId());
  }

  /** Rejects when the job's task ends without having answered. */
  private async failure(fn: FunctionSpec, serviceId: string, answered: Promise<unknown>, signal: AbortSignal): Promise<never> {
    let done = false;
    void answered.then(() => (done = true));
    for (let delay = 50; !done && !signal.aborted && !this.context.closed(); delay = Math.min(delay * 2, 250)) {
      await sleep(delay);
      if (done) break;
      const tasks = await listTasks(this.context.docker, serviceId).catch(() => []);
      const ended = tasks.find(hasEnded);
      if (ended) {
        await Promise.race([answered, sleep(500)]);
        if (done) break;
        const code = ended.Status.ContainerStatus?.ExitCode;
        throw new InvocationError(
          502,
          `function ${fn.name} ${ended.Status.State}${code !== undefined ? ` with ${code}` : ''} before answering${ended.Status.Err ? `: ${ended.Status.Err}` : ''}`,
        );
      }
    }
    return new Promise<never>(() => {});
  }
}
