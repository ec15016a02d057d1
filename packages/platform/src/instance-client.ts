import { Agent, request } from 'node:http';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import { InvocationError } from './errors.js';

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

/** Sends one invocation to a warm instance's `POST /_/invoke`. */
export function invokeInstance(url: string, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
  const payload = JSON.stringify(invocation);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...target(url),
        method: 'POST',
        agent,
        signal,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            reject(new InvocationError(502, `instance answered ${res.statusCode}: ${text.slice(0, 200)}`));
            return;
          }
          try {
            resolve(JSON.parse(text) as FunctionResponse);
          } catch {
            reject(new InvocationError(502, 'instance answered with an invalid response'));
          }
        });
      },
    );
    req.on('error', (error) => reject(signal.aborted ? signal.reason : error));
    req.end(payload);
  });
}
