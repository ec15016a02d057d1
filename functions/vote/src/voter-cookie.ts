import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const COOKIE_NAME = 'voter_id';
const idPattern = /^[0-9a-f]{32}$/;
const seqPattern = /^[1-9][0-9]{0,15}$/;

/**
 * A voter: a random 128-bit id, and the number of the vote it cast last. Each vote carries the
 * next number and `record-vote` keeps the highest, so one browser's votes keep their order
 * whichever instance, node or clock handled them.
 */
export interface Voter {
  id: string;
  seq: number;
}

// The cookie is `<id>.<seq>.<mac>`, an HMAC over both, so a voter (and its count) can only come
// from this app: a forged or mangled cookie is rejected, never silently replaced. The older
// `<id>.<mac>` is read as a voter who has not voted since (seq 0).
function mac(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('base64url').slice(0, 22);
}

/** Random bytes for 256 ids at a time: one call into the system's generator, not one per voter. */
const ID_BYTES = 16;
let pool = Buffer.alloc(0);
let used = 0;

export function newVoter(): Voter {
  if (used + ID_BYTES > pool.length) {
    pool = randomBytes(ID_BYTES * 256);
    used = 0;
  }
  const id = pool.toString('hex', used, used + ID_BYTES);
  used += ID_BYTES;
  return { id, seq: 0 };
}

export function signVoter(secret: string, { id, seq }: Voter): string {
  return `${id}.${seq}.${mac(secret, `${id}.${seq}`)}`;
}

/** The voter in a cookie value, or an error message saying what is wrong with it. */
export function readVoter(secret: string, value: string): Voter | { error: string } {
  const parts = value.split('.');
  const [id, seqText, signature] = parts.length === 2 ? [parts[0], undefined, parts[1]] : parts;
  if (parts.length > 3 || !id || !signature || !idPattern.test(id) || (seqText !== undefined && !seqPattern.test(seqText))) {
    return { error: 'malformed voter_id cookie' };
  }
  const seq = seqText === undefined ? 0 : Number(seqText);
  if (!Number.isSafeInteger(seq)) return { error: 'malformed voter_id cookie' };
  const expected = Buffer.from(mac(secret, seqText === undefined ? id : `${id}.${seqText}`));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { error: 'voter_id cookie has an invalid signature' };
  return { id, seq };
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
