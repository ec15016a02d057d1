import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { serverTimeouts, TIMEOUT_MARGIN_SECONDS } from '@platform/core/timeouts';

// `patient` may take 3 s (its manifest's timeoutSeconds); the server's timeouts come from it.
const functionsDir = join(import.meta.dirname, 'fixtures', 'timeouts');

describe('timeouts: the manifests are the one source of truth', () => {
  it('derives the server timeouts from the longest function timeout plus a margin', () => {
    const derived = serverTimeouts([{ timeoutSeconds: 5 }, { timeoutSeconds: 600 }]);
    expect(derived.timeout).toBe((600 + TIMEOUT_MARGIN_SECONDS) * 1_000);
    expect(derived.requestTimeout).toBe(derived.timeout);
    expect(derived.headersTimeout).toBeLessThanOrEqual(derived.requestTimeout);
    expect(derived.keepAliveTimeout).toBeGreaterThan(600_000);
    expect(serverTimeouts([{ timeoutSeconds: 1 }]).keepAliveTimeout).toBe(65_000);
  });

  describe('through a running gateway', () => {
    let t: TestGateway;
    beforeAll(async () => {
      t = await startTestGateway({ functionsDir, options: { auth: { token: 'admin' } } });
    });
    afterAll(async () => t.close());

    it('lets a call run as long as its manifest allows, and answers 504 past it, never a cut connection', async () => {
      expect(t.server.timeout).toBe((3 + TIMEOUT_MARGIN_SECONDS) * 1_000);
      await fetch(`${t.url}/function/patient`); // warm, so the call below is all function time
      // A fixed 2 s socket timeout (like any fixed proxy or server timeout shorter than the
      // manifest's) would cut this 2.5 s call; the derived one lets it finish.
      const saved = t.server.timeout;
      t.server.timeout = 2_000;
      await expect(fetch(`${t.url}/function/patient?sleep=2500`)).rejects.toThrow(/fetch failed/);
      t.server.timeout = saved;
      const slow = await fetch(`${t.url}/function/patient?sleep=2500`);
      expect(slow.status).toBe(200);
      // Past the manifest's 3 s: the gateway's own 504, with a JSON error, not a dropped socket.
      const late = await fetch(`${t.url}/function/patient?sleep=4000`);
      expect(late.status).toBe(504);
      expect(await late.json()).toEqual({ error: 'function patient did not answer within 3 s' });
    });

    // Break it catches: server timeouts fixed at start, cutting the calls of a function deployed
    // (or changed) later with a longer timeout.
    it('follows a change of the manifest deployed while it runs', async () => {
      const manifest = JSON.parse(await readFile(join(functionsDir, 'patient', 'function.json'), 'utf8')) as { timeoutSeconds: number };
      const put = (timeoutSeconds: number) =>
        fetch(`${t.url}/system/functions`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: 'Bearer admin' },
          body: JSON.stringify({ ...manifest, timeoutSeconds }),
        });
      expect((await put(20)).status).toBe(202);
      expect(t.server.timeout).toBe((20 + TIMEOUT_MARGIN_SECONDS) * 1_000);
      expect((await fetch(`${t.url}/function/patient?sleep=6000`)).status).toBe(200);
      expect((await put(manifest.timeoutSeconds)).status).toBe(202);
      expect(t.server.timeout).toBe((manifest.timeoutSeconds + TIMEOUT_MARGIN_SECONDS) * 1_000);
    });
  });
});
