// Where the controller keeps the functions deployed through the API: the platform's table in
// PostgreSQL (they survive restarts and a change of leader), or this process's memory.
import pg from 'pg';
import type { FunctionManifest } from '@platform/function-contract/manifest';

export interface FunctionStore {
  /** The manifests as they were kept: checked again before they run, as the rules may have changed since. */
  list(): Promise<unknown[]>;
  /** Adds or replaces the function of that name. */
  put(manifest: FunctionManifest): Promise<void>;
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

export function functionStore(databaseUrl: string | undefined): FunctionStore {
  return databaseUrl ? new PostgresFunctionStore(databaseUrl) : new MemoryFunctionStore();
}

class PostgresFunctionStore implements FunctionStore {
  private readonly pool: pg.Pool;
  private closed: Promise<void> | undefined;

  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5_000, query_timeout: 10_000 });
    this.pool.on('error', () => {}); // a broken idle connection is replaced on the next query
  }

  async list(): Promise<unknown[]> {
    const { rows } = await this.pool.query<{ manifest: unknown }>('SELECT manifest FROM platform_functions ORDER BY name');
    return rows.map((r) => r.manifest);
  }

  async put(manifest: FunctionManifest): Promise<void> {
    await this.pool.query(
      `INSERT INTO platform_functions (name, manifest) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET manifest = EXCLUDED.manifest, updated_at = now()`,
      [manifest.name, JSON.stringify(manifest)],
    );
  }

  async remove(name: string): Promise<void> {
    await this.pool.query('DELETE FROM platform_functions WHERE name = $1', [name]);
  }

  close(): Promise<void> {
    this.closed ??= this.pool.end();
    return this.closed;
  }
}

class MemoryFunctionStore implements FunctionStore {
  private readonly kept = new Map<string, FunctionManifest>();

  async list(): Promise<unknown[]> {
    return [...this.kept.values()];
  }

  async put(manifest: FunctionManifest): Promise<void> {
    this.kept.set(manifest.name, manifest);
  }

  async remove(name: string): Promise<void> {
    this.kept.delete(name);
  }

  async close(): Promise<void> {}
}
