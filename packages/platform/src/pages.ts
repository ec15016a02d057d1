import express, { type Express, type RequestHandler } from 'express';

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

export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('content-security-policy', contentSecurityPolicy);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-resource-policy', 'same-origin');
  res.setHeader('permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=()');
  next();
};

const apiPath = /^\/(function\/|async-function\/|system\/(?!ui(\/|$))|healthz$|metrics$)/;

/** A site: static pages at the given mount points, in front of the gateway's routes. */
export function site(mounts: Array<[path: string, dir: string]>, gateway: Express): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders);
  const pages = express.Router();
  for (const [path, dir] of mounts) {
    pages.use(path, express.static(dir, { index: 'index.html', maxAge: '1h', setHeaders: noCacheForHtml }));
  }
  // Function calls and the platform's routes never touch the disk: no stat per call.
  app.use((req, res, next) => (apiPath.test(req.path) ? next() : pages(req, res, next)));
  app.use(gateway);
  return app;
}

// Hashed assets can be cached; the HTML that names them must be fetched fresh.
function noCacheForHtml(res: express.Response, path: string): void {
  if (path.endsWith('.html')) res.setHeader('cache-control', 'no-cache');
}
