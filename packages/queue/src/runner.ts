// The part of consuming that does not depend on the store: batches, concurrency, turning a
// handler's outcome into acks and failures, and stopping. Adapters supply a MessageSource.
import type { BatchHandler, Consumer, ConsumeOptions, QueuedMessage } from './queue.js';
import { sleep, toError } from './util.js';

export interface Delivery<Ref> {
  message: QueuedMessage;
  /** What the store needs to ack or fail this delivery (e.g. the Redis stream entry id). */
  ref: Ref;
}

export interface FailedDelivery<Ref> {
  delivery: Delivery<Ref>;
  error: string;
  /** To the dead letters now, whatever attempts are left. */
  final: boolean;
}

export interface MessageSource<Ref> {
  /** Up to `max` deliveries; may wait a while for messages and returns [] if none came. */
  fetch(max: number): Promise<Array<Delivery<Ref>>>;
  /** Makes a waiting fetch return soon (called on stop). */
  interrupt(): void;
  settle(acked: Array<Delivery<Ref>>, failed: Array<FailedDelivery<Ref>>): Promise<void>;
  /** Releases the source's own connections, after the last settle. */
  close(): Promise<void>;
}

export interface RunningConsumer extends Consumer {
  /** Like stop(), but gives up on handler calls still running after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Called by adapters before they open anything for a consumer. */
export function checkConsumeOptions(options: ConsumeOptions): { batchSize: number; concurrency: number; gatherMs: number } {
  const batchSize = options.batchSize ?? 100;
  const concurrency = options.concurrency ?? 4;
  const gatherMs = options.gatherMs ?? 20;
  if (!(batchSize >= 1) || !(concurrency >= 1)) throw new Error('batchSize and concurrency must be at least 1');
  if (!(gatherMs >= 0)) throw new Error('gatherMs must be 0 or more');
  if (!options.consumer) throw new Error('consume needs a consumer name');
  return { batchSize, concurrency, gatherMs };
}

/** How long a failed settle (ack or failure of a batch) is retried before leaving it to redelivery. */
const SETTLE_RETRY_MS = 15_000;

export function runConsumer<Ref>(source: MessageSource<Ref>, handler: BatchHandler, options: ConsumeOptions, onError: (error: Error) => void): RunningConsumer {
  const { batchSize, concurrency, gatherMs } = checkConsumeOptions(options);

  let stopping = false;
  let abandoned = false;
  let requestStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const inFlight = new Set<Promise<void>>();

  async function handle(batch: Array<Delivery<Ref>>): Promise<void> {
    let failedIds: Map<string, { error: string; final: boolean }>;
    try {
      const outcome = await handler(batch.map((d) => d.message));
      failedIds = new Map((outcome?.failed ?? []).map((f) => [f.id, { error: f.error, final: f.final === true }]));
    } catch (error) {
      const failure = { error: toError(error).message, final: false };
      failedIds = new Map(batch.map((d) => [d.message.id, failure]));
    }
    // Given up on at close: the store redelivers these after the visibility timeout.
    if (abandoned) return;
    const acked = batch.filter((d) => !failedIds.has(d.message.id));
    const failed = batch.flatMap((d) => {
      const failure = failedIds.get(d.message.id);
      return failure === undefined ? [] : [{ delivery: d, ...failure }];
    });
    // The store may be down for a while (a restart): settling is retried, since a batch left
    // unsettled waits for the visibility timeout before anyone gets it again. Settling twice
    // is harmless: both adapters only act on the delivery they handed out.
    const began = Date.now();
    for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
      try {
        await source.settle(acked, failed);
        return;
      } catch (error) {
        if (stopping || abandoned || Date.now() - began > SETTLE_RETRY_MS) {
          onError(new Error(`could not settle a batch of ${batch.length} (it will be redelivered): ${toError(error).message}`));
          return;
        }
        await Promise.race([stopRequested, sleep(delay)]);
      }
    }
  }

  const loop = (async () => {
    let errorDelay = 100;
    /** The last fetch filled its batch: messages are waiting, fetch again at once. */
    let backlog = true;
    while (!stopping) {
      if (inFlight.size >= concurrency) {
        await Promise.race([...inFlight, stopRequested]);
        continue;
      }
      // Messages coming one at a time while a batch is being handled: the next fetch waits for that
      // batch to end (or gatherMs) and takes together what came meanwhile, one fetch, one handler
      // call and one settle for several. With nothing in flight, a message is fetched at once.
      if (!backlog && inFlight.size > 0 && gatherMs > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([...inFlight, stopRequested, new Promise((resolve) => (timer = setTimeout(resolve, gatherMs)))]);
        clearTimeout(timer);
      }
      let batch: Array<Delivery<Ref>>;
      try {
        batch = await source.fetch(batchSize);
        backlog = batch.length >= batchSize;
        errorDelay = 100;
      } catch (error) {
        if (stopping) break;
        onError(new Error(`consumer ${options.consumer}: fetching failed: ${toError(error).message}`));
        await Promise.race([stopRequested, sleep(errorDelay)]);
        errorDelay = Math.min(errorDelay * 2, 5_000);
        continue;
      }
      // A batch fetched while stopping is still handled: it is already delivered to us.
      if (batch.length === 0) continue;
      const running: Promise<void> = handle(batch).finally(() => inFlight.delete(running));
      inFlight.add(running);
    }
  })();

  // Everything fetched is handled and settled (inFlight gets no new entries once the loop ended).
  const drained = loop.then(() => Promise.all(inFlight)).then(() => undefined);
  let closed: Promise<void> | undefined;

  return {
    async stop(graceMs = Infinity) {
      if (!stopping) {
        stopping = true;
        requestStop();
        source.interrupt();
      }
      if (Number.isFinite(graceMs)) {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([drained.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, graceMs, true)))]);
        clearTimeout(timer);
        if (timedOut) abandoned = true;
      } else {
        await drained;
      }
      closed ??= source.close();
      await closed;
    },
  };
}
