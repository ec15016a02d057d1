import { performance } from 'node:perf_hooks';
import type { Server as SocketServer } from 'socket.io';
import type { Logger } from 'pino';
import type { EventBus } from '@platform/queue';
import type { FunctionPool } from './pool.js';

/**
 * A live channel: when `topic` fires on the event bus, the gateway asks `source` for the
 * current state and emits its body as `event` to every socket.io client. Bursts are
 * coalesced to at most one refresh per `intervalMs` (longer when sending to every client takes
 * long: fewer updates, each the latest); new clients get the last state at once. While no
 * client is connected the source is not asked: the first client to come brings a refresh.
 */
export interface Channel {
  event: string;
  topic: string;
  source: string;
  intervalMs?: number;
}

/** After a failed refresh, the next one comes this much later even if no event asks for it. */
const RETRY_MS = 1_000;
/**
 * Sending to every client may take at most this share of the time: with many clients the
 * refreshes space out (each still the latest state), so that votes keep their CPU.
 */
const MAX_SEND_SHARE = 0.5;

export async function startChannel(
  channel: Channel,
  { events, pools, sockets, log }: { events: EventBus; pools: Map<string, FunctionPool>; sockets: SocketServer[]; log: Logger },
): Promise<() => Promise<void>> {
  const pool = pools.get(channel.source);
  if (!pool) throw new Error(`channel "${channel.event}": source function "${channel.source}" does not exist`);
  const baseInterval = channel.intervalMs ?? 50;
  let interval = baseInterval;
  let last: string | undefined;
  let lastRefresh = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  /** Counts the changes nobody watched: a refresh that began before one holds no current state. */
  let unwatchedChanges = 0;
  const watched = () => sockets.some((io) => io.of('/').sockets.size > 0);

  async function refresh(): Promise<void> {
    lastRefresh = Date.now();
    const changesBefore = unwatchedChanges;
    try {
      const response = await pool!.invoke({
        callId: `channel-${channel.event}-${lastRefresh}`,
        request: { method: 'GET', path: '/', query: {}, headers: {}, body: '' },
      });
      if (response.status !== 200 || response.body === undefined) throw new Error(`answered ${response.status}`);
      if (response.body !== last && changesBefore === unwatchedChanges) {
        last = response.body;
        const began = performance.now();
        for (const io of sockets) io.emit(channel.event, last);
        interval = Math.max(baseInterval, (performance.now() - began) / MAX_SEND_SHARE);
      }
    } catch (error) {
      log.warn({ channel: channel.event, err: error }, 'channel refresh failed');
      // Clients may hold old state, or none yet (a page opened while the source was starting): try again.
      if (!closed)
        retry ??= setTimeout(() => {
          retry = undefined;
          schedule();
        }, RETRY_MS);
    }
  }

  // Leading edge at once, then at most one more per interval; never two refreshes at a time.
  function schedule(): void {
    if (timer || closed) return;
    if (!watched()) {
      // Nobody to tell; the state changed, so the next client gets a refresh, not the old one.
      last = undefined;
      unwatchedChanges++;
      return;
    }
    const wait = Math.max(0, lastRefresh + interval - Date.now());
    timer = setTimeout(() => {
      timer = undefined;
      if (running) {
        void running.then(schedule);
        return;
      }
      running = refresh().finally(() => (running = undefined));
    }, wait);
  }

  for (const io of sockets) {
    io.on('connection', (socket) => {
      if (last !== undefined) socket.emit(channel.event, last);
      else schedule();
    });
  }
  const unsubscribe = await events.subscribe(channel.topic, schedule);
  return async () => {
    closed = true;
    clearTimeout(timer);
    clearTimeout(retry);
    await unsubscribe();
    await running;
  };
}
