// Which of several controllers leads: the one holding a PostgreSQL advisory lock on a connection
// of its own. The others stand by and try for the lock every check interval; the leader confirms
// every check interval that it still holds it.
//
// Never two leaders acting at once. The leader acts only within a lease: `isLeader()` is true
// until checkIntervalMs + checkTimeoutMs after the last confirming query was *sent* (the server
// answered it later, so it saw the client then at the earliest). Every failure (an error, an
// unanswered check, the connection's end) steps down before anything else, and only then is the
// connection destroyed. A leader cut off from PostgreSQL by the network cannot learn that it lost
// the lock; what saves us is the server's side of the connection: with the TCP keepalive and user
// timeout set below, the server drops a silent client, and with it the lock, no sooner than
// SERVER_DROPS_SILENT_CLIENT_MS (5 s) after it last heard from it, which is after that last
// confirming query was sent. So the cut-off leader's lease (3 s with the defaults) runs out first,
// and LEASE_MARGIN_MS more remains for a write it checked `isLeader()` for just before to land.
// Without these settings the server would keep the lock of a vanished client for hours (the
// OS's keepalive defaults), or for about 15 minutes of retransmissions if it had data unacknowledged.
//
// Needs a direct session to PostgreSQL (no pooler in transaction mode: the lock is per session).
import { createHash } from 'node:crypto';
import pg from 'pg';

const SERVER_KEEPALIVE = { idleS: 2, intervalS: 1, count: 3 };
/** How long PostgreSQL keeps the session (and lock) of a client it no longer hears from. */
export const SERVER_DROPS_SILENT_CLIENT_MS = (SERVER_KEEPALIVE.idleS + SERVER_KEEPALIVE.intervalS * SERVER_KEEPALIVE.count) * 1000;
/** At least this much time between a cut-off leader's lease running out and the server freeing its lock. */
export const LEASE_MARGIN_MS = 1000;

// Settable by any user; the user timeout covers a partition that starts while the server has
// an answer unacknowledged, when keepalive probes are not sent.
const SERVER_KEEPALIVE_SQL = [
  `SET tcp_keepalives_idle = ${SERVER_KEEPALIVE.idleS}`,
  `SET tcp_keepalives_interval = ${SERVER_KEEPALIVE.intervalS}`,
  `SET tcp_keepalives_count = ${SERVER_KEEPALIVE.count}`,
  `SET tcp_user_timeout = ${SERVER_DROPS_SILENT_CLIENT_MS}`,
].join('; ');

// A bigint advisory lock shows in pg_locks as classid (its high 32 bits) and objid (its low ones), objsubid 1.
const CONFIRM_SQL = `SELECT count(*)::int AS held FROM pg_locks
  WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() AND objsubid = 1 AND classid = $1::oid AND objid = $2::oid`;

export interface LeadershipOptions {
  /** A direct session to PostgreSQL; every contender of a name must use the same database. */
  databaseUrl: string;
  /** What is led, e.g. 'controller': contenders of the same name compete for one lock. */
  name: string;
  /** How often a standby tries for the lock and the leader confirms it holds it. */
  checkIntervalMs?: number;
  /** How long a connection, a try or a confirmation may take before the connection counts as lost. */
  checkTimeoutMs?: number;
  log?: (message: string) => void;
  /** Called with true when this contender starts leading, with false when it stops (before its lock can be freed). */
  onChange?: (leader: boolean) => void;
}

/** 63 bits of SHA-256 of the name: the same in every process, and non-negative, so pg_locks shows it unchanged. */
export function lockKey(name: string): bigint {
  return createHash('sha256').update(`leadership:${name}`).digest().readBigUInt64BE(0) >> 1n;
}

/** One contender for the lead. `start()` once, `stop()` once; `isLeader()` before every write made as leader. */
export class Leadership {
  readonly name: string;
  readonly checkIntervalMs: number;
  readonly checkTimeoutMs: number;
  /** How long after a confirming query was sent this contender may still act as leader. */
  readonly leaseMs: number;
  readonly #databaseUrl: string;
  readonly #key: bigint;
  readonly #log: (message: string) => void;
  readonly #onChange: (leader: boolean) => void;
  #leading = false;
  /** performance.now() at which the lease runs out. */
  #leaseEnd = Number.NEGATIVE_INFINITY;
  /** The connection in use; a dropped one is no longer it, whatever its queries still answer. */
  #client: pg.Client | undefined;
  #wake: (() => void) | undefined;
  #stopped = false;
  #running: Promise<void> | undefined;

  constructor({ databaseUrl, name, checkIntervalMs = 1000, checkTimeoutMs = 2000, log = () => {}, onChange = () => {} }: LeadershipOptions) {
    if (!(checkIntervalMs > 0 && checkTimeoutMs > 0)) throw new RangeError('checkIntervalMs and checkTimeoutMs must be positive');
    if (checkIntervalMs + checkTimeoutMs + LEASE_MARGIN_MS > SERVER_DROPS_SILENT_CLIENT_MS) {
      throw new RangeError(
        `checkIntervalMs + checkTimeoutMs (${checkIntervalMs + checkTimeoutMs} ms) must stay ${LEASE_MARGIN_MS} ms under the ` +
          `${SERVER_DROPS_SILENT_CLIENT_MS} ms after which PostgreSQL frees the lock of a cut-off leader, or two could lead at once`,
      );
    }
    this.name = name;
    this.checkIntervalMs = checkIntervalMs;
    this.checkTimeoutMs = checkTimeoutMs;
    this.leaseMs = checkIntervalMs + checkTimeoutMs;
    this.#databaseUrl = databaseUrl;
    this.#key = lockKey(name);
    this.#log = log;
    this.#onChange = onChange;
  }

  /** Leads, and its lease has not run out: false as soon as a confirmation is overdue, even if no timer has run yet. */
  isLeader(): boolean {
    return this.#leading && performance.now() < this.#leaseEnd;
  }

  start(): void {
    if (this.#running) throw new Error(`leadership of "${this.name}" was already started`);
    this.#running = this.#run();
  }

  /** Steps down, then ends the connection, which frees the lock at once for a standby. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stepDown('stopping');
    const client = this.#client;
    this.#client = undefined;
    this.#wake?.();
    if (client) await within(client.end(), this.checkTimeoutMs, 'ending the connection').catch(() => client.connection.stream.destroy());
    await this.#running;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      await this.#session();
      if (!this.#stopped) await this.#pause(this.checkIntervalMs);
    }
  }

  /** One connection: tries for the lock or confirms it every interval, until the connection is dropped. */
  async #session(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#databaseUrl,
      connectionTimeoutMillis: this.checkTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 1000,
      application_name: `leadership:${this.name}`,
    });
    this.#client = client;
    client.on('error', (error) => this.#drop(client, error));
    client.on('end', () => this.#drop(client, new Error('the connection ended')));
    try {
      await within(client.connect(), this.checkTimeoutMs, 'connecting');
      await within(client.query(SERVER_KEEPALIVE_SQL), this.checkTimeoutMs, 'setting keepalives');
      while (this.#client === client) {
        const sentAt = performance.now();
        if (this.#leading) await this.#confirm(client, sentAt);
        else await this.#tryToLead(client, sentAt);
        // Checks start one interval apart, so that a lease is renewed before it runs out.
        await this.#pause(this.checkIntervalMs - (performance.now() - sentAt));
      }
    } catch (error) {
      this.#drop(client, error);
    }
  }

  async #tryToLead(client: pg.Client, sentAt: number): Promise<void> {
    const { rows } = await within(
      client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [String(this.#key)]),
      this.checkTimeoutMs,
      'trying for the lock',
    );
    if (!rows[0]?.locked || this.#client !== client) return;
    this.#leading = true;
    this.#leaseEnd = sentAt + this.leaseMs;
    this.#log(`leading "${this.name}"`);
    this.#notify(true);
  }

  async #confirm(client: pg.Client, sentAt: number): Promise<void> {
    // An answer after the lease ran out would come too late to extend it.
    const timeoutMs = Math.min(this.checkTimeoutMs, this.#leaseEnd - sentAt);
    const params = [String(this.#key >> 32n), String(this.#key & 0xffffffffn)];
    const { rows } = await within(client.query<{ held: number }>(CONFIRM_SQL, params), timeoutMs, 'confirming the lock');
    if (rows[0]?.held !== 1) throw new Error('the lock is no longer held');
    if (this.#client === client) this.#leaseEnd = sentAt + this.leaseMs;
  }

  /** The connection failed: step down first, then cut it off (its lock is freed when the server notices) and wake the loop. */
  #drop(client: pg.Client, reason: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    const message = reason instanceof Error ? reason.message : String(reason);
    this.#stepDown(message);
    client.connection.stream.destroy();
    this.#log(`leadership of "${this.name}": connection dropped (${message}); connecting again`);
    this.#wake?.();
  }

  #stepDown(reason: string): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#leaseEnd = Number.NEGATIVE_INFINITY;
    this.#log(`no longer leading "${this.name}": ${reason}`);
    this.#notify(false);
  }

  #notify(leader: boolean): void {
    try {
      this.#onChange(leader);
    } catch (error) {
      this.#log(`leadership of "${this.name}": onChange threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Waits `ms`, or less if the connection is dropped or leadership stopped. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), Math.max(0, ms));
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }
}

/** `promise`, or a rejection after `ms` if it has not settled by then. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
