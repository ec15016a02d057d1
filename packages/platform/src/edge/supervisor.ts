import cluster, { type Worker } from 'node:cluster';
import { stickyBalancer } from './sticky.js';

export interface EdgeSupervisor {
  /** Resolves once every edge has started (or rejects if one failed to start). */
  ready: Promise<void>;
  /** Stops the edges (each drains its calls), then resolves. */
  stop(signal: NodeJS.Signals): Promise<void>;
}

/**
 * In the primary process: runs `count` edge processes (this same program, `cluster.fork`) behind
 * the sticky balancer on the given ports, and starts a new one when one dies, however it died.
 * An edge says it is ready with the message `{ type: 'platform:ready' }`.
 */
export function superviseEdges({
  count,
  ports,
  env,
  log,
  onExit = () => {},
}: {
  count: number;
  ports: Array<{ name: string; port: number; host: string }>;
  /** The edges' environment over the primary's: the shared secrets, the controller token among them (edges only, never functions). */
  env: Record<string, string>;
  log: { info(message: string): void; warn(message: string): void };
  /** Called with the pid of an edge that exited, however it died (e.g. to release the calls it held). */
  onExit?: (pid: number) => void;
}): EdgeSupervisor {
  const workers = new Set<Worker>();
  /** Edges that said they are ready: only they are handed connections (a new one is still starting). */
  const serving = new Set<Worker>();
  const balancer = stickyBalancer(ports, () => [...serving]);
  let stopping = false;
  let failures = 0;
  const fork = (): Promise<void> => {
    const worker = cluster.fork(env);
    workers.add(worker);
    balancer.follow(worker);
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (message: { type?: string }) => {
        if (message?.type === 'platform:ready') {
          failures = 0;
          serving.add(worker);
          resolve();
        }
      });
      worker.once('exit', (code, signal) => reject(new Error(`edge ${worker.process.pid} exited during start-up (${signal ?? code})`)));
    });
    worker.once('exit', (code, signal) => {
      workers.delete(worker);
      serving.delete(worker);
      balancer.forget(worker);
      if (worker.process.pid !== undefined) onExit(worker.process.pid);
      if (stopping) return;
      // A crash loop would spin: wait longer after each failure in a row, up to 5 s.
      const wait = Math.min(5_000, 250 * 2 ** failures++);
      log.warn(`edge ${worker.process.pid} exited (${signal ?? code}); starting a new one in ${wait} ms`);
      setTimeout(() => {
        if (!stopping) fork().catch((error: Error) => log.warn(error.message));
      }, wait);
    });
    return ready;
  };
  const ready = (async () => {
    await Promise.all(Array.from({ length: count }, fork));
    await balancer.listen();
  })();
  return {
    ready,
    async stop(signal) {
      stopping = true;
      balancer.close();
      const exited = [...workers].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
      for (const worker of workers) worker.process.kill(signal);
      await Promise.all(exited);
    },
  };
}
