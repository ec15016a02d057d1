import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { rm } from 'node:fs/promises';
import { INSTANCE_HEADER, INVOKE_TOKEN_ENV, INVOKE_TOKEN_HEADER, MAX_INVOCATION_BYTES, type FunctionDefinition, type Invocation } from './types.js';
import type { InstanceSettings } from './context.js';
import { baseContext, createLogger } from './context.js';
import { parseInvocation, runHandler } from './invoke.js';

/** A stopping instance exits only once no call has arrived for this long. */
const QUIET_MS = 300;
/** How long what a refused caller still sends is read and dropped before its connection closes. */
const LINGER_MS = 2_000;

/** A body over MAX_INVOCATION_BYTES: reading it stopped there. */
class TooLarge extends Error {}

/**
 * The request's body as text (events, not an async iterator: one call's body is one or two
 * chunks); rejects with TooLarge as soon as it passes MAX_INVOCATION_BYTES, keeping nothing more.
 */
function readText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_INVOCATION_BYTES) {
        // Nothing more is kept: the rest flows away unread until the connection closes (see refuse).
        req.off('data', onData);
        chunks.length = 0;
        return reject(new TooLarge());
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Answers and closes the connection, keeping nothing more of the request. Node closes it once
 * the answer is written (destroySoon), but a connection closed with bytes of the caller unread is
 * reset, and the caller may lose the answer: so it is only half-closed, what still comes is
 * dropped, and it closes LINGER_MS later (a lingering close).
 */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  const socket = req.socket;
  socket.destroySoon = () => {
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
  req.resume();
  res.setHeader('connection', 'close');
  send(res, status, { error: message });
}

/**
 * Whether the call carries the instance's credential, compared in a time that depends on the
 * credential's length only, never on where a guess first differs. Plain code rather than
 * node:crypto's timingSafeEqual: loading that module would add to every instance's cold start.
 */
function carriesToken(req: IncomingMessage, expected: string): boolean {
  const given = req.headers[INVOKE_TOKEN_HEADER];
  if (typeof given !== 'string') return false;
  let difference = given.length ^ expected.length;
  // Past the end of `given`, charCodeAt is NaN: `| 0` makes it 0, which no credential's character is.
  for (let i = 0; i < expected.length; i++) difference |= expected.charCodeAt(i) ^ (given.charCodeAt(i) | 0);
  return difference === 0;
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
 * instance (INSTANCE_HEADER) get 421, calls without the instance's credential 401, bodies over
 * MAX_INVOCATION_BYTES 413: these run nothing.
 */
export async function runWarm(definition: FunctionDefinition, settings: InstanceSettings): Promise<void> {
  if (!settings.invokeToken) throw new Error(`${INVOKE_TOKEN_ENV} is not set: a warm instance runs only calls carrying the credential its platform gave it`);
  const token = settings.invokeToken;
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
    const meant = req.headers[INSTANCE_HEADER];
    // Before the credential: another instance's caller holds that one's, and must learn to go elsewhere.
    if (meant !== undefined && meant !== settings.instance) {
      lastRequest = Date.now();
      return send(res, 421, { error: `this address serves instance ${settings.instance} of ${settings.name}, not ${String(meant)}` });
    }
    if (!carriesToken(req, token)) return refuse(req, res, 401, `calls to this instance need its credential (${INVOKE_TOKEN_HEADER})`);
    lastRequest = Date.now();
    if (Number(req.headers['content-length']) > MAX_INVOCATION_BYTES) return refuse(req, res, 413, `an invocation is at most ${MAX_INVOCATION_BYTES} bytes`);
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
        if (error instanceof TooLarge) return refuse(req, res, 413, `an invocation is at most ${MAX_INVOCATION_BYTES} bytes`);
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
