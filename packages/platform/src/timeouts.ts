import type { Server } from 'node:http';
import type { FunctionSpec } from '@platform/function-contract/manifest';

/** Seconds added to the longest function timeout: the gateway answers 504 before any socket gives up. */
export const TIMEOUT_MARGIN_SECONDS = 5;

export interface ServerTimeouts {
  /** Socket inactivity while a call runs: longer than any function may take. */
  timeout: number;
  /** Receiving a whole request. */
  requestTimeout: number;
  /** Receiving a request's headers (never more than requestTimeout). */
  headersTimeout: number;
  /** An idle keep-alive connection between requests: longer than the function timeouts and than the usual 60 s of proxies in front. */
  keepAliveTimeout: number;
}

/**
 * The gateway's HTTP server timeouts, derived from the manifests: the one source of truth
 * for how long a call may take is each function's `timeoutSeconds`. A call that runs too long
 * is answered 504 by the FunctionPool; no server timeout in between can cut it earlier (the
 * 502 that a fixed, shorter proxy or server timeout gives).
 */
export function serverTimeouts(functions: Pick<FunctionSpec, 'timeoutSeconds'>[], marginSeconds = TIMEOUT_MARGIN_SECONDS): ServerTimeouts {
  const longest = Math.max(0, ...functions.map((f) => f.timeoutSeconds));
  const ms = Math.ceil((longest + marginSeconds) * 1_000);
  return {
    timeout: ms,
    requestTimeout: ms,
    headersTimeout: Math.min(ms, 60_000),
    keepAliveTimeout: Math.max(ms, 65_000),
  };
}

export function applyServerTimeouts(server: Server, timeouts: ServerTimeouts): void {
  server.timeout = timeouts.timeout;
  server.requestTimeout = timeouts.requestTimeout;
  server.headersTimeout = timeouts.headersTimeout;
  server.keepAliveTimeout = timeouts.keepAliveTimeout;
}
