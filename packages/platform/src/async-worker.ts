import type { Logger } from 'pino';
import type { FunctionRequest, FunctionResponse } from '@platform/function-contract';
import type { Consumer, Queue, QueuedMessage } from '@platform/queue';
import type { FunctionPool } from './pool.js';
import { InvocationError } from './errors.js';
import { checkCallbackUrl, type HostPattern } from './callback-url.js';
import { postCallback } from './callback-post.js';

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

interface Work {
  pool: FunctionPool;
  calls: Array<{ message: QueuedMessage; call: AsyncCall }>;
}

const isJson = (request: FunctionRequest) => /^application\/json\b/i.test(request.headers['content-type'] ?? '');

/**
 * Groups a fetched batch into invocations: calls of a function whose manifest allows batching
 * (POST, JSON, same path) share one invocation with a JSON array body, where a call whose body
 * is itself a JSON array contributes its items; others go one by one.
 */
function plan(messages: QueuedMessage[], pools: Map<string, FunctionPool>, log: Logger): Work[] {
  const work: Work[] = [];
  const open = new Map<string, Work>();
  for (const message of messages) {
    const call = JSON.parse(message.body) as AsyncCall;
    const pool = pools.get(call.function);
    if (!pool) {
      log.error({ callId: call.callId, function: call.function }, 'queued call for an unknown function dropped');
      continue;
    }
    const { batchSize } = pool.spec;
    const batchable = batchSize > 1 && call.request.method === 'POST' && isJson(call.request) && validJson(call.request.body);
    if (!batchable) {
      work.push({ pool, calls: [{ message, call }] });
      continue;
    }
    const key = `${call.function} ${call.request.path}`;
    let group = open.get(key);
    if (!group || group.calls.length >= batchSize) {
      group = { pool, calls: [] };
      open.set(key, group);
      work.push(group);
    }
    group.calls.push({ message, call });
  }
  return work;
}

/** A call's part of a batch body: its JSON, or the items of a JSON array (a call that is itself a batch). */
function batchItems(body: string): string {
  const text = body.trim();
  return text.startsWith('[') ? text.slice(1, -1).trim() : text;
}

function validJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Takes accepted calls off the queue and invokes them. A call is acknowledged only after its
 * function answered without a server error, so a crash anywhere means redelivery, never loss.
 */
export function startAsyncWorker({
  queue,
  pools,
  log,
  consumer,
  callbackHosts: allowedHosts = [],
}: {
  queue: Queue;
  pools: Map<string, FunctionPool>;
  log: Logger;
  consumer: string;
  /** Hosts callbacks may reach whatever their address (see callback-url.ts). */
  callbackHosts?: HostPattern[];
}): Consumer {
  async function run({ pool, calls }: Work): Promise<string | undefined> {
    const first = calls[0]!.call;
    const request =
      calls.length === 1 && pool.spec.batchSize === 1
        ? first.request
        : {
            ...first.request,
            body: `[${calls
              .map((c) => batchItems(c.call.request.body))
              .filter(Boolean)
              .join(',')}]`,
          };
    const started = Date.now();
    let response: FunctionResponse;
    try {
      response = await pool.invoke({ callId: first.callId, request });
    } catch (error) {
      const status = error instanceof InvocationError ? error.status : 502;
      response = { status, body: JSON.stringify({ error: (error as Error).message }) };
    }
    if (retryable(response.status)) {
      return `${pool.spec.name} answered ${response.status} (attempt ${calls[0]!.message.attempt}): ${(response.body ?? '').slice(0, 200)}`;
    }
    await Promise.all(calls.map(({ call }) => call.callbackUrl && sendCallback(call, response, Date.now() - started, log, allowedHosts)));
    return undefined;
  }

  return queue.consume(
    async (messages) => {
      const work = plan(messages, pools, log);
      const results = await Promise.all(work.map((w) => run(w).catch((e: unknown) => String(e))));
      const failed = work.flatMap((w, i) => (results[i] ? w.calls.map((c) => ({ id: c.message.id, error: results[i]! })) : []));
      if (failed.length) log.warn({ count: failed.length, error: failed[0]!.error }, 'async calls will be retried');
      return { failed };
    },
    { consumer, batchSize: 500, concurrency: 4 },
  );
}

/**
 * Posts a call's result to its callback URL, checked again now: the host's addresses may have
 * changed since the call was accepted. A refused or failed callback is logged, never retried.
 */
async function sendCallback(call: AsyncCall, response: FunctionResponse, durationMs: number, log: Logger, allowedHosts: HostPattern[]): Promise<void> {
  const contentType = response.headers?.['content-type'];
  try {
    const target = await checkCallbackUrl(call.callbackUrl!, { allowedHosts });
    const status = await postCallback(target, response.body ?? '', {
      'content-type': (Array.isArray(contentType) ? contentType[0] : contentType) ?? 'application/octet-stream',
      'x-call-id': call.callId,
      'x-function-name': call.function,
      'x-function-status': String(response.status),
      'x-duration-seconds': (durationMs / 1_000).toFixed(6),
    });
    if (status >= 300 && status < 400) log.warn({ callId: call.callId, status }, 'callback answered a redirect: not followed');
  } catch (error) {
    if (error instanceof InvocationError) log.warn({ callId: call.callId, reason: error.message }, 'callback refused');
    else log.warn({ callId: call.callId, err: error }, 'callback failed');
  }
}
