import { Agent, request } from 'node:http';
import { INSTANCE_HEADER, INVOKE_TOKEN_HEADER, type FunctionResponse, type Invocation } from '@platform/function-contract';
import type { InstanceInfo } from './capacity.js';
import { InstanceGoneError, InvocationError } from './errors.js';

/**
 * Connection errors that mean the request was never received whole: nothing listens at the
 * address, or the instance closed the connection before the request was written (EPIPE: it
 * exited as the call was sent). Its handler, which needs the whole
 * body, never ran.
 */
const notReceived = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT', 'EPIPE']);

// Keep-alive connections to warm instances: a call costs a write and a read, no handshake.
const agent = new Agent({ keepAlive: true, maxSockets: 1024, keepAliveMsecs: 10_000 });

type Target = { hostname: string; port: string; path: string } | { socketPath: string; path: string };

/**
 * Where an instance's `/_/invoke` is, parsed once per instance URL rather than on every call:
 * `http://host:port`, or `unix:/path/to.sock` for an instance on this machine's unix socket.
 */
const targets = new Map<string, Target>();
function target(url: string): Target {
  let found = targets.get(url);
  if (!found) {
    if (url.startsWith('unix:')) {
      found = { socketPath: url.slice('unix:'.length), path: '/_/invoke' };
    } else {
      const parsed = new URL(`${url}/_/invoke`);
      found = { hostname: parsed.hostname.replace(/^\[|\]$/g, ''), port: parsed.port || '80', path: parsed.pathname };
    }
    if (targets.size > 10_000) targets.clear(); // instances come and go; keep the map bounded
    targets.set(url, found);
  }
  return found;
}

/**
 * Sends one invocation to a warm instance's `POST /_/invoke`, naming the instance meant and
 * carrying its credential: an
 * InstanceGoneError says the call was not received (nothing listens there, or another instance
 * took the address), so it ran nowhere.
 */
export function invokeInstance(instance: InstanceInfo, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const payload = JSON.stringify(invocation);
  return new Promise((resolve, reject) => {
    // The signal is watched here rather than handed to request(), which would also watch every
    // way the request may end (several listeners per call).
    const abort = () => req.destroy(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    const fail = (error: unknown) => {
      signal.removeEventListener('abort', abort);
      reject(error);
    };
    const req = request(
      {
        ...target(instance.url),
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          [INSTANCE_HEADER]: instance.id,
          [INVOKE_TOKEN_HEADER]: instance.invokeToken,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          // Refusals of the contract's server, before any handler ran.
          if (res.statusCode === 421) return fail(new InstanceGoneError(instance.id, `its address now serves another instance (${text.slice(0, 200)})`));
          if (res.statusCode === 503) return fail(new InstanceGoneError(instance.id, 'it is stopping'));
          if (res.statusCode !== 200) return fail(new InvocationError(502, `instance answered ${res.statusCode}: ${text.slice(0, 200)}`));
          let response: FunctionResponse;
          try {
            response = JSON.parse(text) as FunctionResponse;
          } catch {
            return fail(new InvocationError(502, 'instance answered with an invalid response'));
          }
          signal.removeEventListener('abort', abort);
          resolve(response);
        });
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (signal.aborted) fail(signal.reason);
      else if (notReceived.has(error.code ?? '')) fail(new InstanceGoneError(instance.id, `the call did not reach it (${error.code})`));
      else fail(error);
    });
    req.end(payload);
  });
}
