// A TCP proxy on loopback that a test can cut like a network partition: frozen, it forwards no
// bytes either way and passes no close on, yet closes nothing itself, as a cable pulled would.
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Stops forwarding: bytes wait (as TCP would retransmit them), closes are not passed on. */
  freeze(): void;
  /** Forwards again, what waited first; a connection closed on one side meanwhile is closed on the other. */
  heal(): void;
  /** Destroys the connections to the target, as the target's keepalive does to a peer it no longer hears. */
  dropUpstream(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let frozen = false;
  const pairs = new Set<{ down: Socket; up: Socket }>();
  const server = createServer((down) => {
    const up = connect(targetPort, targetHost);
    const pair = { down, up };
    pairs.add(pair);
    for (const [from, to] of [
      [down, up],
      [up, down],
    ] as const) {
      from.on('data', (chunk) => to.write(chunk));
      from.on('error', () => {});
      from.on('close', () => {
        if (!frozen) to.destroy();
        if (down.destroyed && up.destroyed) pairs.delete(pair);
      });
      if (frozen) from.pause();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('the proxy has no port');
  return {
    port: address.port,
    freeze() {
      frozen = true;
      for (const { down, up } of pairs) {
        down.pause();
        up.pause();
      }
    },
    heal() {
      frozen = false;
      for (const { down, up } of pairs) {
        if (down.destroyed || up.destroyed) {
          down.destroy();
          up.destroy();
        } else {
          down.resume();
          up.resume();
        }
      }
    },
    dropUpstream() {
      for (const { up } of pairs) up.destroy();
    },
    async close() {
      for (const { down, up } of pairs) {
        down.destroy();
        up.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
