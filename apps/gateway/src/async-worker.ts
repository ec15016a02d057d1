import type { Logger } from 'pino';
import type { FunctionRequest } from '@voting/function-contract';
import type { Consumer, Queue, QueuedMessage } from '@voting/queue';
import type { FunctionPool } from './pool.js';
import { InvocationError } from './errors.js';

/** An accepted `/async-function/<name>` call, as stored in the queue. */
export interface AsyncCall {
  callId: string;
  function: string;
  request: FunctionRequest;
  callbackUrl?: string | undefined;
  acceptedAt: number;
}

/** Statuses worth another attempt: the function or its instance failed, not the request. */
const retryable = (status: number) => status >= 500 || status === 429;

/**
 * Takes accepted calls off the queue and invokes them. A call is acknowledged only after its
 * function answered without a server error, so a crash anywhere means redelivery, never loss.
 */
export function startAsyncWorker({
  queue,
  pools,
  log,
  consumer,
}: {
  queue: Queue;
  pools: Map<string, FunctionPool>;
  log: Logger;
  consumer: string;
}): Consumer {
  async function handle(message: QueuedMessage): Promise<string | undefined> {
    const call = JSON.parse(message.body) as AsyncCall;
    const pool = pools.get(call.function);
    if (!pool) {
      log.error({ callId: call.callId, function: call.function }, 'queued call for an unknown function dropped');
      return undefined;
    }
    const started = Date.now();
    let status: number;
    let body = '';
    let headers: Record<string, string | string[]> = {};
    try {
      const response = await pool.invoke({ callId: call.callId, request: call.request });
      ({ status } = response);
      body = response.body ?? '';
      headers = response.headers ?? {};
    } catch (error) {
      status = error instanceof InvocationError ? error.status : 502;
      body = JSON.stringify({ error: (error as Error).message });
    }
    if (retryable(status)) return `${call.function} answered ${status} (attempt ${message.attempt}): ${body.slice(0, 200)}`;
    if (call.callbackUrl) await sendCallback(call, status, headers, body, Date.now() - started, log);
    return undefined;
  }

  return queue.consume(
    async (messages) => {
      const results = await Promise.all(messages.map((m) => handle(m).catch((e: unknown) => String(e))));
      const failed = messages.flatMap((m, i) => (results[i] ? [{ id: m.id, error: results[i] }] : []));
      for (const failure of failed) log.warn({ messageId: failure.id, error: failure.error }, 'async call will be retried');
      return { failed };
    },
    { consumer, batchSize: 64, concurrency: 4 },
  );
}

async function sendCallback(
  call: AsyncCall,
  status: number,
  headers: Record<string, string | string[]>,
  body: string,
  durationMs: number,
  log: Logger,
): Promise<void> {
  const contentType = headers['content-type'];
  try {
    await fetch(call.callbackUrl!, {
      method: 'POST',
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
      headers: {
        'content-type': (Array.isArray(contentType) ? contentType[0] : contentType) ?? 'application/octet-stream',
        'x-call-id': call.callId,
        'x-function-name': call.function,
        'x-function-status': String(status),
        'x-duration-seconds': (durationMs / 1_000).toFixed(6),
      },
    });
  } catch (error) {
    log.warn({ callId: call.callId, err: error }, 'callback failed');
  }
}
