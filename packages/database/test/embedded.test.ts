import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

  // Break it catches: Linux's limit on macOS, where a socket path of 104 to 107 bytes is cut short
  // (PostgreSQL refuses it and does not start).
  it("keeps to macOS's shorter socket paths (103 bytes) there", () => {
    expect(unixSocketDir(`/${'d'.repeat(102 - '/.s.PGSQL.54329'.length)}`, 54329, 'darwin')).toBeDefined();
    expect(unixSocketDir(`/${'d'.repeat(103 - '/.s.PGSQL.54329'.length)}`, 54329, 'darwin')).toBeUndefined();
    expect(unixSocketDir(`/${'d'.repeat(103 - '/.s.PGSQL.54329'.length)}`, 54329, 'linux')).toBeDefined();
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

/** The SQLSTATE PostgreSQL answers a login with `password`, or none when it lets it in. */
async function loginError(url: string, password: string): Promise<string | undefined> {
  const wrong = new URL(url);
  wrong.password = password;
  const client = new pg.Client({ connectionString: wrong.toString(), connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  } finally {
    await client.end().catch(() => {});
  }
}

describe("the embedded server's logins", () => {
  let server: EmbeddedPostgresHandle | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // Break it catches: `trust` left in pg_hba.conf (of a new data folder, or of one an older start
  // made), which lets any local process in as the superuser by naming it; or `password`, sent in the clear.
  it('refuses every login without the password, over the unix socket and TCP, in new data folders and in older ones that said trust', async () => {
    dir = await mkdtemp(join(tmpdir(), 'embedded-auth-'));
    await chmod(dir, 0o755); // reachable by the postgres user it runs as under root
    const port = await freePort();
    const overTcp = (url: string) => {
      const tcp = new URL(url);
      tcp.searchParams.delete('host');
      tcp.hostname = '127.0.0.1';
      return tcp.toString();
    };
    const check = async (handle: EmbeddedPostgresHandle) => {
      expect(new URL(handle.url).searchParams.get('host')).toBe(handle.dataDir);
      for (const url of [handle.url, overTcp(handle.url)]) {
        expect({ url: redactedUrl(url), code: await loginError(url, 'not-the-password') }).toEqual({ url: redactedUrl(url), code: '28P01' });
        expect(await loginError(url, new URL(url).password)).toBeUndefined();
      }
      const client = new pg.Client({ connectionString: handle.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ auth_method: string }>('SELECT DISTINCT auth_method FROM pg_hba_file_rules');
        expect(rows.map((r) => r.auth_method)).toEqual(['scram-sha-256']);
      } finally {
        await client.end();
      }
    };
    server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), port });
    await check(server);
    await server.stop();
    server = undefined;
    // A data folder as an older start left it: every rule `trust`.
    const hba = join(dir, 'pg', 'data', 'pg_hba.conf');
    await writeFile(hba, (await readFile(hba, 'utf8')).replaceAll('scram-sha-256', 'trust'));
    const logs: string[] = [];
    server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), port, log: (message) => logs.push(message) });
    await check(server);
    expect(logs.join('\n')).toContain('it now asks every one for it (scram-sha-256)');
  });
});

const redactedUrl = (url: string) => url.replace(/:[^:@/]*@/, ':***@');
