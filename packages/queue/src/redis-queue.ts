// Queue on Redis Streams. Keys, for a queue named N:
//   N              stream of messages not yet acknowledged; consumer group "workers" reads it
//   N:retry        sorted set: message id -> when its retry is due (ms, Redis clock)
//   N:retry:msg    hash: message id -> the message's stream fields, JSON
//   N:dead         stream of dead letters
// An acknowledged entry is XDEL'ed, so XLEN + ZCARD is the depth. A retry is re-added as a new
// entry that carries the original id, attempt and enqueue time in its fields.
import { createClient } from 'redis';
import type { BatchHandler, ConsumeOptions, Consumer, Queue, QueuedMessage, QueueOptions, ResolvedQueueOptions } from './queue.js';
import { RELEASED_ERROR, resolveQueueOptions, retryDelayMs, VISIBILITY_TIMEOUT_ERROR } from './queue.js';
import { checkConsumeOptions, runConsumer, type Delivery, type FailedDelivery, type MessageSource, type RunningConsumer } from './runner.js';
import { sleep, toError } from './util.js';

type RedisClient = ReturnType<typeof createClient>;

const GROUP = 'workers';

// Ack-or-reschedule in one step. XACK answering 0 means another consumer reclaimed the entry
// (or it was settled already): then this late failure must not schedule a second copy.
// KEYS: stream, retry zset, retry hash, dead stream.
// ARGV: group, entry id, message id, body, failed attempt, enqueued at, error, delay ms, dead?
const FAIL_SCRIPT = `
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
local next_attempt = tostring(tonumber(ARGV[5]) + 1)
if ARGV[9] == '1' then
  redis.call('XADD', KEYS[4], '*', 'id', ARGV[3], 'body', ARGV[4], 'attempt', ARGV[5], 'enq', ARGV[6], 'error', ARGV[7])
elseif tonumber(ARGV[8]) <= 0 then
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[3], 'body', ARGV[4], 'attempt', next_attempt, 'enq', ARGV[6])
else
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[8])
  redis.call('HSET', KEYS[3], ARGV[3], cjson.encode({'id', ARGV[3], 'body', ARGV[4], 'attempt', next_attempt, 'enq', ARGV[6]}))
  redis.call('ZADD', KEYS[2], due, ARGV[3])
end
return 1
`;

// Moves retries that are due back into the stream; answers ms until the next one (-1: none).
// KEYS: retry zset, retry hash, stream. ARGV: most to move.
const MOVE_DUE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  local fields = redis.call('HGET', KEYS[2], id)
  if fields then redis.call('XADD', KEYS[3], '*', unpack(cjson.decode(fields))) end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then return math.max(0, tonumber(first[2]) - now) end
return -1
`;

type Keys = { stream: string; retry: string; retryMsg: string; dead: string };

/** A delivery's attempt failed: back to the stream after `delayMs`, or to the dead letters after the last. */
function failEntry(
  client: RedisClient,
  keys: Keys,
  options: ResolvedQueueOptions,
  delivery: Delivery<string>,
  error: string,
  delayMs: number,
  final = false,
): Promise<unknown> {
  const { message } = delivery;
  const dead = final || message.attempt >= options.maxAttempts;
  return client.eval(FAIL_SCRIPT, {
    keys: [keys.stream, keys.retry, keys.retryMsg, keys.dead],
    arguments: [GROUP, delivery.ref, message.id, message.body, String(message.attempt), String(message.enqueuedAt), error, String(delayMs), dead ? '1' : '0'],
  });
}

interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

/** A stream entry as a message: first deliveries carry only `body`, retries carry the rest. */
function toMessage(entry: StreamEntry): QueuedMessage {
  const fields = entry.message;
  return {
    id: fields.id ?? entry.id,
    body: fields.body ?? '',
    attempt: fields.attempt ? Number(fields.attempt) : 1,
    // An entry id starts with the ms the server stored it at.
    enqueuedAt: Number(fields.enq ?? entry.id.split('-')[0]),
  };
}

export class RedisQueue implements Queue {
  private readonly options: ResolvedQueueOptions;
  private readonly client: RedisClient;
  private readonly ready: Promise<unknown>;
  private readonly consumers = new Set<RunningConsumer>();
  private readonly keys: { stream: string; retry: string; retryMsg: string; dead: string };
  private closing = false;

  get maxAttempts(): number {
    return this.options.maxAttempts;
  }

  constructor(url: string, options: QueueOptions = {}) {
    this.options = resolveQueueOptions(options);
    const name = this.options.name;
    this.keys = { stream: name, retry: `${name}:retry`, retryMsg: `${name}:retry:msg`, dead: `${name}:dead` };
    this.client = createClient({ url });
    this.client.on('error', (error: unknown) => this.options.onError(toError(error)));
    this.ready = this.client.connect();
    // Commands wait for the connection; this only keeps a failed first connect from going unhandled.
    this.ready.catch(() => {});
  }

  async enqueue(body: string): Promise<string> {
    await this.ready;
    return this.client.xAdd(this.keys.stream, '*', { body });
  }

  async enqueueMany(bodies: string[]): Promise<string[]> {
    if (bodies.length === 0) return [];
    await this.ready;
    const multi = this.client.multi();
    for (const body of bodies) multi.xAdd(this.keys.stream, '*', { body });
    const ids = await multi.exec();
    return ids.map((id) => String(id));
  }

  async depth(): Promise<number> {
    await this.ready;
    const [stream, retries] = await this.client.multi().xLen(this.keys.stream).zCard(this.keys.retry).exec();
    return Number(stream) + Number(retries);
  }

  async deadLetters(limit = 100): Promise<Array<QueuedMessage & { error: string }>> {
    await this.ready;
    const entries = (await this.client.xRange(this.keys.dead, '-', '+', { COUNT: limit })) as StreamEntry[];
    return entries.map((entry) => ({ ...toMessage(entry), error: entry.message.error ?? '' }));
  }

  async release(consumer: string): Promise<number> {
    await this.ready;
    let released = 0;
    for (;;) {
      const pending = (await this.client.xPendingRange(this.keys.stream, GROUP, '-', '+', 100, { consumer }).catch((error: unknown) => {
        if (/NOGROUP/.test(toError(error).message)) return [];
        throw error;
      })) as Array<{ id: string }>;
      if (pending.length === 0) return released;
      // XACK in the failure script takes the entry from whichever consumer holds it.
      const entries = await Promise.all(pending.map(async ({ id }) => ((await this.client.xRange(this.keys.stream, id, id)) as StreamEntry[])[0]));
      await Promise.all(
        pending.map(({ id }, i) => {
          const entry = entries[i];
          // Settled meanwhile (acknowledged and deleted): only its pending record is left.
          if (!entry) return this.client.xAck(this.keys.stream, GROUP, id);
          released++;
          return failEntry(this.client, this.keys, this.options, { message: toMessage(entry), ref: id }, RELEASED_ERROR, 0);
        }),
      );
    }
  }

  consume(handler: BatchHandler, options: ConsumeOptions): Consumer {
    if (this.closing) throw new Error('queue is closed');
    checkConsumeOptions(options);
    const consumer = runConsumer(new RedisSource(this.client, this.ready, this.keys, this.options, options.consumer), handler, options, this.options.onError);
    this.consumers.add(consumer);
    return {
      stop: async () => {
        await consumer.stop();
        this.consumers.delete(consumer);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.all([...this.consumers].map((c) => c.stop(this.options.visibilityTimeoutMs)));
    this.consumers.clear();
    await this.ready.catch(() => {});
    if (this.client.isOpen) await this.client.close();
  }
}

/** One consumer's view of the stream: a blocking connection of its own, plus upkeep on a timer. */
class RedisSource implements MessageSource<string> {
  private blocking: RedisClient | undefined;
  private blockingId: number | undefined;
  private reading: Promise<unknown> | undefined;
  private stopped = false;
  private groupReady = false;
  private upkeepTimer: NodeJS.Timeout | undefined;
  private upkeepAt = 0;
  private upkeepAgainAt = Infinity;
  private upkeepRunning = false;
  private lastReclaim = 0;

  constructor(
    private readonly client: RedisClient,
    private readonly ready: Promise<unknown>,
    private readonly keys: { stream: string; retry: string; retryMsg: string; dead: string },
    private readonly options: ResolvedQueueOptions,
    private readonly consumer: string,
  ) {
    this.scheduleUpkeep(0);
  }

  async fetch(max: number): Promise<Array<Delivery<string>>> {
    await this.ready;
    if (!this.groupReady) await this.createGroup();
    const blocking = await this.blockingClient();
    if (this.stopped) return [];
    const read = blocking.xReadGroup(GROUP, this.consumer, { key: this.keys.stream, id: '>' }, { COUNT: max, BLOCK: 5_000 });
    this.reading = read.catch(() => {});
    let reply: Awaited<typeof read>;
    try {
      reply = await read;
    } catch (error) {
      // The group goes missing if the key was deleted; anything else may mean a new connection.
      if (/NOGROUP/.test(toError(error).message)) this.groupReady = false;
      this.blockingId = undefined;
      throw error;
    } finally {
      this.reading = undefined;
    }
    const streams = (reply ?? []) as Array<{ messages: Array<StreamEntry | null> }>;
    return streams.flatMap((s) => s.messages).flatMap((entry) => (entry ? [{ message: toMessage(entry), ref: entry.id }] : []));
  }

  interrupt(): void {
    this.stopped = true;
    clearTimeout(this.upkeepTimer);
    void this.unblock();
  }

  /** CLIENT UNBLOCK ends a blocked XREADGROUP as if it timed out; retried in case it is not blocked yet. */
  private async unblock(): Promise<void> {
    for (let i = 0; i < 40 && this.reading; i++) {
      if (this.blockingId !== undefined) await this.client.clientUnblock(this.blockingId).catch(() => 0);
      await Promise.race([this.reading, sleep(25)]);
    }
    if (this.reading) this.blocking?.destroy();
  }

  async settle(acked: Array<Delivery<string>>, failed: Array<FailedDelivery<string>>): Promise<void> {
    const work: Array<Promise<unknown>> = [];
    if (acked.length > 0) {
      const entryIds = acked.map((d) => d.ref);
      work.push(this.client.multi().xAck(this.keys.stream, GROUP, entryIds).xDel(this.keys.stream, entryIds).exec());
    }
    let soonest = Infinity;
    for (const { delivery, error, final } of failed) {
      const delay = retryDelayMs(delivery.message.attempt, this.options.retryBackoffMs);
      if (!final) soonest = Math.min(soonest, delay);
      work.push(failEntry(this.client, this.keys, this.options, delivery, error, delay, final));
    }
    await Promise.all(work);
    // Move our own retries in when they come due rather than at the next regular upkeep.
    if (soonest < Infinity) this.scheduleUpkeep(soonest);
  }

  private fail(delivery: Delivery<string>, error: string, delayMs: number): Promise<unknown> {
    return failEntry(this.client, this.keys, this.options, delivery, error, delayMs);
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.upkeepTimer);
    const blocking = this.blocking;
    this.blocking = undefined;
    if (blocking?.isOpen) await blocking.close().catch(() => blocking.destroy());
  }

  private async createGroup(): Promise<void> {
    try {
      // From id 0, so messages enqueued before the first consumer ever started are read too.
      await this.client.xGroupCreate(this.keys.stream, GROUP, '0', { MKSTREAM: true });
    } catch (error) {
      if (!/BUSYGROUP/.test(toError(error).message)) throw error;
    }
    this.groupReady = true;
  }

  private async blockingClient(): Promise<RedisClient> {
    if (!this.blocking) {
      const blocking = this.client.duplicate();
      blocking.on('error', (error: unknown) => this.options.onError(toError(error)));
      this.blocking = blocking;
      await blocking.connect();
    }
    // Needed by CLIENT UNBLOCK; asked again after an error in case the connection was replaced.
    this.blockingId ??= await this.blocking.clientId();
    return this.blocking;
  }

  /** Upkeep: move due retries into the stream, and reclaim entries whose consumer went quiet. */
  private scheduleUpkeep(delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    if (this.upkeepRunning) {
      this.upkeepAgainAt = Math.min(this.upkeepAgainAt, at);
      return;
    }
    if (this.upkeepTimer && this.upkeepAt <= at) return;
    clearTimeout(this.upkeepTimer);
    this.upkeepAt = at;
    this.upkeepTimer = setTimeout(() => {
      this.upkeepTimer = undefined;
      void this.upkeep();
    }, delayMs);
  }

  private async upkeep(): Promise<void> {
    this.upkeepRunning = true;
    let next = this.options.pollIntervalMs;
    try {
      await this.ready;
      if (!this.groupReady) await this.createGroup();
      const untilDue = Number(await this.client.eval(MOVE_DUE_SCRIPT, { keys: [this.keys.retry, this.keys.retryMsg, this.keys.stream], arguments: ['500'] }));
      if (untilDue >= 0) next = Math.min(next, untilDue);
      // Reclaiming twice per visibility timeout keeps redelivery within 1.5 timeouts.
      const reclaimEvery = Math.min(this.options.pollIntervalMs, this.options.visibilityTimeoutMs / 2);
      if (Date.now() - this.lastReclaim >= reclaimEvery) {
        this.lastReclaim = Date.now();
        await this.reclaim();
      }
      next = Math.min(next, reclaimEvery);
    } catch (error) {
      if (!this.stopped) this.options.onError(new Error(`queue upkeep failed: ${toError(error).message}`));
    } finally {
      this.upkeepRunning = false;
    }
    const again = this.upkeepAgainAt - Date.now();
    this.upkeepAgainAt = Infinity;
    this.scheduleUpkeep(Math.max(0, Math.min(next, again)));
  }

  /**
   * Takes over entries idle longer than the visibility timeout and treats each as a failed
   * attempt: it goes back to the stream at once with attempt+1, or to the dead letters.
   */
  private async reclaim(): Promise<void> {
    let start = '0-0';
    do {
      const result = await this.client.xAutoClaim(this.keys.stream, GROUP, this.consumer, this.options.visibilityTimeoutMs, start, {
        COUNT: 100,
      });
      start = String(result.nextId);
      const entries = (result.messages as unknown as Array<StreamEntry | null>).filter((m) => m !== null);
      await Promise.all(entries.map((entry) => this.fail({ message: toMessage(entry), ref: entry.id }, VISIBILITY_TIMEOUT_ERROR, 0)));
    } while (start !== '0-0' && !this.stopped);
  }
}
