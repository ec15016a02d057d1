import { useEffect, useState } from 'react';
import { io } from 'socket.io-client';
import { parseScores, type Scores } from './scores';

export type Connection = 'connecting' | 'live' | 'reconnecting';

/** Connected but no scores yet (e.g. the results function is starting): call it live after this. */
const SETTLE_MS = 3_000;
/** Before connecting again when socket.io will not do it by itself. */
const RETRY_MS = 2_000;

/**
 * Scores pushed by the server over socket.io (event `scores`, sent on connect and after
 * each change). The last scores stay while the connection is down.
 */
export function useLiveScores(): { scores: Scores | null; connection: Connection } {
  const [scores, setScores] = useState<Scores | null>(null);
  const [connection, setConnection] = useState<Connection>('connecting');

  useEffect(() => {
    // Same origin, default path /socket.io, whatever path the page itself is served from.
    const socket = io({ forceNew: true });
    let settle: ReturnType<typeof setTimeout> | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;

    const connectLater = () => {
      clearTimeout(retry);
      retry = setTimeout(() => socket.connect(), RETRY_MS);
    };

    socket.on('connect', () => {
      // Live once this connection has brought the current scores, so that what is shown is current.
      clearTimeout(settle);
      settle = setTimeout(() => setConnection('live'), SETTLE_MS);
    });

    socket.on('scores', (payload: unknown) => {
      const next = parseScores(payload);
      if (!next) return;
      setScores(next);
      if (socket.connected) {
        clearTimeout(settle);
        setConnection('live');
      }
    });

    socket.on('disconnect', (reason) => {
      clearTimeout(settle);
      setConnection('reconnecting');
      // Closed by the server: socket.io does not reconnect on its own in that case.
      if (reason === 'io server disconnect') connectLater();
    });

    socket.on('connect_error', () => {
      setConnection('reconnecting');
      // Refused by the server (not a network error): socket.io leaves it to us.
      if (!socket.active) connectLater();
    });

    return () => {
      clearTimeout(settle);
      clearTimeout(retry);
      socket.off();
      socket.disconnect();
    };
  }, []);

  return { scores, connection };
}
