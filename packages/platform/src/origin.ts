import type { IncomingHttpHeaders } from 'node:http';

/** What a browser says about where a request comes from: the headers the origin rule reads. */
export type OriginHeaders = Pick<IncomingHttpHeaders, 'origin' | 'host'> & { 'sec-fetch-site'?: string | string[] | undefined };

/**
 * The rule for requests from browser pages: undefined when the request may go on, else the
 * origin it came from (for the refusal's message). A browser names the page's origin in `Origin`
 * (on every POST and cross-origin fetch) and says `Sec-Fetch-Site`; other clients (curl, load
 * tools, functions) send neither and are let through, as they could leave both out anyway.
 * The app's own origins: the request's Host (the page's own server), the same host name on one
 * of `pagePorts` (the app's other page server) and `allowed` (e.g. the public URL's origin).
 */
export type OriginRule = (headers: OriginHeaders) => string | undefined;

/** The refusal's name for a cross-site request that did not say its origin (a link, an image, a form's GET). */
export const UNNAMED_CROSS_SITE = 'a cross-site page';

export function originRule({ allowed = [], pagePorts = [] }: { allowed?: string[]; pagePorts?: number[] } = {}): OriginRule {
  const allowedOrigins = new Set(allowed.map((origin) => new URL(origin).origin));
  const ports = new Set(pagePorts.map(String));
  // Off the hot path: origins other than the request's host, written exactly as a browser does.
  const otherOrigin = (origin: string, host: string | undefined): boolean => {
    if (allowedOrigins.has(origin)) return true;
    if (host === undefined) return false;
    let page: URL;
    let server: URL;
    try {
      page = new URL(origin);
      server = new URL(`http://${host}`);
    } catch {
      return false;
    }
    if (page.origin !== origin || (page.protocol !== 'http:' && page.protocol !== 'https:')) return false;
    if (page.host === server.host) return true;
    const port = page.port || (page.protocol === 'https:' ? '443' : '80');
    return page.hostname === server.hostname && ports.has(port);
  };
  return (headers) => {
    const origin = headers.origin;
    const site = headers['sec-fetch-site'];
    if (origin === undefined) return site === 'cross-site' ? UNNAMED_CROSS_SITE : undefined;
    // `null`: an opaque origin (a sandboxed frame, a file, a redirect) or a page whose referrer
    // policy hides it, as the app's own pages' `no-referrer` does: then only the browser's own
    // same-origin verdict lets it through.
    if (origin === 'null') return site === 'same-origin' ? undefined : origin;
    const host = headers.host;
    // The common case, the page's own server, compared without allocating.
    if (
      host !== undefined &&
      origin.endsWith(host) &&
      ((origin.length === host.length + 7 && origin.startsWith('http://')) || (origin.length === host.length + 8 && origin.startsWith('https://')))
    ) {
      return undefined;
    }
    return otherOrigin(origin, host) ? undefined : origin;
  };
}
