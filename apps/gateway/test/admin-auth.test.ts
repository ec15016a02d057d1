import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { ADMIN_FAILURES_PER_MINUTE, checkAdminToken, MIN_ADMIN_TOKEN_LENGTH } from '@platform/core/auth';
import { startEntryPoint } from './entry-point.js';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';

/** GET of an admin route from a loopback address of the test's choice; status and Retry-After. */
const adminGet = (url: string, from: string, credential: string) =>
  new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
    const req = request(`${url}/system/logs?name=crashy`, { localAddress: from, headers: { authorization: `Bearer ${credential}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });

describe('the admin token', () => {
  // Break it catches: any configured length accepted (a 6-character token guessed in minutes).
  it('is refused shorter than 16 characters, naming the secret and the minimum', () => {
    expect(MIN_ADMIN_TOKEN_LENGTH).toBe(16);
    expect(() => checkAdminToken('secret')).toThrow('the secret gateway-admin-token (or $GATEWAY_ADMIN_TOKEN) is 6 characters long: use at least 16');
    expect(() => checkAdminToken('')).toThrow(/0 characters long: use at least 16/);
    expect(() => checkAdminToken('x'.repeat(15))).toThrow(/gateway-admin-token/);
    expect(() => checkAdminToken('x'.repeat(16))).not.toThrow();
  });

  // Break it catches: the check not made on the way to a start (the app serving with a short token).
  it('stops the app at start when configured too short, before any database is started', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'voting-admin-token-'));
    let child: ChildProcess | undefined;
    try {
      const app = await startEntryPoint({ GATEWAY_ADMIN_TOKEN: 'admin' }, dataDir);
      child = app.child;
      // A deadline within the test's own, so that an app that did start is stopped below.
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([app.exited, new Promise<string>((resolve) => (timer = setTimeout(resolve, 20_000, 'still running after 20 s')))]);
      clearTimeout(timer);
      expect(code).toBe(1);
      expect(app.output()).toContain('gateway-admin-token (or $GATEWAY_ADMIN_TOKEN) is 5 characters long: use at least 16');
      expect(existsSync(join(dataDir, 'postgres'))).toBe(false);
    } finally {
      // An app that started after all is stopped (SIGTERM: it stops what it started).
      if (child && child.exitCode === null) {
        const stopped = new Promise((resolve) => child!.once('exit', resolve));
        child.kill();
        await stopped;
      }
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('failed admin authentications', () => {
  const token = 'admin-token-for-the-throttle-test';
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions, options: { auth: { token } } });
  });
  afterAll(async () => t.close());

  const attempt = (from: string, credential: string) => adminGet(t.url, from, credential);

  // Break it catches: failures never counted (guessing at full speed), or counted for every address
  // together (one guesser locking the operator out), or a throttled address's guesses still checked.
  it('are refused unchecked after 10 a minute from one address, and other addresses are unaffected', async () => {
    expect(ADMIN_FAILURES_PER_MINUTE).toBe(10);
    for (let i = 0; i < 10; i++) expect((await attempt('127.0.0.1', `guess-${i}`)).status).toBe(401);
    const refused = await attempt('127.0.0.1', 'guess-10');
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);
    // The right token from the throttled address is not even checked: no answer tells it apart.
    expect((await attempt('127.0.0.1', token)).status).toBe(429);
    // Another address: its own count, and the right token works.
    expect((await attempt('127.0.0.2', token)).status).toBe(200);
    expect((await attempt('127.0.0.2', 'wrong')).status).toBe(401);
  });

  // Break it catches: successes counted as failures (an operator's busy script locked out).
  it('leave successes alone: many good attempts from one address all succeed', async () => {
    for (let i = 0; i < ADMIN_FAILURES_PER_MINUTE + 5; i++) expect((await attempt('127.0.0.3', token)).status).toBe(200);
  });
});

describe("failed admin logins on the dashboard's live connection", () => {
  const token = 'admin-token-for-the-live-throttle-test';
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions, options: { auth: { token, readPublic: false } } });
  });
  afterAll(async () => t.close());

  /** A socket.io login to /system from a loopback address of the test's choice: connected, or the refusal's message. */
  const login = (from: string, credential: string) =>
    new Promise<string>((resolve) => {
      const socket: Socket = io(`${t.url}/system`, {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        auth: { token: credential },
        localAddress: from,
      } as Parameters<typeof io>[1]);
      socket.once('connect', () => {
        socket.close();
        resolve('connected');
      });
      socket.once('connect_error', (error) => {
        socket.close();
        resolve(error.message);
      });
    });

  // Break it catches: the live login checked without the count (guessing at full speed over
  // socket.io while the routes throttle), or keeping a count of its own apart from the routes'.
  it("count with the routes' failures: after 10, the right token is refused on both from that address", async () => {
    for (let i = 0; i < ADMIN_FAILURES_PER_MINUTE; i++) expect(await login('127.0.0.4', `guess-${i}`)).toBe('unauthorized');
    expect(await login('127.0.0.4', token)).toBe('unauthorized');
    expect((await adminGet(t.url, '127.0.0.4', token)).status).toBe(429);
    // Another address is unaffected.
    expect(await login('127.0.0.5', token)).toBe('connected');
  });
});
