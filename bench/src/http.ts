import { Agent, request, type IncomingMessage } from 'node:http';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP/1.1 call over `agent` (keep-alive), body read as text. */
export function call(
  agent: Agent,
  url: string,
  {
    method = 'GET',
    body,
    headers = {},
    socketPath,
  }: { method?: string; body?: string; headers?: Record<string, string> /** `url` is then the path on this unix socket. */; socketPath?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const allHeaders: Record<string, string | number> = { ...headers };
    if (body !== undefined) allHeaders['content-length'] = Buffer.byteLength(body);
    const options = { method, agent, headers: allHeaders, timeout: 30_000 };
    const req = socketPath ? request({ ...options, socketPath, path: url }, onResponse) : request(url, options, onResponse);
    function onResponse(res: IncomingMessage): void {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    }
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in time`)));
    req.on('error', reject);
    req.end(body);
  });
}

export function keepAlive(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 64 });
}
