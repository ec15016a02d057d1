import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { CallbackTarget } from './callback-url.js';

/**
 * POSTs to a checked callback target and answers the status. The connection goes to the address
 * that was checked (a lookup that answers only it; no pooled connection), so a name that changes
 * its address after the check cannot redirect it; TLS still verifies the URL's host name.
 * Redirects are not followed: a 3xx is the callback's answer.
 */
export function postCallback({ url, address, family }: CallbackTarget, body: string, headers: Record<string, string>, timeoutMs = 10_000): Promise<number> {
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: pinned,
        agent: false,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (response) => {
        // Only the status matters; the body is drained and dropped.
        response.on('error', () => {});
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
