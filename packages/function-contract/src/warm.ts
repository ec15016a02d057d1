import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { rm } from 'node:fs/promises';
import { INSTANCE_HEADER, type FunctionDefinition, type Invocation } from './types.js';
import type { InstanceSettings } from './context.js';
import { baseContext, createLogger } from './context.js';
import { parseInvocation, runHandler } from './invoke.js';

/** A stopping instance exits only once no call has arrived for this long. */
const QUIET_MS = 300;

/** The request's body as text (events, not an async iterator: one call's body is one or two chunks). */
function readText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Warm mode: an HTTP server serving calls until told to stop. `GET /_/health` answers once
 * setup is done; `POST /_/invoke` takes an invocation and answers its response. Calls beyond
 * the in-flight limit get 429 so the platform can route them elsewhere; calls meant for another
 * instance (INSTANCE_HEADER) get 421 and run nothing.
 */
export async function runWarm(definition: FunctionDefinition, settings: InstanceSettings): Promise<void> {
  const log = createLogger(settings);
  const base = baseContext(settings, log);
  let inFlight = 0;
  let ready = false;
  let draining = false;
  let lastCall = Date.now();
  /** When a call last arrived, answered or refused. */
  let lastRequest = 0;

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/_/health') {
      return send(res, ready && !draining ? 200 : 503, { ready, draining, inFlight });
    }
    if (req.method !== 'POST' || req.url !== '/_/invoke') return send(res, 404, { error: 'not found' });
    lastRequest = Date.now();
    const meant = req.headers[INSTANCE_HEADER];
    if (meant !== undefined && meant !== settings.instance) {
      return send(res, 421, { error: `this address serves instance ${settings.instance} of ${settings.name}, not ${String(meant)}` });
    }
    if (draining) {
      res.setHeader('connection', 'close');
      return send(res, 503, { error: 'instance is stopping' });
    }
    if (inFlight >= settings.maxInFlight) return send(res, 429, { error: 'instance busy' });
    inFlight++;
    lastCall = Date.now();
    try {
      let invocation: Invocation;
      try {
        invocation = parseInvocation(await readText(req));
      } catch (error) {
        return send(res, 400, { error: (error as Error).message });
      }
      send(res, 200, await runHandler(definition, invocation, base));
    } finally {
      inFlight--;
      lastCall = Date.now();
    }
  });
  server.keepAliveTimeout = 65_000;

  // Drains in-flight calls, but never waits longer than a call may take. Meanwhile it keeps
  // listening and answers new calls 503 (they ran nothing: the platform sends them elsewhere):
  // closing kept-alive connections now would reset a call just sent on one, and its caller could
  // not tell whether it ran.
  const stop = async (reason: string) => {
    if (draining) return;
    draining = true;
    log.info({ reason, inFlight }, 'stopping');
    const deadline = Date.now() + settings.drainSeconds * 1000;
    // Also until callers have stopped sending (each got its 503): a call arriving as the process
    // exits would meet a reset connection.
    while ((inFlight > 0 || Date.now() - lastRequest < QUIET_MS) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (inFlight > 0) log.warn({ inFlight }, 'calls still running at the drain deadline');
    server.close();
    await definition.teardown?.();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // Started by a local platform with a pipe on stdin: the pipe closing means the platform is gone.
  if (process.env.FN_EXIT_WITH_PARENT === '1') {
    process.stdin.on('end', () => void stop('platform went away')).resume();
  }
  if (settings.idleSeconds > 0) {
    // A safety net only: the platform normally stops idle instances itself.
    setInterval(() => {
      if (inFlight === 0 && Date.now() - lastCall > settings.idleSeconds * 1000) void stop('idle');
    }, 1000).unref();
  }

  if (settings.socket) await rm(settings.socket, { force: true }); // a stale socket of a crashed instance
  await new Promise<void>((resolve) => (settings.socket ? server.listen(settings.socket, resolve) : server.listen(settings.port, settings.host, resolve)));
  await definition.setup?.(base);
  ready = true;
  // PORT=0 lets the system pick the port; the platform learns it from the ready message.
  const address = server.address();
  const where = typeof address === 'object' && address ? { port: address.port } : { socket: settings.socket };
  log.info(where, 'ready');
  // A local platform that started this process with an IPC channel hears it at once (no polling).
  process.send?.({ ready: true, ...where });
}
