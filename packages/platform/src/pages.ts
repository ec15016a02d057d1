import type { RequestListener } from 'node:http';
import express from 'express';
import type { Gateway } from './gateway.js';

// The pages load only their own scripts and styles and talk only to their own origin.
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

const SECURITY_HEADERS: Array<[name: string, value: string]> = [
  ['content-security-policy', contentSecurityPolicy],
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['referrer-policy', 'no-referrer'],
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
  ['permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=()'],
];

const apiPath = /^\/(function\/|async-function\/|system\/(?!ui(\/|$))|healthz$|metrics$)/;

/**
 * A site: the gateway's calls, static pages at the given mount points, then the gateway's other
 * routes; every answer carries the security headers.
 */
export function site(mounts: Array<[path: string, dir: string]>, gateway: Pick<Gateway, 'app' | 'handleCall'>): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  const pages = express.Router();
  for (const [path, dir] of mounts) {
    pages.use(path, express.static(dir, { index: 'index.html', maxAge: '1h', setHeaders: noCacheForHtml }));
  }
  // The platform's routes never touch the disk: no stat per request.
  app.use((req, res, next) => (apiPath.test(req.path) ? next() : pages(req, res, next)));
  app.use(gateway.app);
  return (req, res) => {
    for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value);
    if (!gateway.handleCall(req, res)) app(req, res);
  };
}

// Hashed assets can be cached; the HTML that names them must be fetched fresh.
function noCacheForHtml(res: express.Response, path: string): void {
  if (path.endsWith('.html')) res.setHeader('cache-control', 'no-cache');
}
