import type { Worker } from 'node:cluster';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { Server as SocketServer } from 'socket.io';

/**
 * Many edge processes on one port pair, with socket.io sessions that stay on the process that
 * holds them. The primary accepts each connection, reads its first bytes and hands it to a
 * worker: the one that owns the socket.io session named in the request (`sid=`), else the next
 * in turn. Plain round robin would send a long-polling client's requests to processes that never
 * heard of its session ("Session ID unknown").
 */
interface StickyMessage {
  type: 'platform:sticky';
  server: string;
  head: string;
}
interface SessionMessage {
  type: 'platform:session';
  sid: string;
  open: boolean;
}

/**
 * How long the primary waits for a new connection's first bytes before closing it: a client that
 * connects and says nothing must not hold a file descriptor for ever. Every real request starts
 * at once, and Chromium itself gives up an unused preconnection after 10 s. Once handed over, the
 * edge's own server timeouts take over.
 */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;

const sidOf = (head: Buffer) => /[?&]sid=([\w-]{1,64})/.exec(head.subarray(0, 2_048).toString('latin1').split('\r\n', 1)[0] ?? '')?.[1];

/** In the primary: listens on each named port and hands every connection to a worker. */
export function stickyBalancer(ports: Array<{ name: string; port: number; host: string }>, workers: () => Worker[]) {
  const owners = new Map<string, Worker>();
  let turn = 0;
  const pick = (sid: string | undefined): Worker | undefined => {
    const owner = sid ? owners.get(sid) : undefined;
    if (owner && !owner.isDead()) return owner;
    const ready = workers().filter((w) => w.isConnected() && !w.isDead());
    return ready.length ? ready[turn++ % ready.length] : undefined;
  };
  const follow = (worker: Worker) =>
    worker.on('message', (message: SessionMessage) => {
      if (message?.type !== 'platform:session') return;
      if (message.open) owners.set(message.sid, worker);
      else owners.delete(message.sid);
    });
  const forget = (worker: Worker) => {
    for (const [sid, owner] of owners) if (owner === worker) owners.delete(sid);
  };
  const servers: NetServer[] = ports.map(({ name }) =>
    createServer((socket: Socket) => {
      socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
      socket.once('data', (first: Buffer) => {
        socket.setTimeout(0);
        socket.pause();
        const chunks = [first];
        for (let more = socket.read() as Buffer | null; more !== null; more = socket.read() as Buffer | null) chunks.push(more);
        const head = Buffer.concat(chunks);
        const worker = pick(sidOf(head));
        if (!worker) return socket.destroy();
        worker.send({ type: 'platform:sticky', server: name, head: head.toString('base64') } satisfies StickyMessage, socket, (error) => {
          if (error) socket.destroy();
        });
      });
      socket.on('error', () => socket.destroy());
    }),
  );
  return {
    follow,
    forget,
    async listen(): Promise<void> {
      await Promise.all(
        servers.map(
          (server, i) =>
            new Promise<void>((resolve, reject) => {
              server.once('error', reject);
              server.listen(ports[i]!.port, ports[i]!.host, () => resolve());
            }),
        ),
      );
    },
    close(): void {
      for (const server of servers) server.close();
    },
  };
}

/** In a worker: serves the connections the primary hands over on these (not listening) servers. */
export function acceptSticky(servers: Record<string, HttpServer>): void {
  process.on('message', (message: StickyMessage, socket: Socket | undefined) => {
    if (message?.type !== 'platform:sticky' || !socket) return;
    const server = servers[message.server];
    if (!server) return socket.destroy();
    server.emit('connection', socket);
    socket.unshift(Buffer.from(message.head, 'base64'));
    socket.resume();
  });
}

/** In a worker: tells the primary which socket.io sessions this process holds. */
export function reportSessions(io: SocketServer): void {
  io.engine.on('connection', (socket: { id: string; once(event: 'close', listener: () => void): void }) => {
    process.send?.({ type: 'platform:session', sid: socket.id, open: true } satisfies SessionMessage);
    socket.once('close', () => process.send?.({ type: 'platform:session', sid: socket.id, open: false } satisfies SessionMessage));
  });
}
