import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type Store } from 'express-rate-limit';
import { compile } from 'proxy-addr';

/** Rate limits of the calls to one function (its sync and async routes and its aliases). */
export interface RateLimit {
  function: string;
  /** Length of the window the limits count in, seconds. */
  windowSeconds: number;
  /** Calls per window from one client address; 0: no limit. */
  perAddress: number;
  /** Client addresses the per-address limit leaves alone (proxy-addr names or CIDRs, e.g. `uniquelocal`). */
  exemptAddresses?: string[];
  /**
   * Calls per window per holder of a cookie (e.g. a visitor); 0: no limit. Requests without it count
   * per address only. `holder` picks what identifies the holder in the value, when the rest of it
   * changes from call to call (default: the whole value).
   */
  perCookie?: { name: string; limit: number; holder?: (value: string) => string };
  /** Methods that are not limited (reads), upper case. */
  exemptMethods?: string[];
}

export type ShedReason = 'rate_limit_address' | 'rate_limit_cookie' | 'busy' | 'queue_full' | 'queue_unavailable';

function cookieValue(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index >= 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim() || undefined;
  }
  return undefined;
}

/** Where the limiters count: a store per limiter, its keys under `prefix` (undefined: this process's memory). */
export interface RateLimitCounters {
  store(prefix: string, windowMs: number): Store | undefined;
  /** Where a failing store is reported, at most every 10 s. */
  log?: { warn(obj: object, msg: string): void };
}

/**
 * The limits as Express middleware: 429 with Retry-After (seconds until the window ends) and a
 * JSON error, counted by `onShed`. Counts are kept in `counters`' stores: shared by every edge on
 * one database, or in this gateway's memory (express-rate-limit's store, which forgets a window's
 * keys when the window ends, so memory stays bounded). A store that fails lets requests through
 * uncounted: while it is unreachable, the other limits (load shedding) still hold.
 */
export function rateLimiters(limit: RateLimit, onShed: (reason: ShedReason) => void, counters?: RateLimitCounters): RequestHandler[] {
  const exempt = new Set(limit.exemptMethods ?? ['GET', 'HEAD', 'OPTIONS']);
  const windowMs = limit.windowSeconds * 1_000;
  let reportedAt = Number.NEGATIVE_INFINITY;
  const report = (error: unknown, message?: string) => {
    if (Date.now() - reportedAt < 10_000) return;
    reportedAt = Date.now();
    counters?.log?.warn({ err: error }, message ?? 'rate limit');
  };
  const common = {
    windowMs,
    standardHeaders: 'draft-7' as const,
    legacyHeaders: false,
    // The client's address is req.ip: the connection's, or X-Forwarded-For's only when the
    // connection comes from a trusted proxy (the app's `trust proxy` setting); forged headers change nothing.
    validate: { xForwardedForHeader: false, trustProxy: false },
    passOnStoreError: true,
    ...(counters?.log ? { logger: { error: report, warn: report } } : {}),
  };
  const store = (kind: string) => {
    const shared = counters?.store(`${limit.function}:${kind}:`, windowMs);
    return shared ? { store: shared } : {};
  };
  const handlers: RequestHandler[] = [];
  if (limit.perAddress > 0) {
    const exemptAddress = compile(limit.exemptAddresses ?? []);
    // req.ip walks X-Forwarded-For against the trusted proxies: once per request is enough.
    const address = (req: Request) => ((req as Request & { clientAddress?: string }).clientAddress ??= req.ip ?? req.socket.remoteAddress ?? 'unknown');
    handlers.push(
      rateLimit({
        ...common,
        limit: limit.perAddress,
        ...store('address'),
        skip: (req) => exempt.has(req.method) || exemptAddress(address(req), 0),
        keyGenerator: (req) => ipKeyGenerator(address(req)),
        handler: (_req, res) => {
          onShed('rate_limit_address');
          res.status(429).json({ error: `too many calls to ${limit.function} from this address: at most ${limit.perAddress} per ${limit.windowSeconds} s` });
        },
      }),
    );
  }
  const perCookie = limit.perCookie;
  if (perCookie && perCookie.limit > 0) {
    const holder = perCookie.holder ?? ((value: string) => value);
    handlers.push(
      rateLimit({
        ...common,
        limit: perCookie.limit,
        ...store(`cookie:${perCookie.name}`),
        skip: (req) => exempt.has(req.method) || cookieValue(req, perCookie.name) === undefined,
        // A digest: any cookie value, however long or odd, is one short key.
        keyGenerator: (req) =>
          createHash('sha256')
            .update(holder(cookieValue(req, perCookie.name)!))
            .digest('base64url'),
        handler: (_req, res) => {
          onShed('rate_limit_cookie');
          res
            .status(429)
            .json({ error: `too many calls to ${limit.function} for this ${perCookie.name}: at most ${perCookie.limit} per ${limit.windowSeconds} s` });
        },
      }),
    );
  }
  return handlers;
}
