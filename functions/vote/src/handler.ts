import { Agent, request as httpRequest } from 'node:http';
import { HttpError, json, type FunctionContext, type FunctionDefinition, type FunctionRequest } from '@platform/function-contract';
import type { VoteMessage } from '@voting/fn-record-vote/message';
import { parseVote } from './parse-vote.js';
import { COOKIE_NAME, cookieValue, newVoter, readVoter, setCookieHeader, signVoter } from './voter-cookie.js';

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/** The gateway refused the votes (4xx): sending them again cannot help. */
class Refused extends Error {}

/** Waits before each post sent again: a gateway that has just gone leaves the name's addresses soon after. */
const AGAIN_AFTER_MS = [0, 250, 750];

/**
 * Posts queued votes to the gateway; resolves once it answered 202 (durably queued). When the
 * gateway process it reached has just gone (a broken or refused connection, a host no longer
 * there, no answer in time, a stopping gateway's 5xx), the post is sent again on a new
 * connection, which reaches a live one. That is safe whatever the first post did: a vote queued
 * twice is recorded once (record-vote keeps the newest of each voter).
 */
async function post(gatewayUrl: string, body: string, callId: string, invokeToken: string | undefined): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await postOnce(gatewayUrl, body, callId, invokeToken);
    } catch (error) {
      const wait = AGAIN_AFTER_MS[attempt];
      if (error instanceof Refused || wait === undefined) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

function postOnce(gatewayUrl: string, body: string, callId: string, invokeToken: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${gatewayUrl}/async-function/record-vote`,
      {
        method: 'POST',
        agent,
        timeout: 4_000,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-parent-call-id': callId,
          // record-vote is private: only functions, with the platform's token, may queue calls to it.
          ...(invokeToken ? { 'x-invoke-token': invokeToken } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status === 202) resolve();
          else reject(new (status >= 400 && status < 500 ? Refused : Error)(`gateway answered ${status}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('gateway did not answer in time')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Votes in one queued call at most (record-vote takes the batch in one statement). */
const MAX_BATCH = 50;
/** Queue calls in flight at once at most: a second starts only for a full batch. */
const MAX_POSTS = 4;
/** Longest wait for more votes before a queue call (see flush). */
const MAX_LINGER_MS = 50;
const pending: Array<{ message: VoteMessage; callId: string; resolve: () => void; reject: (error: unknown) => void }> = [];
let posting = 0;
let lingering: NodeJS.Timeout | undefined;

/**
 * Group commit: while a queue call is in flight, the votes that arrive wait for it and then share
 * the next call, one JSON array (record-vote takes one message or a batch). Under load each call
 * then carries many votes, and every call saved is saved again downstream (a queued message, a
 * call record, a record-vote invocation); a lone vote waits for nothing. A full batch does not
 * wait: it gets a call of its own, up to MAX_POSTS at once (bursts, or a call held up by a
 * retry). Each vote still answers only after the call holding it was durably queued; a failed
 * call fails every vote in it.
 *
 * When votes arrive faster than calls complete (the call that just ended carried more than one),
 * the next call waits as long as that one took, up to MAX_LINGER_MS, and carries what came
 * meanwhile too: about twice the votes per call, for a wait of one call more (see bench/CHANGES.md).
 */
function enqueue(gatewayUrl: string, invokeToken: string | undefined, message: VoteMessage, callId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    pending.push({ message, callId, resolve, reject });
    if (pending.length === 1 || pending.length === MAX_BATCH) queueMicrotask(() => flush(gatewayUrl, invokeToken));
  });
}

function flush(gatewayUrl: string, invokeToken: string | undefined, lingerMs = 0): void {
  if (lingering) {
    if (pending.length < MAX_BATCH) return;
    clearTimeout(lingering);
    lingering = undefined;
  }
  if (lingerMs > 0 && posting === 0 && pending.length > 0 && pending.length < MAX_BATCH) {
    lingering = setTimeout(
      () => {
        lingering = undefined;
        flush(gatewayUrl, invokeToken);
      },
      Math.min(lingerMs, MAX_LINGER_MS),
    );
    return;
  }
  while (pending.length > 0 && posting < MAX_POSTS && (posting === 0 || pending.length >= MAX_BATCH)) {
    const batch = pending.splice(0, MAX_BATCH);
    const body = batch.length === 1 ? JSON.stringify(batch[0]!.message) : JSON.stringify(batch.map((p) => p.message));
    posting++;
    const started = Date.now();
    post(gatewayUrl, body, batch.map((p) => p.callId).join(','), invokeToken)
      .then(
        () => {
          for (const p of batch) p.resolve();
        },
        (error: unknown) => {
          for (const p of batch) p.reject(error);
        },
      )
      .finally(() => {
        posting--;
        flush(gatewayUrl, invokeToken, batch.length > 1 ? Date.now() - started : 0);
      });
  }
}

/**
 * The vote function. `now` is its clock (ms), which only breaks ties between votes one browser
 * sent at once: a voter's votes are ordered by the count in its cookie, never by clocks.
 */
export function voteFunction(now: () => number = Date.now): FunctionDefinition {
  let tick = 0;
  /** Microseconds, strictly increasing within this instance. */
  const votedAt = () => {
    tick = (tick + 1) % 1000;
    return now() * 1000 + tick;
  };

  async function castVote(request: FunctionRequest, context: FunctionContext) {
    const { vote, form } = parseVote(request);
    const secret = context.secret('cookie-secret');
    const cookie = cookieValue(request.headers.cookie, COOKIE_NAME);
    const voter = cookie === undefined ? newVoter() : readVoter(secret, cookie);
    if ('error' in voter) throw new HttpError(400, voter.error);
    const next = { id: voter.id, seq: voter.seq + 1 };
    const message: VoteMessage = { voterId: next.id, vote, seq: next.seq, votedAt: votedAt() };
    try {
      await enqueue(context.env.GATEWAY_URL!, context.secret('gateway-invoke-token'), message, context.callId);
    } catch (error) {
      context.log.warn({ err: error }, 'vote not queued');
      throw new HttpError(503, 'the vote could not be queued; please try again', { 'retry-after': '1' });
    }
    const headers = { 'set-cookie': setCookieHeader(signVoter(secret, next)), 'cache-control': 'no-store' };
    // The original's form post: answer like a form handler, back to the page.
    if (form) return { status: 303, headers: { ...headers, location: '/' }, body: '' };
    return json(200, { vote, voterId: next.id, instance: context.instance }, headers);
  }

  return {
    async handler(request, context) {
      if (request.method === 'GET' || request.method === 'HEAD') {
        const { OPTION_A: a = 'Cats', OPTION_B: b = 'Dogs' } = context.env;
        return json(200, { question: `${a} vs ${b}!`, options: { a, b } }, { 'cache-control': 'no-store' });
      }
      if (request.method !== 'POST') throw new HttpError(405, `method ${request.method} not allowed: use GET or POST`, { allow: 'GET, POST' });
      return castVote(request, context);
    },
  };
}

export const definition = voteFunction();
