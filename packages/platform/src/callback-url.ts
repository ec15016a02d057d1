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

/**
 * Finds the addresses of a host name. `signal` aborts when the answer is no longer wanted (the
 * deadline passed, the caller left): a resolver that can cancel its lookup should.
 */
export type Resolver = (hostname: string, signal: AbortSignal) => Promise<string[]>;

/**
 * The system's lookup (getaddrinfo: /etc/hosts, then DNS), as connections would do it. It cannot
 * be cancelled: when the signal aborts, the check stops waiting and the lookup ends on its own.
 */
export const systemResolver: Resolver = async (hostname) => (await lookup(hostname, { all: true })).map((a) => a.address);

/** A checked callback: connect to `address`, the one checked, never to a fresh lookup of the host. */
export interface CallbackTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** Longest wait for a callback host's addresses. */
export const RESOLVE_TIMEOUT_MS = 5_000;

/**
 * Name lookups running at most, counted until each really ends (a lookup no longer waited for
 * still holds a thread of libuv's small pool): more are refused, 503.
 */
const MAX_LOOKUPS = 16;
let lookups = 0;

/**
 * A callback URL refused for its host name. Whether the name does not resolve or resolves to a
 * refused address, the caller is told the same (or it could map which internal names exist);
 * `detail` says which, for the log.
 */
export class CallbackHostRefused extends InvocationError {
  constructor(
    host: string,
    readonly detail: string,
  ) {
    super(
      400,
      `X-Callback-Url's host ${host} is refused: callbacks may only go to names that resolve to public addresses only, or to hosts in CALLBACK_ALLOWED_HOSTS`,
    );
    this.name = 'CallbackHostRefused';
  }
}

/** The host's addresses, within RESOLVE_TIMEOUT_MS and while `signal` has not aborted; throws a description otherwise. */
async function resolveWithin(resolve: Resolver, hostname: string, signal: AbortSignal | undefined): Promise<string[]> {
  if (lookups >= MAX_LOOKUPS) throw new InvocationError(503, 'too many callback hosts being looked up at once; try again', { 'retry-after': '1' });
  const deadline = AbortSignal.timeout(RESOLVE_TIMEOUT_MS);
  const stop = signal ? AbortSignal.any([signal, deadline]) : deadline;
  lookups++;
  let started: Promise<string[]>;
  try {
    started = resolve(hostname, stop);
  } catch (error) {
    started = Promise.reject(error);
  }
  const running = started.finally(() => lookups--);
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error(deadline.aborted ? `lookup timed out after ${RESOLVE_TIMEOUT_MS} ms` : 'lookup abandoned: the call was cancelled'));
    if (stop.aborted) onAbort();
    else stop.addEventListener('abort', onAbort, { once: true });
  });
  // A lookup that fails after no one waits for it is nobody's error.
  running.catch(() => {});
  abandoned.catch(() => {});
  try {
    return await Promise.race([running, abandoned]);
  } finally {
    if (onAbort) stop.removeEventListener('abort', onAbort);
  }
}

const aKind = (kind: AddressKind) => `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} address`;

/** The refusal of an address the caller gave: it may be told what it is. */
function refused(address: string, { kind, ipv4 }: AddressClass): InvocationError {
  return new InvocationError(
    400,
    `X-Callback-Url points to ${address}${ipv4 ? ` (IPv4 ${ipv4})` : ''}, ${aKind(kind)}: callbacks may only go to public addresses or to hosts in CALLBACK_ALLOWED_HOSTS`,
  );
}

/**
 * Checks a callback URL: http(s), and every address of its host public unless the host is
 * allowed. Answers the address to connect to; throws a 400 InvocationError saying what is wrong
 * (of a host name, a CallbackHostRefused: one answer whatever is wrong, the detail for the log).
 */
export async function checkCallbackUrl(
  value: string,
  {
    allowedHosts = [],
    resolve = systemResolver,
    signal,
  }: {
    allowedHosts?: Array<string | HostPattern>;
    resolve?: Resolver;
    /** Aborts the host's lookup (e.g. the caller left); RESOLVE_TIMEOUT_MS bounds it anyway. */
    signal?: AbortSignal;
  } = {},
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
    if (!allowed && found.kind !== 'public') throw refused(literal, found);
    return { url, address: literal, family: isIP(literal) as 4 | 6 };
  }
  const host = url.hostname.slice(0, 100);
  let addresses: string[];
  try {
    addresses = await resolveWithin(resolve, url.hostname, signal);
  } catch (error) {
    if (error instanceof InvocationError) throw error;
    const code = (error as { code?: string }).code;
    throw new CallbackHostRefused(host, code ? `could not be resolved (${code})` : (error as Error).message);
  }
  const usable = addresses.filter((a) => isIP(a));
  if (usable.length === 0) throw new CallbackHostRefused(host, 'has no address');
  // Any refused address refuses the host: which one a connection would use is not ours to pick.
  for (const address of allowed ? [] : usable) {
    const { kind, ipv4 } = classifyAddress(address);
    if (kind !== 'public') throw new CallbackHostRefused(host, `resolves to ${address}${ipv4 ? ` (IPv4 ${ipv4})` : ''}, ${aKind(kind)}`);
  }
  return { url, address: usable[0]!, family: isIP(usable[0]!) as 4 | 6 };
}
