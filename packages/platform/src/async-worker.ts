import type { Logger } from 'pino';
import type { FunctionRequest, FunctionResponse } from '@platform/function-contract';
import type { Consumer, FailedMessage, Queue, QueuedMessage } from '@platform/queue';
import type { FunctionPool } from './pool.js';
import { InvocationError } from './errors.js';
import { CallbackHostRefused, checkCallbackUrl, type HostPattern } from './callback-url.js';
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
/** The function refused the request itself: the same input gets the same answer, so no retry. */
const refused = (status: number) => status >= 400 && status < 500 && status !== 429;

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
 * function answered without a server error, so a crash anywhere means redelivery, never loss;
 * a call its function refused (4xx) is kept in the dead letters.
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
  /**
   * Runs one invocation of a call or a batch of calls and answers which of them failed. A failure
   * of the function (5xx, 429, no answer) is retried with backoff, the whole batch alike. A refusal
   * (another 4xx) says some input is wrong: a refused batch is split in halves, each invoked again,
   * down to the single calls, so that only the refused calls end refused (a few invocations per
   * bad call, not one per call; the manifest's batchSize already asks for idempotent functions).
   * A refused call goes to the dead letters at once with the function's answer, and to its callback.
   */
  async function run({ pool, calls }: Work): Promise<FailedMessage[]> {
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
    const answer = `${pool.spec.name} answered ${response.status} (attempt ${calls[0]!.message.attempt}): ${(response.body ?? '').slice(0, 200)}`;
    if (retryable(response.status)) return calls.map(({ message }) => ({ id: message.id, error: answer }));
    if (refused(response.status) && calls.length > 1) {
      const half = Math.ceil(calls.length / 2);
      const parts = await Promise.all([run({ pool, calls: calls.slice(0, half) }), run({ pool, calls: calls.slice(half) })]);
      return parts.flat();
    }
    await Promise.all(calls.map(({ call }) => call.callbackUrl && sendCallback(call, response, Date.now() - started, log, allowedHosts)));
    if (refused(response.status)) {
      log.warn({ callId: first.callId, function: pool.spec.name, status: response.status }, 'queued call refused by its function: dead-lettered');
      return calls.map(({ message }) => ({ id: message.id, error: answer, final: true }));
    }
    return [];
  }

  return queue.consume(
    async (messages) => {
      const work = plan(messages, pools, log);
      const results = await Promise.all(
        work.map((w) => run(w).catch((e: unknown): FailedMessage[] => w.calls.map(({ message }) => ({ id: message.id, error: String(e) })))),
      );
      const failed = results.flat();
      const retried = failed.filter((f) => !f.final);
      if (retried.length) log.warn({ count: retried.length, error: retried[0]!.error }, 'async calls will be retried');
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
    if (error instanceof CallbackHostRefused) log.warn({ callId: call.callId, reason: error.message, detail: error.detail }, 'callback refused');
    else if (error instanceof InvocationError) log.warn({ callId: call.callId, reason: error.message }, 'callback refused');
    else log.warn({ callId: call.callId, err: error }, 'callback failed');
  }
}
