// The process runtime's warm instances listen on unix sockets, whose path must fit a socket
// address: 103 bytes on macOS, where the temporary folder is deep (/var/folders/…/T).
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadFunctions } from '@platform/function-contract/manifest';
import { invokeInstance } from '@platform/core/instance-client';
import { ProcessRuntime, socketFolderParent } from '@platform/core/runtimes/process';
import { fixtureFunctions } from './harness.js';

describe('where warm instances put their sockets', () => {
  // Break it catches: the socket folder always in TMPDIR, however deep (the socket path too long to listen on).
  it('in the temporary folder when a socket path fits there, else in /tmp', () => {
    expect(socketFolderParent('/tmp')).toBe('/tmp');
    // macOS's per-user temporary folder, as TMPDIR names it there.
    const macos = '/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T';
    expect(socketFolderParent(macos)).toBe(macos);
    expect(socketFolderParent(`/home/someone/${'deep/'.repeat(12)}tmp`)).toBe('/tmp');
  });

  let runtime: ProcessRuntime | undefined;
  let deep: string | undefined;
  const temporary = process.env.TMPDIR;
  afterEach(async () => {
    await runtime?.close();
    if (temporary === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = temporary;
    if (deep) rmSync(deep, { recursive: true, force: true });
  });

  // Break it catches: the socket kept in a TMPDIR too deep for a socket address (the instance
  // listens on a path the system cut short).
  it('answer calls with TMPDIR deeper than a socket address allows', { timeout: 20_000 }, async () => {
    deep = join(tmpdir(), `voting-${'deep-folder-'.repeat(7)}`);
    mkdirSync(deep, { recursive: true });
    expect(Buffer.byteLength(deep)).toBeGreaterThan(80);
    process.env.TMPDIR = deep;
    runtime = new ProcessRuntime({ env: {}, secret: () => undefined });
    const sleepy = (await loadFunctions(fixtureFunctions)).find((fn) => fn.name === 'sleepy')!;
    const instance = await runtime.startInstance(sleepy);
    const request = { method: 'GET', path: '/', query: {}, headers: {}, body: '' };
    const response = await invokeInstance(instance, { callId: 'c1', request }, AbortSignal.timeout(10_000));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body ?? '{}')).toMatchObject({ instance: instance.id });
    // Where the address says: an address too long is cut by the system, on both sides alike, so
    // that calls still arrive; but two cut alike are one socket.
    expect(existsSync(instance.url.slice('unix:'.length))).toBe(true);
    expect(instance.url).toMatch(/^unix:\/tmp\/fn-sockets-\d+-\w+\/[0-9a-f]{12}\.sock$/);
  });
});
