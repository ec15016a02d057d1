import type { IncomingMessage, ServerResponse } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { FunctionRequest, FunctionResponse } from '@platform/function-contract';
import { InvocationError } from './errors.js';

// Connection-level headers belong to each hop, not to the function.
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);
/** Credentials meant for the gateway: never passed on to a function, nor stored in the queue. */
const gatewayOnly = new Set(['x-invoke-token']);

/**
 * The client's address as the gateway counts it (rate limits, live clients): the connection's
 * peer, or the address X-Forwarded-For names when the peer is one of the trusted proxies.
 */
export function clientAddressOf(trustProxy: string[]): (req: IncomingMessage) => string {
  // With no proxy trusted the client is the connection's peer: no X-Forwarded-For to walk.
  if (trustProxy.length === 0) return (req) => req.socket.remoteAddress ?? '';
  const trust = proxyaddr.compile(trustProxy);
  return (req) => proxyaddr(req, trust);
}

/** The invocation's request: the caller's method, the path after the function's prefix, its query, headers and body. */
export function toFunctionRequest(req: Pick<IncomingMessage, 'headers' | 'method' | 'url'>, path: string, body: Buffer | undefined): FunctionRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || hopByHop.has(name) || gatewayOnly.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const query: Record<string, string | string[]> = {};
  // Only the query string is parsed (the common call has none); no URL object per call.
  const url = req.url ?? '/';
  const search = url.indexOf('?');
  const hash = url.indexOf('#', search);
  for (const [key, value] of search < 0 ? [] : new URLSearchParams(url.slice(search + 1, hash < 0 ? undefined : hash))) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return { method: req.method ?? 'GET', path, query, headers, body: body ? body.toString('utf8') : '' };
}

export function sendFunctionResponse(res: ServerResponse, response: FunctionResponse, callId: string): void {
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers ?? {})) {
    if (!hopByHop.has(name.toLowerCase()) && name.toLowerCase() !== 'content-length') res.setHeader(name, value);
  }
  res.setHeader('x-call-id', callId);
  res.end(response.body ?? '');
}

/** The refusal of a request that comes while the gateway stops: 503 with Retry-After, and its connection closed. */
export function shuttingDown(res: ServerResponse): InvocationError {
  res.setHeader('connection', 'close');
  return new InvocationError(503, 'gateway is shutting down', { 'retry-after': '1' });
}

/** A JSON answer, on any response (Express's or node's). */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

/**
 * Every error becomes a JSON `{ "error": ... }` with the right status, never an HTML page: an
 * InvocationError as it says (with its headers), a body parser's refusal with its status, anything
 * else a 500 that is logged.
 */
export function sendError(res: ServerResponse, error: unknown, log: { error(obj: object, msg: string): void }): void {
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
  sendJson(res, status, { error: message });
}
