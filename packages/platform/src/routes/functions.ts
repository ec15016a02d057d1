import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Queue } from '@platform/queue';
import type { FunctionPool } from '../pool.js';
import { InvocationError } from '../errors.js';
import { pathAfter, sendFunctionResponse, toFunctionRequest } from '../http-function.js';
import type { AsyncCall } from '../async-worker.js';
import type { ShedReason } from '../rate-limit.js';
import { checkCallbackUrl, type HostPattern } from '../callback-url.js';

const validName = /^[a-z][a-z0-9-]{0,62}$/;

/** Finds the function named in the URL: 400 for a malformed name, 404 for an unknown one. */
export function lookup(pools: Map<string, FunctionPool>, name: string): FunctionPool {
  if (!validName.test(name)) {
    throw new InvocationError(400, 'invalid function name: use lower case letters, digits and dashes');
  }
  const pool = pools.get(name);
  if (!pool) throw new InvocationError(404, `function "${name}" not found`);
  return pool;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * A private function (manifest `private: true`) is invoked only by functions, which send the
 * platform's invoke token: any other caller gets a 403 and nothing runs or is queued.
 */
export function checkCaller(pool: FunctionPool, req: Request, invokeToken: string | undefined): void {
  if (!pool.spec.private) return;
  const given = req.get('x-invoke-token');
  if (invokeToken && given && timingSafeEqual(digest(given), digest(invokeToken))) return;
  throw new InvocationError(403, `function "${pool.spec.name}" is private: only functions of this app may invoke it`);
}

/** Sync invocation of a named function, for routes like `POST /` that stand for one. */
export function invokeHandler(
  pools: Map<string, FunctionPool>,
  name: string | ((req: Request) => string),
  prefix?: (req: Request) => string,
  invokeToken?: string,
) {
  return async (req: Request, res: Response) => {
    const fnName = typeof name === 'string' ? name : name(req);
    const pool = lookup(pools, fnName);
    checkCaller(pool, req, invokeToken);
    const callId = randomUUID();
    const path = prefix ? pathAfter(req, prefix(req)) : req.path;
    const response = await pool.invoke({ callId, request: toFunctionRequest(req, path) });
    sendFunctionResponse(res, response, callId);
  };
}

/** The X-Callback-Url, checked (http(s), allowed host or public addresses only), or undefined. */
async function callbackUrl(req: Request, allowedHosts: HostPattern[]): Promise<string | undefined> {
  const value = req.get('x-callback-url');
  if (value === undefined) return undefined;
  return (await checkCallbackUrl(value, { allowedHosts })).url.toString();
}

/** `/function/<name>` (sync) and `/async-function/<name>` (queued, 202 + X-Call-Id). */
export interface FunctionRouteOptions {
  pools: Map<string, FunctionPool>;
  queue: Queue;
  invokeToken?: string | undefined;
  /** Async calls being written to the queue at once at most; beyond it 503. */
  maxPendingEnqueues: number;
  shed?: (fn: string, reason: ShedReason) => void;
  /** Hosts callbacks may reach whatever their address; others only public addresses. */
  callbackHosts?: HostPattern[];
}

export function functionRoutes({ pools, queue, invokeToken, maxPendingEnqueues, shed, callbackHosts: allowedHosts = [] }: FunctionRouteOptions): Router {
  let pendingEnqueues = 0;
  const router = Router();
  const nameParam = (req: Request) => String(req.params.name);

  router.all(
    '/function/:name{/*rest}',
    invokeHandler(pools, nameParam, (req) => `/function/${req.params.name}`, invokeToken),
  );

  router.post('/async-function/:name{/*rest}', async (req: Request, res: Response) => {
    const pool = lookup(pools, nameParam(req));
    checkCaller(pool, req, invokeToken);
    // Writes waiting for a slow or unreachable queue are bounded: beyond the limit, shed load
    // before any other work (a callback's name lookup included).
    if (pendingEnqueues >= maxPendingEnqueues) {
      shed?.(pool.spec.name, 'queue_full');
      throw new InvocationError(503, `the queue is not keeping up: ${pendingEnqueues} calls waiting to be queued`, { 'retry-after': '1' });
    }
    const call: AsyncCall = {
      callId: randomUUID(),
      function: pool.spec.name,
      request: toFunctionRequest(req, pathAfter(req, `/async-function/${pool.spec.name}`)),
      callbackUrl: await callbackUrl(req, allowedHosts),
      acceptedAt: Date.now(),
    };
    pendingEnqueues++;
    try {
      await queue.enqueue(JSON.stringify(call));
    } catch (error) {
      shed?.(pool.spec.name, 'queue_unavailable');
      throw new InvocationError(503, `the call could not be queued: ${(error as Error).message}`, { 'retry-after': '1' });
    } finally {
      pendingEnqueues--;
    }
    res.status(202).setHeader('x-call-id', call.callId).json({ callId: call.callId });
  });

  return router;
}

/** Every error becomes a JSON `{ "error": ... }` with the right status; never an HTML page. */
export function errorHandler(log: { error(obj: object, msg: string): void }) {
  return (error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const err = error as { status?: number; statusCode?: number; type?: string; message?: string; headers?: Record<string, string> };
    let status = err instanceof InvocationError ? err.status : (err.status ?? err.statusCode ?? 500);
    let message = err.message ?? 'internal error';
    if (err.type === 'entity.too.large') message = 'request body is too large';
    else if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') message = 'unsupported body encoding';
    else if (status >= 500 && !(err instanceof InvocationError)) {
      log.error({ err: error }, 'request failed');
      status = 500;
      message = 'internal error';
    }
    if (res.headersSent) return;
    for (const [name, value] of Object.entries(err instanceof InvocationError ? err.headers : {})) res.setHeader(name, value);
    res.status(status).json({ error: message });
  };
}
