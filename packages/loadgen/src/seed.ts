// The load: votes sent by `concurrency` loops over keep-alive connections. node:http rather than
// fetch: on a small machine fetch costs several times the CPU per request and the load generator
// would measure itself instead of the app.
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { choiceAt, LatencyRecorder, round, type LatencySummary, type VoterPolicy } from './stats.js';

export type SeedMode = 'form' | 'json';

export interface SeedOptions {
  /** Base URL of the vote side, e.g. http://127.0.0.1:8080. */
  url: string;
  votes: number;
  concurrency: number;
  /** Weights of a and b. */
  ratio: [number, number];
  voters: VoterPolicy;
  /** `form`: the original's `POST /` with `vote=a` (303); `json`: `POST /function/vote` (200). */
  mode: SeedMode;
  /** Called every `tickMs` while running, and once at the end. */
  onTick?: (progress: SeedProgress) => void;
  tickMs?: number;
  /** Stops sending new votes; calls in flight finish. */
  signal?: AbortSignal;
  /** Per-request timeout in ms (counted as an error). */
  timeoutMs?: number;
}

export interface SeedProgress {
  done: number;
  total: number;
  accepted: number;
  failed: number;
  /** Votes answered per second since the start. */
  rate: number;
}

export interface SeedSummary {
  url: string;
  mode: SeedMode;
  voters: string;
  concurrency: number;
  ratio: string;
  sent: number;
  accepted: number;
  /** Answers other than the accepting status, by status code. */
  rejected: Record<string, number>;
  /** Requests without an answer (connection refused, reset, timeout), by error code. */
  errors: Record<string, number>;
  /** rejected + errors. */
  failed: number;
  /** Accepted votes by option. */
  votes: { a: number; b: number };
  /** Distinct voter ids the server handed out in accepted answers (rows to expect in `votes`). */
  distinctVoters: number;
  durationMs: number;
  /** Accepted votes per second over the whole run. */
  votesPerSecond: number;
  latencyMs: LatencySummary;
  /** Epoch ms when the first request left and the last answer came. */
  startedAt: number;
  endedAt: number;
}

interface Answer {
  status: number;
  setCookie: string[] | undefined;
}

function send(agent: Agent, url: URL, path: string, contentType: string, body: string, cookie: string | undefined, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': contentType, 'content-length': Buffer.byteLength(body) };
    if (cookie) headers.cookie = cookie;
    const req = request({ host: url.hostname, port: url.port || 80, path, method: 'POST', agent, headers, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookie: res.headers['set-cookie'] }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'TIMEOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/** The voter_id cookie pair (`voter_id=<value>`) in Set-Cookie headers. */
export function voterCookie(setCookie: string[] | undefined): string | undefined {
  for (const header of setCookie ?? []) {
    const pair = header.split(';', 1)[0]!.trim();
    if (pair.startsWith('voter_id=')) return pair;
  }
  return undefined;
}

export async function runSeed(options: SeedOptions): Promise<SeedSummary> {
  const { votes: total, concurrency, ratio, voters, mode } = options;
  if (!Number.isInteger(total) || total < 0) throw new Error('votes must be an integer >= 0');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('concurrency must be an integer >= 1');
  const base = new URL(options.url);
  if (base.protocol !== 'http:') throw new Error(`only http:// URLs are supported, got ${options.url}`);
  const prefix = base.pathname.replace(/\/$/, '');
  const path = mode === 'form' ? `${prefix}/` : `${prefix}/function/vote`;
  const contentType = mode === 'form' ? 'application/x-www-form-urlencoded' : 'application/json';
  const acceptedStatus = mode === 'form' ? 303 : 200;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });

  const latency = new LatencyRecorder();
  const rejected: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const votes = { a: 0, b: 0 };
  const voterIds = new Set<string>();
  /** The pool's cookies, by voter number (`voter_id=...`), once the server set them. */
  const cookies: Array<string | undefined> = voters.kind === 'pool' ? new Array<string | undefined>(voters.size) : [];
  let next = 0;
  let done = 0;
  let accepted = 0;
  let failed = 0;

  const startedAt = Date.now();
  const t0 = performance.now();
  const progress = (): SeedProgress => {
    const seconds = (performance.now() - t0) / 1_000;
    return { done, total, accepted, failed, rate: seconds > 0 ? Math.round(done / seconds) : 0 };
  };
  const ticker = options.onTick ? setInterval(() => options.onTick!(progress()), options.tickMs ?? 200) : undefined;

  async function loop(): Promise<void> {
    while (next < total && !options.signal?.aborted) {
      const index = next++;
      const choice = choiceAt(index, ratio);
      const voter = voters.kind === 'pool' ? index % voters.size : -1;
      const body = mode === 'form' ? `vote=${choice}` : `{"vote":"${choice}"}`;
      const began = performance.now();
      try {
        const answer = await send(agent, base, path, contentType, body, voter >= 0 ? cookies[voter] : undefined, timeoutMs);
        latency.record(performance.now() - began);
        if (answer.status === acceptedStatus) {
          accepted++;
          votes[choice]++;
          const cookie = voterCookie(answer.setCookie);
          if (cookie) {
            voterIds.add(cookie.slice('voter_id='.length).split('.')[0]!);
            if (voter >= 0) cookies[voter] = cookie;
          }
        } else {
          failed++;
          rejected[answer.status] = (rejected[answer.status] ?? 0) + 1;
        }
      } catch (error) {
        latency.record(performance.now() - began);
        failed++;
        const code = (error as { code?: string }).code ?? (error as Error).message;
        errors[code] = (errors[code] ?? 0) + 1;
      }
      done++;
    }
  }

  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(total, 1)) }, loop));
  } finally {
    if (ticker) clearInterval(ticker);
    agent.destroy();
  }
  options.onTick?.(progress());
  const durationMs = performance.now() - t0;
  return {
    url: options.url,
    mode,
    voters: voters.kind === 'new' ? 'new' : `pool:${voters.size}`,
    concurrency,
    ratio: `${ratio[0]}:${ratio[1]}`,
    sent: done,
    accepted,
    rejected,
    errors,
    failed,
    votes,
    distinctVoters: voterIds.size,
    durationMs: round(durationMs, 1),
    votesPerSecond: durationMs > 0 ? Math.round((accepted / durationMs) * 1_000) : 0,
    latencyMs: latency.summary(),
    startedAt,
    endedAt: Date.now(),
  };
}

/** The summary as the lines `seed` prints. */
export function formatSummary(summary: SeedSummary): string {
  const l = summary.latencyMs;
  const counts = (record: Record<string, number>) =>
    Object.entries(record)
      .map(([key, n]) => `${key}: ${n}`)
      .join(', ') || 'none';
  return [
    `target      ${summary.url} (${summary.mode}, voters ${summary.voters}, concurrency ${summary.concurrency}, ratio ${summary.ratio})`,
    `sent        ${summary.sent}`,
    `accepted    ${summary.accepted} (a: ${summary.votes.a}, b: ${summary.votes.b}; ${summary.distinctVoters} distinct voters)`,
    `rejected    ${counts(summary.rejected)}`,
    `errors      ${counts(summary.errors)}`,
    `latency ms  p50 ${l.p50}  p95 ${l.p95}  p99 ${l.p99}  max ${l.max}`,
    `throughput  ${summary.votesPerSecond} votes/s accepted over ${(summary.durationMs / 1_000).toFixed(2)} s`,
  ].join('\n');
}
