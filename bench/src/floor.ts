// The machine's floor for throughput: the same load (`seedLoad`, form posts, same concurrency)
// against a bare node:http server in its own process that answers 303 and does nothing else.
// A vote takes at least two such hops (client → gateway → vote function) plus its queueing, so
// this bounds what any vote path can reach on this machine.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { seedLoad } from './seed-load.js';

export async function httpFloor({ votes = 20_000, concurrency = 64 }: { votes?: number; concurrency?: number } = {}): Promise<number> {
  const server = spawn(process.execPath, [fileURLToPath(new URL('./floor-server.js', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [chunk] = (await once(server.stdout, 'data')) as [Buffer];
    const url = `http://127.0.0.1:${chunk.toString().trim()}`;
    const summary = await seedLoad(url, { votes, concurrency });
    if (summary.failed > 0) throw new Error(`the bare server failed ${summary.failed} requests`);
    return summary.votesPerSecond;
  } finally {
    server.kill('SIGTERM');
  }
}
