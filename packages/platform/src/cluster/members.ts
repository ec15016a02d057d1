// The gateway tier's members (edges and controllers), each a row of platform_members that it
// refreshes every heartbeat. A member that stops refreshing (it crashed, or lost the database)
// drops out of lists after staleAfterMs; one that leaves deletes its row at once. Every time is the
// database's now(), so the members' clocks never matter.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';

export type MemberRole = 'edge' | 'controller';

/** A member as it last reported itself. */
export interface Member {
  id: string;
  role: MemberRole;
  host: string;
  pid: number;
  /** Where it can be reached, if it said. */
  url: string | null;
  /** True only for the leading controller (an edge never writes true). */
  leader: boolean;
  startedAt: Date;
  lastSeenAt: Date;
  /** Calls in flight at its last heartbeat. */
  inFlight: number;
  /** The share of one CPU core it used since the heartbeat before (0 where it does not say). */
  cpu: number;
  details: Record<string, unknown>;
}

export interface JoinOptions {
  role: MemberRole;
  /** Default: this machine's host name. */
  host?: string;
  /** Default: this process's pid. */
  pid?: number;
  url?: string;
  details?: Record<string, unknown>;
  /** Read at every heartbeat. */
  inFlight: () => number;
  /** Read at every heartbeat; controllers only (an edge never leads). */
  leader?: () => boolean;
  /** Read at every heartbeat: the share of a core used since the last (see cpuMeter). */
  cpu?: () => number;
}

/** The share of one core this process used since the last call: what an edge's heartbeat reports. */
export function cpuMeter(): () => number {
  let last = process.cpuUsage();
  let lastAt = process.hrtime.bigint();
  return () => {
    const now = process.hrtime.bigint();
    const used = process.cpuUsage(last);
    const elapsedUs = Number(now - lastAt) / 1_000;
    last = process.cpuUsage();
    lastAt = now;
    return elapsedUs > 0 ? (used.user + used.system) / elapsedUs : 0;
  };
}

/** One joined member. */
export interface Membership {
  readonly id: string;
  /** Writes a heartbeat now (e.g. once it leads, so that edges find it at once). Never throws. */
  refresh(): Promise<void>;
  /** Stops the heartbeats and deletes the row, so lists drop this member at once. Never throws. */
  leave(): Promise<void>;
}

export interface MemberRegistryOptions {
  /** The database: a URL (the registry opens and ends its own small pool), or a pool the caller ends. */
  database: string | pg.Pool;
  /** How often each joined member writes its heartbeat (default 1 s). */
  heartbeatMs?: number;
  /** A member not seen for this long is no longer listed (default 5 s). */
  staleAfterMs?: number;
  /** A member not seen for this long is deleted (default 60 s): rows of crashed members do not pile up. */
  forgetAfterMs?: number;
  log?: (message: string) => void;
}

// Rows of long-gone members, a bounded number per statement; rows another member is deleting are
// left to it, and so is a heartbeating member's own row ($2), which the same statement writes.
const FORGET = `
  forgotten AS (
    DELETE FROM platform_members WHERE id IN (
      SELECT id FROM platform_members
      WHERE last_seen_at < now() - $1::float8 * interval '1 millisecond' AND id IS DISTINCT FROM $2
      LIMIT 100 FOR UPDATE SKIP LOCKED))`;

// started_at is the database's time of the first heartbeat, kept by the member (and sent again) in
// case its row was forgotten meanwhile.
const HEARTBEAT = `
WITH ${FORGET}
INSERT INTO platform_members (id, role, host, pid, url, details, leader, in_flight, cpu, started_at, last_seen_at)
VALUES ($2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, COALESCE($11::timestamptz, now()), now())
ON CONFLICT (id) DO UPDATE SET leader = excluded.leader, in_flight = excluded.in_flight, cpu = excluded.cpu, last_seen_at = now()
RETURNING started_at`;

// Controllers first, then edges, each oldest first.
const LIST = `
WITH ${FORGET}
SELECT id, role, host, pid, url, leader, started_at, last_seen_at, in_flight, cpu, details
FROM platform_members WHERE last_seen_at >= now() - $3::float8 * interval '1 millisecond'
ORDER BY role, started_at, id`;

interface Row {
  id: string;
  role: MemberRole;
  host: string;
  pid: number;
  url: string | null;
  leader: boolean;
  started_at: Date;
  last_seen_at: Date;
  in_flight: number;
  cpu: number;
  details: Record<string, unknown>;
}

/** A query or connection that hangs this long fails: a heartbeat is retried well before the default staleAfterMs. */
const TIMEOUT_MS = 2_000;

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Joins members of this process to the tier, and lists the tier's live members. */
export class MemberRegistry {
  readonly heartbeatMs: number;
  readonly staleAfterMs: number;
  readonly forgetAfterMs: number;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #log: (message: string) => void;
  readonly #joined = new Set<Membership>();
  #closing: Promise<void> | undefined;

  constructor({ database, heartbeatMs = 1_000, staleAfterMs = 5_000, forgetAfterMs = 60_000, log = () => {} }: MemberRegistryOptions) {
    if (!(heartbeatMs > 0 && staleAfterMs > heartbeatMs && forgetAfterMs >= staleAfterMs)) {
      throw new RangeError('members: need 0 < heartbeatMs < staleAfterMs <= forgetAfterMs');
    }
    this.heartbeatMs = heartbeatMs;
    this.staleAfterMs = staleAfterMs;
    this.forgetAfterMs = forgetAfterMs;
    this.#log = log;
    this.#ownsPool = typeof database === 'string';
    if (typeof database === 'string') {
      this.#pool = new pg.Pool({
        connectionString: database,
        max: 2,
        connectionTimeoutMillis: TIMEOUT_MS,
        query_timeout: TIMEOUT_MS,
        application_name: 'members',
      });
      // An idle connection that breaks (the database restarted) must not crash the process: the next query opens another.
      this.#pool.on('error', (error) => this.#log(`members: database connection lost: ${error.message}`));
    } else {
      this.#pool = database;
    }
  }

  /** Registers a member and writes its first heartbeat (a failed one is logged and retried, never thrown). */
  async join(options: JoinOptions): Promise<Membership> {
    const { role, host = hostname(), pid = process.pid } = options;
    if (role !== 'edge' && role !== 'controller') throw new TypeError(`members: role must be "edge" or "controller", not "${String(role)}"`);
    const id = `${role}-${host}-${pid}-${randomBytes(2).toString('hex')}`;
    const fixed = [id, role, host, pid, options.url ?? null, JSON.stringify(options.details ?? {})];
    const leader = role === 'controller' ? (options.leader ?? (() => false)) : () => false;
    const cpu = options.cpu ?? (() => 0);
    let startedAt: Date | null = null;
    let failing = false;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let beating: Promise<void> = Promise.resolve();

    const beat = async () => {
      try {
        const inFlight = Math.max(0, Math.round(options.inFlight()) || 0);
        const share = Math.max(0, Number(cpu()) || 0);
        const params = [this.forgetAfterMs, ...fixed, leader(), inFlight, share, startedAt];
        const { rows } = await this.#pool.query<{ started_at: Date }>(HEARTBEAT, params);
        startedAt ??= rows[0]?.started_at ?? null;
        if (failing) this.#log(`member ${id}: heartbeats written again`);
        failing = false;
      } catch (error) {
        // Once per outage: a database down for minutes would otherwise log every second.
        if (!failing) this.#log(`member ${id}: heartbeat failed, retrying every ${this.heartbeatMs} ms: ${message(error)}`);
        failing = true;
      }
    };
    // Each heartbeat starts once the last has ended: a slow database never piles them up.
    const next = () => {
      if (stopped) return;
      timer = setTimeout(() => {
        beating = beat().then(next);
      }, this.heartbeatMs);
      timer.unref();
    };

    const membership: Membership = {
      id,
      refresh: async () => {
        await beating;
        if (!stopped) await beat();
      },
      leave: async () => {
        if (stopped) return;
        stopped = true;
        clearTimeout(timer);
        this.#joined.delete(membership);
        // A heartbeat still in flight would write the row again after the delete.
        await beating;
        await this.#pool.query('DELETE FROM platform_members WHERE id = $1', [id]).catch((error: unknown) => {
          this.#log(`member ${id}: could not delete its row (it goes stale instead): ${message(error)}`);
        });
      },
    };
    this.#joined.add(membership);
    beating = beat().then(next);
    await beating;
    return membership;
  }

  /** The members seen within staleAfterMs. Throws when the database cannot be read. */
  async list(): Promise<Member[]> {
    const { rows } = await this.#pool.query<Row>(LIST, [this.forgetAfterMs, null, this.staleAfterMs]);
    return rows.map((row) => ({
      id: row.id,
      role: row.role,
      host: row.host,
      pid: row.pid,
      url: row.url,
      leader: row.leader,
      startedAt: row.started_at,
      lastSeenAt: row.last_seen_at,
      inFlight: row.in_flight,
      cpu: row.cpu,
      details: row.details,
    }));
  }

  /**
   * Where the leading controller is. Just after a takeover the dead leader's row still says it
   * leads until it goes stale: the leader heard from last is the live one.
   */
  async leaderUrl(): Promise<string> {
    const leaders = (await this.list()).filter((m) => m.role === 'controller' && m.leader && m.url);
    leaders.sort((a, b) => b.lastSeenAt.getTime() - a.lastSeenAt.getTime());
    if (!leaders[0]) throw new Error('no controller leads yet');
    return leaders[0].url!;
  }

  /**
   * This process's address as the database sees it (null over a Unix socket): on a network that
   * the tier shares, where the others reach this process by address, with no name to look up.
   */
  async ownAddress(): Promise<string | null> {
    const { rows } = await this.#pool.query<{ address: string | null }>('SELECT host(inet_client_addr()) AS address');
    return rows[0]?.address ?? null;
  }

  /** Every member joined here leaves; then the registry's own pool (not one it was given) ends. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#joined].map((membership) => membership.leave()));
      if (this.#ownsPool) await this.#pool.end();
    })();
    return this.#closing;
  }
}
