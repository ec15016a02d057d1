import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Whether a credential a request carries is the expected one, compared in constant time (of
 * sha256 digests, so that the length leaks nothing either). Nothing given, or nothing expected
 * (a credential not configured), is never a match.
 */
export function sameToken(given: string | undefined, expected: string | undefined): boolean {
  if (!given || !expected) return false;
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token of an `Authorization: Bearer …` header; undefined for any other scheme or none. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^\s*bearer\s+(.+?)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/**
 * The credential of the controller API (secret `gateway-controller-token`): held by controllers
 * and edges only, never given to a function, whatever its manifest declares.
 */
export const CONTROLLER_TOKEN_SECRET = 'gateway-controller-token';
