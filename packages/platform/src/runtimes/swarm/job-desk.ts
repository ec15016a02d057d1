import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { hostname } from 'node:os';
import type Docker from 'dockerode';
import type { FunctionResponse, Invocation } from '@platform/function-contract';

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

interface PendingJob {
  invocation: Invocation;
  fetched: boolean;
  resolve: (response: FunctionResponse) => void;
}

/**
 * Where one-shot job tasks, which have no stdin, fetch their invocation and post their
 * response: `GET /invocations/<token>` once, then `POST` the response. Each call gets its own
 * unguessable token, valid until it is answered or given up.
 */
export class JobDesk {
  private readonly jobs = new Map<string, PendingJob>();
  private server?: Server;
  private listening?: Promise<void>;

  constructor(private readonly where: { host: string; port: number; listen?: string | undefined }) {}

  /** Opens a call: the URL its task uses, the response once posted, and `close` to give up on it. */
  async open(invocation: Invocation): Promise<{ url: string; token: string; answered: Promise<FunctionResponse>; close(): void }> {
    await this.listen();
    const token = randomBytes(16).toString('hex');
    const answered = new Promise<FunctionResponse>((resolve) => this.jobs.set(token, { invocation, fetched: false, resolve }));
    return {
      url: `http://${this.where.host}:${this.where.port}/invocations/${token}`,
      token,
      answered,
      close: () => this.jobs.delete(token),
    };
  }

  /** Stops listening; connections still open (a task that went away mid-request) are cut. */
  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    return closed;
  }

  private listen(): Promise<void> {
    this.listening ??= new Promise<void>((resolve, reject) => {
      const server = createServer(
        (req, res) =>
          void this.serve(req).then(
            ([status, body]) => res.writeHead(status, { 'content-type': 'application/json' }).end(body),
            () => res.writeHead(400).end(),
          ),
      );
      server.once('error', reject);
      server.listen(this.where.port, this.where.listen ?? '0.0.0.0', () => resolve());
      this.server = server;
    });
    return this.listening;
  }

  private async serve(req: IncomingMessage): Promise<[number, string]> {
    const token = /^\/invocations\/([0-9a-f]{32})$/.exec(req.url ?? '')?.[1];
    const job = token ? this.jobs.get(token) : undefined;
    if (!job) return [404, '{"error":"no such invocation"}'];
    if (req.method === 'GET' && !job.fetched) {
      job.fetched = true;
      return [200, JSON.stringify(job.invocation)];
    }
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) return [413, '{"error":"response too large"}'];
        chunks.push(chunk);
      }
      job.resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as FunctionResponse);
      this.jobs.delete(token!);
      return [204, ''];
    }
    return [405, '{"error":"use GET once, then POST"}'];
  }
}

/**
 * This process's own address on `network` when it runs in a container attached to it (a
 * container's host name is its ID), for job tasks to call back: a service name shared by several
 * processes would send a job's answer to any one of them, not the one waiting. Undefined when
 * not in such a container.
 */
export async function ownAddress(docker: Docker, network: string): Promise<string | undefined> {
  try {
    const self = await docker.getContainer(hostname()).inspect();
    if (self.Config.Hostname !== hostname()) return undefined;
    return self.NetworkSettings.Networks[network]?.IPAddress || undefined;
  } catch {
    return undefined;
  }
}
