import type { RequestHandler } from 'express';
import { InvocationError } from './errors.js';
import { FailedAttempts } from './rate-limit.js';
import { sameToken } from './tokens.js';

/** Credentials for the gateway's /system routes. */
export interface AdminAuth {
  /** The admin token (bearer token, or the password of basic auth); none: mutations always refused. */
  token?: string | undefined;
  /** The user name of basic auth (default `admin`). */
  user?: string;
  /** Whether read-only /system routes, /metrics and the dashboard's live data are public (default true). */
  readPublic?: boolean;
}

/** Whether an Authorization header value (or a bare token, e.g. from a socket.io handshake) is the admin's. */
export function authorized(auth: AdminAuth, header: string | undefined): boolean {
  if (!auth.token || !header) return false;
  const [scheme, value = ''] = header.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme ?? '')) return sameToken(value, auth.token);
  if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const userOk = sameToken(decoded.slice(0, colon), auth.user ?? 'admin');
    const passwordOk = sameToken(decoded.slice(colon + 1), auth.token);
    return userOk && passwordOk;
  }
  return false;
}

const challenge = ['Bearer realm="gateway"', 'Basic realm="gateway", charset="UTF-8"'].join(', ');

/** Shortest admin token accepted: a shorter one is refused at start (see checkAdminToken). */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** Throws if a configured admin token is too short to stand against guessing. */
export function checkAdminToken(token: string): void {
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new Error(`the secret gateway-admin-token (or $GATEWAY_ADMIN_TOKEN) is ${token.length} characters long: use at least ${MIN_ADMIN_TOKEN_LENGTH}`);
  }
}

/** Failed admin authentications an address may make per minute; more are refused (429) unchecked. */
export const ADMIN_FAILURES_PER_MINUTE = 10;
/** One count per set of credentials, whichever routes check them. */
const failures = new WeakMap<AdminAuth, FailedAttempts>();

/**
 * Checks a credential given from a client address, counting failures: undefined when it is the
 * admin's; a 401 when it is not; a 429 with Retry-After, whatever it is, from an address that failed
 * ADMIN_FAILURES_PER_MINUTE times this minute. The /system routes and the dashboard's live
 * connection both go through it, so neither is a way around the other's count.
 */
export async function checkAdmin(auth: AdminAuth, header: string, address: string): Promise<InvocationError | undefined> {
  let attempts = failures.get(auth);
  if (!attempts) failures.set(auth, (attempts = new FailedAttempts(ADMIN_FAILURES_PER_MINUTE, 60)));
  const wait = await attempts.retryAfter(address);
  if (wait > 0) {
    return new InvocationError(429, `too many failed admin authentications from this address: at most ${ADMIN_FAILURES_PER_MINUTE} a minute`, {
      'retry-after': String(wait),
    });
  }
  if (authorized(auth, header)) return undefined;
  await attempts.failed(address);
  return new InvocationError(401, 'wrong credentials: use a bearer token or basic auth (the gateway admin token)', { 'www-authenticate': challenge });
}

/** 401 with WWW-Authenticate unless the request carries the admin credentials; 429 as checkAdmin says. */
export function requireAdmin(auth: AdminAuth): RequestHandler {
  return (req, _res, next) => {
    const header = req.get('authorization');
    if (!header) {
      return next(
        new InvocationError(401, 'credentials required: use a bearer token or basic auth (the gateway admin token)', { 'www-authenticate': challenge }),
      );
    }
    // The address as the app's trusted proxies say (express's req.ip).
    checkAdmin(auth, header, req.ip ?? req.socket.remoteAddress ?? '').then((error) => next(error), next);
  };
}

/** Read-only status: public unless configured otherwise. */
export function requireReader(auth: AdminAuth): RequestHandler {
  const admin = requireAdmin(auth);
  return (req, res, next) => (auth.readPublic === false ? admin(req, res, next) : next());
}
