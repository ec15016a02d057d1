import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@platform/test-services';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/index.js';
import { unixSocketDir } from '../src/embedded.js';

describe('unixSocketDir', () => {
  it('puts the socket in the data folder when its path fits a unix socket address', () => {
    expect(unixSocketDir('/srv/app/.data/postgres/data', 54329)).toBe('/srv/app/.data/postgres/data');
  });

  it('gives none for a folder whose socket path would be too long (TCP alone then)', () => {
    const deep = `/${'d'.repeat(95)}`;
    expect(unixSocketDir(deep, 54329)).toBeUndefined();
    // 107 bytes is the longest path a socket address holds.
    expect(unixSocketDir(`/${'d'.repeat(106 - '/.s.PGSQL.54329'.length)}`, 54329)).toBeDefined();
    expect(unixSocketDir(`/${'d'.repeat(107 - '/.s.PGSQL.54329'.length)}`, 54329)).toBeUndefined();
  });
});

describe('the embedded server', () => {
  let server: EmbeddedPostgresHandle | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is reached through its unix socket in the data folder, and still on 127.0.0.1', async () => {
    dir = await mkdtemp(join(tmpdir(), 'embedded-socket-'));
    await chmod(dir, 0o755); // reachable by the postgres user it runs as under root
    const port = await freePort();
    server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), port });
    const url = new URL(server.url);
    expect(url.searchParams.get('host')).toBe(server.dataDir);
    expect(existsSync(join(server.dataDir, `.s.PGSQL.${port}`))).toBe(true);
    // Not also in a folder every local user may enter.
    expect(existsSync(`/tmp/.s.PGSQL.${port}`)).toBe(false);
    const overSocket = new pg.Client({ connectionString: server.url });
    await overSocket.connect();
    try {
      // No client address: the connection is a unix socket's.
      expect((await overSocket.query('SELECT inet_client_addr() AS address')).rows[0].address).toBeNull();
    } finally {
      await overSocket.end();
    }
    url.searchParams.delete('host');
    url.hostname = '127.0.0.1';
    const overTcp = new pg.Client({ connectionString: url.toString() });
    await overTcp.connect();
    try {
      expect((await overTcp.query('SELECT host(inet_client_addr()) AS address')).rows[0].address).toBe('127.0.0.1');
    } finally {
      await overTcp.end();
    }
  });
});
