import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, repoRoot, waitUntil } from '@platform/test-services';
import { MemberRegistry } from '@platform/core/cluster/members';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';
import { check } from './openapi-check.js';

const cli = join(repoRoot, 'packages', 'cli', 'bin', 'fn.mjs');
const versionOf = (pkg: string) => (JSON.parse(readFileSync(join(repoRoot, pkg, 'package.json'), 'utf8')) as { version: string }).version;
const platformRelease = versionOf('packages/platform');
const cliRelease = versionOf('packages/cli');
/** The commit checked out here, as git itself says; "unknown" outside a git checkout. */
const head = (() => {
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  return git.status === 0 ? git.stdout.trim() : 'unknown';
})();
const shown = head === 'unknown' ? platformRelease : `${platformRelease} (${head.slice(0, 12)})`;

/** Runs `fn ...args` against `gateway`, with no admin token at hand. */
const fn = (gateway: string, args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env: { PATH: process.env.PATH, GATEWAY_URL: gateway, GATEWAY_ADMIN_TOKEN_FILE: join(repoRoot, 'no-such-token-file') } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });

describe('fn status and fn version against a tier', () => {
  let t: TestGateway;
  let members: MemberRegistry;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    database = await createTestDatabase(process.env.DATABASE_URL!);
    members = new MemberRegistry({ database: database.url });
    t = await startTestGateway({
      functionsDir: fixtureFunctions,
      database: database.url,
      options: { members, publicUrl: 'http://vote.example.test:8080/' },
    });
    await members.join({ role: 'controller', host: 'alpha', pid: 4242, url: 'http://127.0.0.1:9', inFlight: () => 0, leader: () => true });
    await members.join({ role: 'edge', host: 'alpha', pid: 4243, url: t.url, inFlight: () => 0 });
  });
  afterAll(async () => {
    await t.close();
    await members.close();
    await database.drop();
  });

  // Break it catches: /system/info missing from the document or answering another shape, or a
  // release or commit other than the code's.
  it("answers GET /system/info in OpenFaaS's shape: the release, the commit, the runtime, the architecture", async () => {
    const info = await check('GET', '/system/info', await fetch(`${t.url}/system/info`));
    const version = { release: platformRelease, sha: head };
    expect(info).toEqual({ provider: { provider: '@platform/core', orchestration: 'process', version }, version, arch: process.arch });
  });

  // Break it catches: fn version printing the CLI's version for the gateway's, or no runtime.
  it("prints the CLI's version and the gateway's, as text or JSON", async () => {
    const text = await fn(t.url, ['version']);
    expect(text).toEqual({
      code: 0,
      stdout: [`fn       ${cliRelease}`, `gateway  ${shown} at ${t.url}`, `runtime  process (@platform/core ${shown}), ${process.arch}`, ''].join('\n'),
      stderr: '',
    });
    const json = JSON.parse((await fn(t.url, ['--json', 'version'])).stdout) as { cli: { release: string }; gateway: { version: { sha: string } } };
    expect(json).toMatchObject({ cli: { release: cliRelease }, gateway: { version: { release: platformRelease, sha: head } } });
    expect((await fn(t.url, ['--version'])).stdout).toBe(`${cliRelease}\n`);
  });

  // Break it catches: a function left out, figures of one edge only or of the wrong field (latency
  // percentiles not passed on by /system/functions), the members or the vote URL not shown.
  it('shows the versions, the members, the queue, the vote URL and every function with its figures in one screen', async () => {
    // crashy keeps its one instance 30 s: started first (a cold start may outlast a call's timeout on a busy machine), then called.
    await waitUntil(async () => (await fetch(`${t.url}/function/crashy`)).status === 200, { timeoutMs: 20_000, what: 'crashy to answer' });
    for (let i = 0; i < 3; i++) expect((await fetch(`${t.url}/function/crashy?sleep=5`)).status).toBe(200);
    const { invocationCount, coldStarts } = (await (await fetch(`${t.url}/system/function/crashy`)).json()) as { invocationCount: number; coldStarts: number };
    const status = await fn(t.url, ['status']);
    expect(status.code).toBe(0);
    expect(status.stderr).toBe('');
    const lines = status.stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      `gateway  ${t.url}: ${shown}, process runtime, ${process.arch}`,
      'tier     1 controller, 1 edge',
      'queue    0 calls waiting',
      'vote at  http://vote.example.test:8080/',
    ]);
    expect(lines[5]).toMatch(/^ROLE +HOST +PID +IN FLIGHT +CPU +SINCE \(UTC\)$/);
    expect(status.stdout).toMatch(/^controller \(leader\) +alpha +4242 +0 +0\.00 +\d\d:\d\d:\d\d$/m);
    expect(status.stdout).toMatch(/^edge +alpha +4243 +0 +0\.00 +\d\d:\d\d:\d\d$/m);
    expect(status.stdout).toMatch(/^FUNCTION {2}MODE {5}REPLICAS {2}AVAILABLE {2}IN FLIGHT {2}WAITING {2}INVOCATIONS {2}COLD STARTS {2}P50 MS {2}P95 MS$/m);
    // crashy: its instance, its calls, the latency of the last minute's (the slowest took 5 ms or more); the others never called.
    expect(status.stdout).toMatch(new RegExp(`^crashy +warm +1/1 +1 +0 +0 +${invocationCount} +${coldStarts} +\\d+(\\.\\d)? +([5-9]|\\d{2,})(\\.\\d)?$`, 'm'));
    expect(status.stdout).toMatch(/^once +oneshot +0\/\d+ +0 +0 +0 +0 +0 +- +-$/m);
    expect(status.stdout).toMatch(/^sleepy +warm +0\/2 +0 +0 +0 +0 +0 +- +-$/m);

    const json = JSON.parse((await fn(t.url, ['status', '--json'])).stdout) as {
      info: { provider: { orchestration: string } };
      members: Array<{ role: string }>;
      queueDepth: number;
      publicUrl: string;
      functions: Array<{ name: string; invocationCount: number; latencyMs: { p50: number } | null }>;
    };
    expect(json).toMatchObject({ info: { provider: { orchestration: 'process' } }, queueDepth: 0, publicUrl: 'http://vote.example.test:8080/' });
    expect(json.members.map((m) => m.role)).toEqual(['controller', 'edge']);
    expect(json.functions.map((f) => [f.name, f.invocationCount])).toEqual([
      ['crashy', invocationCount],
      ['once', 0],
      ['sleepy', 0],
    ]);
    expect(json.functions[0]!.latencyMs!.p50).toBeGreaterThan(0);
  });
});

describe('fn status against a gateway alone', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions, options: { auth: { token: 'status-token', readPublic: false } } });
  });
  afterAll(async () => t.close());

  // Break it catches: fn status failing where the gateway keeps no member list or has no public URL,
  // reading /metrics (the queue's depth) without the token when reads are private, or /system/info
  // put behind the read check.
  it('says there is no member list and no public URL, and reads with the admin token when reads are private', async () => {
    const refused = await fn(t.url, ['status']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^fn: 401: credentials required/);
    const status = await fn(t.url, ['status', '--token', 'status-token']);
    expect(status.code).toBe(0);
    expect(status.stdout.split('\n').slice(1, 4)).toEqual([
      'tier     one gateway (no member list)',
      'queue    0 calls waiting',
      'vote at  no public URL set (PUBLIC_URL)',
    ]);
    expect(status.stdout).toMatch(/^sleepy +warm +0\/2 +0 +0 +0 +0 +0 +- +-$/m);
    // The versions stay public, as /healthz is: fn version needs no token.
    expect((await fn(t.url, ['version'])).code).toBe(0);
  });
});
