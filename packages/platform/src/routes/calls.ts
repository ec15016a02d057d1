import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { INVOKE_TOKEN_HEADER, type FunctionRequest } from '@platform/function-contract';
import type { Queue } from '@platform/queue';
import type { AsyncCall } from '../async-worker.js';
import { CallbackHostRefused, checkCallbackUrl, type HostPattern } from '../callback-url.js';
import { InvocationError } from '../errors.js';
import { clientAddressOf, sendError, sendFunctionResponse, sendJson, shuttingDown, toFunctionRequest } from '../http-function.js';
import type { OriginRule } from '../origin.js';
import type { FunctionPool } from '../pool.js';
import type { Limiter, ShedReason } from '../rate-limit.js';
import { checkCaller, lookup } from './functions.js';

/** Takes a request if it is a call (and answers it), else returns false and leaves it alone. */
export type CallListener = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface CallRouteOptions {
  pools: Map<string, FunctionPool>;
  queue: Queue;
  /** Routes that stand for a function, e.g. a form post to `POST /`. */
  aliases: Array<{ method: 'get' | 'post'; path: string; function: string }>;
  /** Each function's rate limits, checked in order before its body is read. */
  limiters: Map<string, Limiter[]>;
  /** Largest request body accepted, e.g. '16kb'. */
  bodyLimit: string;
  /** Proxies whose X-Forwarded-For names the client (proxy-addr names or CIDRs). */
  trustProxy: string[];
  invokeToken?: string | undefined;
  /** Async calls being written to the queue at once at most; beyond it 503. */
  maxPendingEnqueues: number;
  shed?: (fn: string, reason: ShedReason) => void;
  /** Hosts callbacks may reach whatever their address; others only public addresses. */
  callbackHosts?: HostPattern[];
  /** Which browser pages may make calls (see originRule); others get a 403 and nothing runs or is queued. */
  foreignOrigin?: OriginRule;
  /** While true, calls are refused (503) and their connections closed: the gateway is stopping. */
  closing(): boolean;
  log: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

type Route = { kind: 'sync' | 'async'; fn: string; path: string };

/**
 * The caller's credentials: checked when a call is queued (private functions, rate limits), never
 * stored with it. A queued call sits in the queue, its dead letters and its retries' deliveries for
 * minutes to forever, where a user's session or an operator's token must not.
 */
const credentialHeaders = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-invoke-token', INVOKE_TOKEN_HEADER]);

/** The request as an async call stores it: without the caller's credentials. */
export function withoutCredentials(request: FunctionRequest): FunctionRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (!credentialHeaders.has(name.toLowerCase())) headers[name] = value;
  return { ...request, headers };
}

/**
 * The calls, answered on node:http alone: `/function/<name>[/path]` (sync, any method),
 * `/async-function/<name>[/path]` (queued: 202 and X-Call-Id) and the aliases. Nearly every request
 * is one of them, so they skip the web framework the rest of the gateway's routes use: its router
 * walk and per-request wrapping cost more than the routing here (see bench/CHANGES.md).
 */
export function callRoutes(options: CallRouteOptions): CallListener {
  const { pools, queue, invokeToken, maxPendingEnqueues, shed, callbackHosts = [], log } = options;
  const aliases = new Map<string, string>();
  for (const alias of options.aliases) {
    lookup(pools, alias.function);
    const methods = alias.method === 'get' ? ['GET', 'HEAD'] : ['POST'];
    for (const method of methods) aliases.set(`${method} ${alias.path}`, alias.function);
  }
  // The body as bytes, whatever its type: body-parser's raw reader (limit, decompression, errors).
  const readRaw = express.raw({ type: () => true, limit: options.bodyLimit });
  const readBody = (req: IncomingMessage, res: ServerResponse) =>
    new Promise<Buffer | undefined>((resolve, reject) =>
      readRaw(req as express.Request, res as express.Response, (error?: unknown) =>
        error ? reject(error) : resolve((req as { body?: unknown }).body as Buffer | undefined),
      ),
    );
  const clientAddress = clientAddressOf(options.trustProxy);
  const foreignOrigin = options.foreignOrigin ?? (() => undefined);
  let pendingEnqueues = 0;

  const route = (req: IncomingMessage): Route | undefined => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    const alias = aliases.get(`${req.method} ${path}`);
    if (alias) return { kind: 'sync', fn: alias, path };
    const kind = path.startsWith('/function/') ? 'sync' : path.startsWith('/async-function/') ? 'async' : undefined;
    if (!kind || (kind === 'async' && req.method !== 'POST')) return undefined;
    const rest = path.slice(kind === 'sync' ? '/function/'.length : '/async-function/'.length);
    const slash = rest.indexOf('/');
    const fn = slash < 0 ? rest : rest.slice(0, slash);
    if (fn === '') return undefined;
    return { kind, fn, path: slash < 0 ? '/' : rest.slice(slash) };
  };

  const serve = async (call: Route, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (options.closing()) throw shuttingDown(res);
    // Another web site's page must not call functions through its visitors' browsers (a vote each).
    const origin = foreignOrigin(req.headers);
    if (origin !== undefined)
      throw new InvocationError(403, `requests from ${origin.slice(0, 200)} may not call functions: only the app's own pages and its allowed origins`);
    const pool = lookup(pools, call.fn);
    checkCaller(pool, req, invokeToken);
    const limiters = options.limiters.get(pool.spec.name);
    if (limiters) {
      const limited = { req, clientAddress: clientAddress(req) };
      for (const limiter of limiters) if (!(await limiter(limited, res))) return;
    }
    if (call.kind === 'async') return enqueue(pool, call, req, res);
    const body = await readBody(req, res);
    const callId = randomUUID();
    const response = await pool.invoke({ callId, request: toFunctionRequest(req, call.path, body) });
    sendFunctionResponse(res, response, callId);
  };

  // The host's lookup ends when the caller leaves (the response closes before it is sent).
  const checkedCallback = async (value: string, res: ServerResponse) => {
    const left = new AbortController();
    const leave = () => left.abort();
    res.once('close', leave);
    try {
      return await checkCallbackUrl(value, { allowedHosts: callbackHosts, signal: left.signal });
    } catch (error) {
      if (error instanceof CallbackHostRefused)
        log.warn({ callbackHost: new URL(value).hostname.slice(0, 100), reason: error.detail }, 'callback host refused');
      throw error;
    } finally {
      res.off('close', leave);
    }
  };

  const enqueue = async (pool: FunctionPool, call: Route, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Writes waiting for a slow or unreachable queue are bounded: beyond the limit, shed load
    // before any other work (a callback's name lookup included).
    if (pendingEnqueues >= maxPendingEnqueues) {
      shed?.(pool.spec.name, 'queue_full');
      throw new InvocationError(503, `the queue is not keeping up: ${pendingEnqueues} calls waiting to be queued`, { 'retry-after': '1' });
    }
    const body = await readBody(req, res);
    const callback = req.headers['x-callback-url'];
    const asyncCall: AsyncCall = {
      callId: randomUUID(),
      function: pool.spec.name,
      request: withoutCredentials(toFunctionRequest(req, call.path, body)),
      callbackUrl: typeof callback === 'string' ? (await checkedCallback(callback, res)).url.toString() : undefined,
      acceptedAt: Date.now(),
    };
    pendingEnqueues++;
    try {
      await queue.enqueue(JSON.stringify(asyncCall));
    } catch (error) {
      shed?.(pool.spec.name, 'queue_unavailable');
      throw new InvocationError(503, `the call could not be queued: ${(error as Error).message}`, { 'retry-after': '1' });
    } finally {
      pendingEnqueues--;
    }
    res.setHeader('x-call-id', asyncCall.callId);
    sendJson(res, 202, { callId: asyncCall.callId });
  };

  return (req, res) => {
    const call = route(req);
    if (!call) return false;
    serve(call, req, res).catch((error: unknown) => sendError(res, error, log));
    return true;
  };
}
