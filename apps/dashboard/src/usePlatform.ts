import { useEffect, useState } from 'react';
import { io } from 'socket.io-client';

export interface LiveInstance {
  id: string;
  pid?: number;
  startedAt: number;
  coldStartMs: number;
  reason: string;
}

export interface LiveFunction {
  name: string;
  mode: string;
  maxInstances: number;
  idleSeconds: number;
  timeoutSeconds: number;
  instances: LiveInstance[];
  replicas: number;
  inFlight: number;
  waiting: number;
  invocationCount: number;
  coldStarts: number;
  callsPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number } | null;
  lastErrors: Array<{ at: number; status: number; message: string }>;
}

export interface TimelineEvent {
  at: number;
  function: string;
  kind: 'started' | 'stopped' | 'scaled';
  instance?: string;
  detail: string;
}

export interface Snapshot {
  at: number;
  functions: LiveFunction[];
  queueDepth: number | null;
  timeline: TimelineEvent[];
}

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'unauthorized';

const TOKEN_KEY = 'gateway-admin-token';

/**
 * The gateway's platform snapshots over socket.io (namespace /system). Every message is the
 * whole state, so what is shown is right after a reconnect; the last state stays while offline.
 */
export function usePlatform(token: string | null): { snapshot: Snapshot | null; connection: Connection } {
  const [snapshot, setSnapshot] = useState<Snapshot | null>(null);
  const [connection, setConnection] = useState<Connection>('connecting');

  useEffect(() => {
    const socket = io('/system', { forceNew: true, auth: token ? { token } : {} });
    let retry: ReturnType<typeof setTimeout> | undefined;
    const connectLater = () => {
      clearTimeout(retry);
      retry = setTimeout(() => socket.connect(), 2_000);
    };
    socket.on('snapshot', (next: Snapshot) => {
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
