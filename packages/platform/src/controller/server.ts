import { createServer } from 'node:http';
import express, { type Router } from 'express';
import { STANDBY_HEADER } from './api.js';

/**
 * The server of a controller process of its own: `GET /healthz` always (standing by is healthy),
 * the controller API once it leads (`lead`), and until then 503 with STANDBY_HEADER, so that an
 * edge asking here looks for the leader elsewhere.
 */
export async function serveControllerProcess({ host, port }: { host: string; port: number }) {
  let api: Router | undefined;
  const app = express().disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', leader: api !== undefined });
  });
  app.use((req, res, next) => {
    if (api) return api(req, res, next);
    res
      .status(503)
      .setHeader(STANDBY_HEADER, '1')
      .setHeader('retry-after', '1')
      .json({ error: 'this controller stands by: the leader is in GET /system/gateways' });
  });
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    lead(router: Router): void {
      api = router;
    },
    close(): void {
      server.close();
      server.closeAllConnections();
    },
  };
}
