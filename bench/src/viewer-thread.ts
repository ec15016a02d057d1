// A share of the live viewers, in a thread of its own, so that their socket.io traffic does not
// slow the load generator that times the votes. Driven by messages from viewers.ts: it connects
// its viewers, answers what each holds, forgets what came before the measured load, and reports.
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { io, type Socket } from 'socket.io-client';

export type ToThread = 'latest' | 'reset' | 'report';
export type FromThread =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'latest'; totals: number[] }
  | { type: 'reset' }
  | { type: 'report'; at: number[][]; totals: number[][] };

/** Milliseconds on a clock every thread shares. */
export const clock = () => performance.timeOrigin + performance.now();

interface Viewer {
  socket: Socket;
  at: number[];
  totals: number[];
}

async function run(url: string, count: number): Promise<void> {
  const port = parentPort!;
  const viewers: Viewer[] = [];
  const failures: Record<string, number> = {};
  // In batches, as a room fills up; a viewer whose connection fails tries again, as the result page does.
  for (let i = 0; i < count; i += 250) {
    const batch = Array.from({ length: Math.min(250, count - i) }, () => {
      const viewer: Viewer = { socket: io(url, { transports: ['websocket'], forceNew: true }), at: [], totals: [] };
      viewer.socket.on('connect_error', (error) => {
        failures[error.message] = (failures[error.message] ?? 0) + 1;
      });
      viewer.socket.on('scores', (json: string) => {
        const scores = JSON.parse(json) as { a: number; b: number };
        viewer.at.push(clock());
        viewer.totals.push(scores.a + scores.b);
      });
      return viewer;
    });
    viewers.push(...batch);
    const deadline = Date.now() + 60_000;
    while (batch.some((v) => v.totals.length === 0)) {
      if (Date.now() > deadline) {
        const waiting = batch.filter((v) => v.totals.length === 0);
        const connected = waiting.filter((v) => v.socket.connected).length;
        port.postMessage({
          type: 'failed',
          message: `${waiting.length} viewers got no scores in 60 s (${connected} of them connected; connection failures: ${JSON.stringify(failures)})`,
        });
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  port.on('message', (message: ToThread) => {
    if (message === 'latest') port.postMessage({ type: 'latest', totals: viewers.map((v) => v.totals[v.totals.length - 1] ?? -1) });
    if (message === 'reset') {
      for (const v of viewers) {
        v.at.length = 0;
        v.totals.length = 0;
      }
      port.postMessage({ type: 'reset' });
    }
    if (message === 'report') {
      port.postMessage({ type: 'report', at: viewers.map((v) => v.at), totals: viewers.map((v) => v.totals) });
      for (const v of viewers) v.socket.close();
      port.close();
    }
  });
  port.postMessage({ type: 'ready' });
}

if (parentPort) {
  const { url, count } = workerData as { url: string; count: number };
  void run(url, count);
}
