import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import fc from 'fast-check';
import { startTestGateway, type TestGateway } from './harness.js';
import { site as pages } from '@platform/core/pages';
import { report } from './faults.js';

// Property-based fuzzing of the vote endpoints and the gateway's routes: random methods, paths,
// bodies, content types, encodings, cookies and huge headers. Every answer is a 4xx (with a JSON
// error) or a correct answer of a read-only route; never a 5xx, never a crash, and nothing is
// queued or recorded.
let t: TestGateway;
/** The gateway behind the pages, as the app serves it (static pages first, then the gateway's routes). */
let site: Server;
let port: number;
beforeAll(async () => {
  t = await startTestGateway();
  const apps = join(import.meta.dirname, '..', '..');
  site = createServer(
    pages(
      [
        ['/result', join(apps, 'result/dist')],
        ['/', join(apps, 'vote/dist')],
      ],
      t.gateway,
    ),
  );
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  port = (site.address() as { port: number }).port;
});
afterAll(async () => {
  site.closeAllConnections();
  await new Promise((r) => site.close(r));
  await t.close();
});

interface Attempt {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

function send({ method, path, headers, body }: Attempt): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const sent = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : body;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, timeout: 5_000, headers: { ...headers, 'content-length': String(sent.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within 5 s to ${method} ${path.slice(0, 80)}`)));
    req.on('error', reject);
    req.end(sent);
  });
}

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
const anyText = fc.oneof(
  printable,
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
);
// Never a well-formed vote for a or b: those are the only requests that may change state.
const notAVote = (text: string) => !/"vote"\s*:\s*"[ab]"/.test(text) && !/(^|&)vote=[ab](&|$)/.test(text);

const contentType = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=latin1',
    'application/json; charset=koi8-r',
    'application/x-www-form-urlencoded',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    '',
    ';;;',
    'application/json; charset=',
  ),
  printable,
);

const cookie = fc.oneof(
  fc.constant(undefined),
  printable.map((v) => `voter_id=${v}`),
  fc.tuple(fc.stringMatching(/^[0-9a-f]{0,40}$/), printable).map(([id, mac]) => `voter_id=${id}.${mac}`),
  fc.constantFrom(
    'voter_id=',
    'voter_id',
    '=;=;',
    'voter_id=a.b.c',
    `voter_id=${'a'.repeat(32)}.${'A'.repeat(22)}`,
    'voter_id=%00',
    'a=1; voter_id=x; voter_id=y',
  ),
  printable,
);

const encoding = fc.constantFrom(undefined, 'gzip', 'deflate', 'br', 'identity', 'x-unknown', 'gzip, gzip');

const votePath = fc.constantFrom('/function/vote', '/', '/function/vote/', '/function/vote/x/y', '/function/vote?vote=a', '/function/vote?%zz');
const segment = fc.oneof(
  printable.map((s) => encodeURIComponent(s)),
  fc.constantFrom('..', '%2e%2e', '..%2F..%2Fetc%2Fpasswd', '%00', 'VOTE', 'vote%00', 'a'.repeat(300), '-', '%', '%ff', 'record-vote%2F..', '.', '~'),
  fc.string({ unit: 'binary', maxLength: 30 }).map((s) => encodeURIComponent(s)),
);
const otherPath = fc.oneof(
  fc
    .tuple(fc.constantFrom('/function/', '/async-function/', '/system/function/', '/system/calls/', '/system/scale-function/'), segment, fc.option(segment))
    .map(([prefix, name, rest]) => `${prefix}${name}${rest === null ? '' : `/${rest}`}`),
  fc.webPath().map((p) => p || '/'),
  fc.constantFrom(
    '/system/functions',
    '/healthz',
    '/metrics',
    '/system/openapi.json',
    '/function/results',
    '/function/results/options',
    '//',
    '/function',
    '/async-function',
  ),
  fc.constantFrom(
    '/result/',
    '/result/../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/assets/..%2f..%2fpackage.json',
    '/index.html',
    '/result/index.html%00',
    '/.env',
    '/../.data/secrets/cookie-secret',
  ),
);

const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');

const attempt: fc.Arbitrary<Attempt> = fc
  .record({
    method: fc.oneof(fc.constant('POST'), method),
    path: fc.oneof(votePath, otherPath),
    contentType,
    cookie,
    encoding,
    text: anyText.filter(notAVote),
    compress: fc.boolean(),
    bigBody: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    hugeHeader: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: 8_000, max: 40_000 }) }),
    extraHeaders: fc.dictionary(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), printable, { maxKeys: 3 }),
  })
  .map(({ method, path, contentType, cookie, encoding, text, compress, bigBody, hugeHeader, extraHeaders }) => {
    let body = Buffer.from(bigBody ? text.repeat(Math.ceil(20_000 / Math.max(1, text.length))) : text);
    if (compress && encoding === 'gzip') body = gzipSync(body);
    const headers: Record<string, string> = { ...extraHeaders };
    if (contentType) headers['content-type'] = contentType;
    if (cookie !== undefined) headers.cookie = cookie;
    if (encoding !== undefined) headers['content-encoding'] = encoding;
    if (hugeHeader !== null) headers['x-padding'] = 'p'.repeat(hugeHeader);
    return { method, path, headers, body };
  });

/** Routes that may answer 2xx to a request that changes nothing (reads, the vote page's question). */
const readOnly = (a: Attempt) => a.method === 'GET' || a.method === 'HEAD' || a.method === 'OPTIONS' || /^\/function\/results(\/|\?|$)/.test(a.path);

async function state() {
  const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM votes');
  return { votes: rows[0]!.n, queued: await t.queue.depth() };
}

// Break it catches: the error handler answering 500 to a body the gateway could not read (a corrupt compressed body, an unknown encoding or charset, too large) instead of its 4xx.
it('answers any request with a 4xx or a correct answer, never a 5xx, and changes nothing', { timeout: 120_000 }, async () => {
  const before = await state();
  const statuses: Record<number, number> = {};
  await fc.assert(
    fc.asyncProperty(attempt, async (a) => {
      const response = await send(a);
      statuses[response.status] = (statuses[response.status] ?? 0) + 1;
      expect(response.status, `${a.method} ${a.path.slice(0, 80)} answered ${response.status}: ${response.body.slice(0, 200)}`).toBeLessThan(500);
      if (response.status >= 400 && response.status !== 431 && a.method !== 'HEAD') {
        // Errors are JSON naming the problem (431 is Node's own answer to oversized headers, before any route).
        expect(String(response.headers['content-type'])).toMatch(/application\/json/);
        expect(typeof (JSON.parse(response.body) as { error?: unknown }).error).toBe('string');
      } else if (response.status < 400) {
        expect(readOnly(a) || response.status === 404, `${a.method} ${a.path} answered ${response.status}`).toBe(true);
      }
      expect(await state()).toEqual(before);
    }),
    { numRuns: 600 },
  );
  // Still serving: a real vote goes through and is recorded.
  const ok = await fetch(`${t.url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"a"}' });
  expect(ok.status).toBe(200);
  report(['fuzzed requests (600 runs, fast-check):', ['answers by status', statuses], ['state before = after', before]]);
});
