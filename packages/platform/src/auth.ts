import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { InvocationError } from './errors.js';

/** Credentials for the gateway's /system routes. */
export interface AdminAuth {
  /** The admin token (bearer token, or the password of basic auth); none: mutations always refused. */
  token?: string | undefined;
  /** The user name of basic auth (default `admin`). */
  user?: string;
  /** Whether read-only /system routes, /metrics and the dashboard's live data are public (default true). */
  readPublic?: boolean;
}

const digest = (value: string) => createHash('sha256').update(value).digest();
/** Compares in constant time (of the digests, so the length leaks nothing either). */
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** Whether an Authorization header value (or a bare token, e.g. from a socket.io handshake) is the admin's. */
export function authorized(auth: AdminAuth, header: string | undefined): boolean {
  if (!auth.token || !header) return false;
  const [scheme, value = ''] = header.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme ?? '')) return same(value, auth.token);
  if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const userOk = same(decoded.slice(0, colon), auth.user ?? 'admin');
    const passwordOk = same(decoded.slice(colon + 1), auth.token);
    return userOk && passwordOk;
  }
  return false;
}

const challenge = ['Bearer realm="gateway"', 'Basic realm="gateway", charset="UTF-8"'].join(', ');

/** 401 with WWW-Authenticate unless the request carries the admin credentials. */
export function requireAdmin(auth: AdminAuth): RequestHandler {
  return (req, _res, next) => {
    if (authorized(auth, req.get('authorization'))) return next();
    const problem = req.get('authorization') ? 'wrong credentials' : 'credentials required';
    next(new InvocationError(401, `${problem}: use a bearer token or basic auth (the gateway admin token)`, { 'www-authenticate': challenge }));
  };
}

/** Read-only status: public unless configured otherwise. */
export function requireReader(auth: AdminAuth): RequestHandler {
  const admin = requireAdmin(auth);
  return (req, res, next) => (auth.readPublic === false ? admin(req, res, next) : next());
}
