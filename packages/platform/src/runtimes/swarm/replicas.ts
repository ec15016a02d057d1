import type Docker from 'dockerode';
import { sleep } from './tasks.js';

interface ServiceInfo {
  Version: { Index: number };
  Spec: Record<string, unknown> & { Mode: { Replicated?: { Replicas: number } } };
}

/**
 * The replica count of one warm service, the one thing of its spec this runtime changes after
 * deploy. Writes are queued, one at a time, and each writes the count wanted when it runs (the
 * last one wins). Each reads the service's Version index just before and sends it with the
 * update, so a write never undoes someone else's change to the rest of the spec; when the
 * service changed in between ("update out of sequence") it reads again.
 */
export class Replicas {
  /** The replicas wanted now. */
  desired = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly docker: Docker,
    private readonly service: string,
    private readonly stopped: () => boolean,
    private readonly log?: (message: string) => void,
  ) {}

  /** Sets the service's replicas to `desired`; settles once written (or given up on, logged). */
  write(): Promise<void> {
    this.queue = this.queue.then(() => this.writeNow());
    return this.queue;
  }

  private async writeNow(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const service = this.docker.getService(this.service);
        const info = (await service.inspect()) as ServiceInfo;
        if (info.Spec.Mode.Replicated?.Replicas === this.desired) return;
        await service.update({ version: info.Version.Index, ...info.Spec, Mode: { Replicated: { Replicas: this.desired } } });
        return;
      } catch (error) {
        if (attempt >= 5 || this.stopped()) {
          this.log?.(`could not scale ${this.service} to ${this.desired}: ${(error as Error).message}`);
          return;
        }
        await sleep(50);
      }
    }
  }
}
