import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ClientRateLimitInfo, ipKeyGenerator, MemoryStore, type Options, type Store } from 'express-rate-limit';
import { compile } from 'proxy-addr';
import { sendJson } from './http-function.js';

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

/** A call as the limiters see it: the client's address (worked out once, trusted proxies considered) and its headers. */
export interface LimitedCall {
  req: IncomingMessage;
  clientAddress: string;
}

/** One limit: resolves true when the call may go on, or answers 429 itself and resolves false. */
export type Limiter = (call: LimitedCall, res: ServerResponse) => Promise<boolean>;

function cookieValue(req: IncomingMessage, name: string): string | undefined {
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

interface Rule {
  limit: number;
  reason: ShedReason;
  store: Store;
  skip(call: LimitedCall): boolean;
  key(call: LimitedCall): string;
  refusal: string;
}

/**
 * The limits of one function: 429 with Retry-After (seconds until the window ends), the RateLimit
 * headers (IETF draft 7) and a JSON error, counted by `onShed`. Counts are kept in fixed windows in
 * `counters`' stores: shared by every edge on one database, or in this gateway's memory
 * (express-rate-limit's MemoryStore, which forgets a window's keys when it ends, so memory stays
 * bounded). A store that fails lets calls through uncounted: while it is unreachable, the other
 * limits (load shedding) still hold.
 */
export function rateLimiters(limit: RateLimit, onShed: (reason: ShedReason) => void, counters?: RateLimitCounters): Limiter[] {
  const exempt = new Set(limit.exemptMethods ?? ['GET', 'HEAD', 'OPTIONS']);
  const windowMs = limit.windowSeconds * 1_000;
  let reportedAt = Number.NEGATIVE_INFINITY;
  const report = (error: unknown) => {
    if (Date.now() - reportedAt < 10_000) return;
    reportedAt = Date.now();
    counters?.log?.warn({ err: error }, `rate limit of ${limit.function}: counting failed, calls let through`);
  };
  const store = (kind: string): Store => {
    const shared = counters?.store(`${limit.function}:${kind}:`, windowMs);
    if (shared) return shared;
    const memory = new MemoryStore();
    memory.init({ windowMs } as Options);
    return memory;
  };
  const rules: Rule[] = [];
  if (limit.perAddress > 0) {
    const exemptAddress = compile(limit.exemptAddresses ?? []);
    rules.push({
      limit: limit.perAddress,
      reason: 'rate_limit_address',
      store: store('address'),
      skip: (call) => exempt.has(call.req.method ?? 'GET') || exemptAddress(call.clientAddress, 0),
      key: (call) => ipKeyGenerator(call.clientAddress),
      refusal: `too many calls to ${limit.function} from this address: at most ${limit.perAddress} per ${limit.windowSeconds} s`,
    });
  }
  const perCookie = limit.perCookie;
  if (perCookie && perCookie.limit > 0) {
    const holder = perCookie.holder ?? ((value: string) => value);
    rules.push({
      limit: perCookie.limit,
      reason: 'rate_limit_cookie',
      store: store(`cookie:${perCookie.name}`),
      skip: (call) => exempt.has(call.req.method ?? 'GET') || cookieValue(call.req, perCookie.name) === undefined,
      // A digest: any cookie value, however long or odd, is one short key.
      key: (call) =>
        createHash('sha256')
          .update(holder(cookieValue(call.req, perCookie.name)!))
          .digest('base64url'),
      refusal: `too many calls to ${limit.function} for this ${perCookie.name}: at most ${perCookie.limit} per ${limit.windowSeconds} s`,
    });
  }
  return rules.map((rule) => async (call, res) => {
    if (rule.skip(call)) return true;
    let counted: ClientRateLimitInfo;
    try {
      counted = await rule.store.increment(rule.key(call));
    } catch (error) {
      report(error);
      return true;
    }
    const resetSeconds = Math.max(0, Math.ceil(((counted.resetTime?.getTime() ?? Date.now() + windowMs) - Date.now()) / 1_000));
    res.setHeader('ratelimit-policy', `${rule.limit};w=${limit.windowSeconds}`);
    res.setHeader('ratelimit', `limit=${rule.limit}, remaining=${Math.max(0, rule.limit - counted.totalHits)}, reset=${resetSeconds}`);
    if (counted.totalHits <= rule.limit) return true;
    onShed(rule.reason);
    res.setHeader('retry-after', String(resetSeconds));
    sendJson(res, 429, { error: rule.refusal });
    return false;
  });
}

/**
 * Failed attempts (e.g. at a credential) per client address, counted in fixed windows in this
 * process's memory (express-rate-limit's MemoryStore, bounded as above): once an address failed
 * `limit` times in a window, its attempts are refused unchecked until the window ends, so that
 * guessing costs time and says nothing meanwhile. Successes are not counted.
 */
export class FailedAttempts {
  private readonly store = new MemoryStore();

  constructor(
    readonly limit: number,
    readonly windowSeconds: number,
  ) {
    this.store.init({ windowMs: windowSeconds * 1_000 } as Options);
  }

  /** Seconds until the address may try again; 0 if it may now. */
  async retryAfter(clientAddress: string): Promise<number> {
    const counted = await this.store.get(ipKeyGenerator(clientAddress));
    if (!counted || counted.totalHits < this.limit) return 0;
    return Math.max(1, Math.ceil(((counted.resetTime?.getTime() ?? Date.now()) - Date.now()) / 1_000));
  }

  async failed(clientAddress: string): Promise<void> {
    await this.store.increment(ipKeyGenerator(clientAddress));
  }
}
