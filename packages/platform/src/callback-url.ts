// Where X-Callback-Url may point: public addresses, or hosts the operator allowed. Otherwise any
// caller could make the gateway post to loopback services, private networks or cloud metadata.
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { InvocationError } from './errors.js';

/** What an address is; only `public` ones are callback targets unless their host is allowed. */
export type AddressKind = 'public' | 'loopback' | 'private' | 'carrier-grade NAT' | 'link-local' | 'unspecified' | 'multicast' | 'broadcast' | 'reserved';

export interface AddressClass {
  kind: AddressKind;
  /** The IPv4 address an IPv6 one stands for (mapped, compatible, NAT64, 6to4): it decides the kind. */
  ipv4?: string;
}

// ipaddr.js's range names; any range not listed (documentation, benchmarking, Teredo, ...) is reserved.
const v4Kinds: Record<string, AddressKind> = {
  unicast: 'public',
  private: 'private',
  loopback: 'loopback',
  linkLocal: 'link-local',
  carrierGradeNat: 'carrier-grade NAT',
  unspecified: 'unspecified',
  multicast: 'multicast',
  broadcast: 'broadcast',
};
const v6Kinds: Record<string, AddressKind> = {
  loopback: 'loopback',
  uniqueLocal: 'private',
  deprecatedSiteLocal: 'private',
  linkLocal: 'link-local',
  unspecified: 'unspecified',
  multicast: 'multicast',
};
const globalUnicast = ipaddr.parseCIDR('2000::/3');
const nat64WellKnown = ipaddr.parseCIDR('64:ff9b::/96');

/** The IPv4 address an IPv6 address carries and reaches, if any. */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = address.parts;
  const v4 = (high: number, low: number) => new ipaddr.IPv4([high >> 8, high & 255, low >> 8, low & 255]);
  const range = address.range() as string;
  if (range === 'ipv4Mapped' || range === 'rfc6145') return v4(p[6]!, p[7]!);
  if (address.match(nat64WellKnown)) return v4(p[6]!, p[7]!);
  if (range === '6to4') return v4(p[1]!, p[2]!);
  // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks); :: and ::1 are themselves.
  if (p.slice(0, 6).every((x) => x === 0) && !(p[6] === 0 && p[7]! <= 1)) return v4(p[6]!, p[7]!);
  return undefined;
}

/** Classifies an IP address (IPv4, or IPv6 with or without brackets and zone); throws on anything else. */
export function classifyAddress(ip: string): AddressClass {
  const address = ipaddr.parse(ip.replace(/^\[(.*)\]$/, '$1'));
  if (address.kind() === 'ipv4') return { kind: v4Kinds[address.range()] ?? 'reserved' };
  const v6 = address as ipaddr.IPv6;
  const inner = embeddedIPv4(v6);
  if (inner) return { kind: classifyAddress(inner.toString()).kind, ipv4: inner.toString() };
  const range = v6.range() as string;
  // Unicast outside 2000::/3 is not assigned to anyone: nothing public lives there.
  if (range === 'unicast') return { kind: v6.match(globalUnicast) ? 'public' : 'reserved' };
  return { kind: v6Kinds[range] ?? 'reserved' };
}

export interface HostPattern {
  /** A host name (for `*.` patterns, the domain whose subdomains match) or an IP address, as URL gives it. */
  host: string;
  wildcard: boolean;
  /** Only this port; any port when absent. */
  port?: number;
}

/** Parses `host`, `host:port`, `*.domain[:port]` or `[v6]:port`; throws on anything else. */
export function parseHostPattern(pattern: string): HostPattern {
  const text = pattern.trim();
  const wildcard = text.startsWith('*.');
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/?#@\\\s*]+)(?::(\d{1,5}))?$/.exec(wildcard ? text.slice(2) : text);
  const port = match?.[2] === undefined ? undefined : Number(match[2]);
  let host: string | undefined;
  try {
    // The same normalisation the callback URL gets: case, IDN, IPv4 forms, IPv6 compression.
    host = match ? new URL(`http://${match[1]}/`).hostname : undefined;
  } catch {
    host = undefined;
  }
  if (!host || (port !== undefined && (port < 1 || port > 65_535)) || (wildcard && isIP(host.replace(/^\[|\]$/g, '')))) {
    throw new Error(`"${pattern}" is not a host, host:port or *.domain pattern`);
  }
  return { host, wildcard, ...(port === undefined ? {} : { port }) };
}

/** Whether the URL's host (and port, where the pattern names one) matches one of the patterns. */
export function hostAllowed(url: URL, patterns: Array<string | HostPattern>): boolean {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return patterns.some((p) => {
    const { host, wildcard, port: only } = typeof p === 'string' ? parseHostPattern(p) : p;
    if (only !== undefined && only !== port) return false;
    return wildcard ? url.hostname.endsWith(`.${host}`) : url.hostname === host;
  });
}

/** Finds the addresses of a host name. */
export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) => (await lookup(hostname, { all: true })).map((a) => a.address);

/** A checked callback: connect to `address`, the one checked, never to a fresh lookup of the host. */
export interface CallbackTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

const RESOLVE_TIMEOUT_MS = 5_000;

/** Name lookups in flight at most: each holds a thread of libuv's small pool until it ends. */
const MAX_LOOKUPS = 16;
let lookups = 0;

async function resolveWithin(resolve: Resolver, hostname: string): Promise<string[]> {
  if (lookups >= MAX_LOOKUPS) throw new InvocationError(503, 'too many callback hosts being looked up at once; try again', { 'retry-after': '1' });
  lookups++;
  try {
    return await resolveOnce(resolve, hostname);
  } finally {
    lookups--;
  }
}

async function resolveOnce(resolve: Resolver, hostname: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEOUT' })), RESOLVE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([resolve(hostname), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The refusal; `address` only when the caller gave it (a name's addresses are not told: they would map the inside). */
function refused(what: string, address: string | undefined, { kind, ipv4 }: AddressClass): InvocationError {
  const article = /^[aeiou]/.test(kind) ? 'an' : 'a';
  const shown = address === undefined ? '' : ` ${address}${ipv4 ? ` (IPv4 ${ipv4})` : ''},`;
  return new InvocationError(
    400,
    `${what}${shown} ${article} ${kind} address: callbacks may only go to public addresses or to hosts in CALLBACK_ALLOWED_HOSTS`,
  );
}

/**
 * Checks a callback URL: http(s), and every address of its host public unless the host is
 * allowed. Answers the address to connect to; throws a 400 InvocationError saying what is wrong.
 */
export async function checkCallbackUrl(
  value: string,
  { allowedHosts = [], resolve = systemResolver }: { allowedHosts?: Array<string | HostPattern>; resolve?: Resolver } = {},
): Promise<CallbackTarget> {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvocationError(400, 'X-Callback-Url is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvocationError(400, 'X-Callback-Url must be an http or https URL');
  }
  const allowed = hostAllowed(url, allowedHosts);
  const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(literal)) {
    const found = classifyAddress(literal);
    if (!allowed && found.kind !== 'public') throw refused('X-Callback-Url points to', literal, found);
    return { url, address: literal, family: isIP(literal) as 4 | 6 };
  }
  const host = url.hostname.slice(0, 100);
  let addresses: string[];
  try {
    addresses = await resolveWithin(resolve, url.hostname);
  } catch (error) {
    if (error instanceof InvocationError) throw error;
    const code = (error as { code?: string }).code;
    throw new InvocationError(400, `X-Callback-Url's host ${host} could not be resolved${code ? ` (${code})` : ''}`);
  }
  const usable = addresses.filter((a) => isIP(a));
  if (usable.length === 0) throw new InvocationError(400, `X-Callback-Url's host ${host} has no address`);
  // Any refused address refuses the host: which one a connection would use is not ours to pick.
  for (const address of allowed ? [] : usable) {
    const found = classifyAddress(address);
    if (found.kind !== 'public') throw refused(`X-Callback-Url's host ${host} resolves to`, undefined, found);
  }
  return { url, address: usable[0]!, family: isIP(usable[0]!) as 4 | 6 };
}
