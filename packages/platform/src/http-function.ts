import type { Request, Response } from 'express';
import type { FunctionRequest, FunctionResponse } from '@platform/function-contract';

// Connection-level headers belong to each hop, not to the function.
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);
/** Credentials meant for the gateway: never passed on to a function, nor stored in the queue. */
const gatewayOnly = new Set(['x-invoke-token']);

/** The part of the URL path after `prefix` (always starting with '/'). */
export function pathAfter(req: Request, prefix: string): string {
  const path = req.path.slice(prefix.length);
  return path.startsWith('/') ? path : `/${path}`;
}

export function toFunctionRequest(req: Request, path: string): FunctionRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || hopByHop.has(name) || gatewayOnly.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const query: Record<string, string | string[]> = {};
  // Only the query string is parsed (the common call has none); no URL object per call.
  const url = req.originalUrl;
  const search = url.indexOf('?');
  const hash = url.indexOf('#', search);
  for (const [key, value] of search < 0 ? [] : new URLSearchParams(url.slice(search + 1, hash < 0 ? undefined : hash))) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  return { method: req.method, path, query, headers, body };
}

export function sendFunctionResponse(res: Response, response: FunctionResponse, callId: string): void {
  res.status(response.status);
  for (const [name, value] of Object.entries(response.headers ?? {})) {
    if (!hopByHop.has(name.toLowerCase()) && name.toLowerCase() !== 'content-length') res.setHeader(name, value);
  }
  res.setHeader('x-call-id', callId);
  res.end(response.body ?? '');
}
