import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const COOKIE_NAME = 'voter_id';
const idPattern = /^[0-9a-f]{32}$/;

// The cookie is `<id>.<mac>`: a random 128-bit id and an HMAC over it, so a voter id can only
// come from this app. A forged or mangled cookie is rejected, never silently replaced.
function mac(secret: string, id: string): string {
  return createHmac('sha256', secret).update(id).digest('base64url').slice(0, 22);
}

export function newVoterId(): string {
  return randomBytes(16).toString('hex');
}

export function signVoterId(secret: string, id: string): string {
  return `${id}.${mac(secret, id)}`;
}

/** The voter id in a cookie value, or an error message saying what is wrong with it. */
export function readVoterId(secret: string, value: string): { id: string } | { error: string } {
  const [id, signature, ...rest] = value.split('.');
  if (!id || !signature || rest.length > 0 || !idPattern.test(id)) return { error: 'malformed voter_id cookie' };
  const expected = Buffer.from(mac(secret, id));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { error: 'voter_id cookie has an invalid signature' };
  return { id };
}

/** The named cookie's value from a Cookie header; `undefined` when absent. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index < 0) continue;
    if (part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}

export function setCookieHeader(value: string): string {
  return `${COOKIE_NAME}=${value}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax`;
}
