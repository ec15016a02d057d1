import { useEffect, useState } from 'react';
import { io } from 'socket.io-client';
import { PLATFORM_EVENT, PLATFORM_NAMESPACE, type PlatformSnapshot } from '@platform/protocol';

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'unauthorized';

const TOKEN_KEY = 'gateway-admin-token';

/**
 * The gateway's platform snapshots over socket.io (namespace /system). Every message is the
 * whole state, so what is shown is right after a reconnect; the last state stays while offline.
 */
export function usePlatform(token: string | null): { snapshot: PlatformSnapshot | null; connection: Connection } {
  const [snapshot, setSnapshot] = useState<PlatformSnapshot | null>(null);
  const [connection, setConnection] = useState<Connection>('connecting');

  useEffect(() => {
    const socket = io(PLATFORM_NAMESPACE, { forceNew: true, auth: token ? { token } : {} });
    let retry: ReturnType<typeof setTimeout> | undefined;
    const connectLater = () => {
      clearTimeout(retry);
      retry = setTimeout(() => socket.connect(), 2_000);
    };
    socket.on(PLATFORM_EVENT, (next: PlatformSnapshot) => {
      setSnapshot(next);
      setConnection('live');
    });
    socket.on('disconnect', (reason) => {
      setConnection('reconnecting');
      if (reason === 'io server disconnect') connectLater();
    });
    socket.on('connect_error', (error) => {
      if (error.message === 'unauthorized') {
        setConnection('unauthorized');
        return;
      }
      setConnection('reconnecting');
      if (!socket.active) connectLater();
    });
    return () => {
      clearTimeout(retry);
      socket.off();
      socket.disconnect();
    };
  }, [token]);

  return { snapshot, connection };
}

export const storedToken = () => sessionStorage.getItem(TOKEN_KEY);
export const storeToken = (token: string) => sessionStorage.setItem(TOKEN_KEY, token);
