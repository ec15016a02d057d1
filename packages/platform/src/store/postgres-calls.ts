// Call records in PostgreSQL (table platform_calls, migrations/1765000000001_calls.sql), written
// in batches: records put while a write is in flight wait in a buffer (one per call, the latest)
// and go together in the next write, one multi-row upsert. A lone record is written at once; under
// load each write carries whatever piled up during the last, so there is one statement in flight
// per process whatever the number of calls.
import type pg from 'pg';
import type { CallRecord, CallState } from '../calls.js';
import { supersedes, type CallRecords, type CallWrite } from './state.js';

// The guard of state.ts's supersedes, in SQL: a write lands only if it is later in the call's life
// than the row's (or the row has expired), so edges that write out of order never step a record back.
const UPSERT = `
INSERT INTO platform_calls AS c (call_id, function, status, attempts, phase, accepted_at, updated_at, expires_at, result, error)
SELECT r.call_id, r.function, r.status, r.attempts, r.phase, r.accepted_at, r.updated_at, r.updated_at + $2::float8 * interval '1 second', r.result, r.error
FROM jsonb_to_recordset($1::jsonb) AS r(call_id text, function text, status text, attempts int, phase smallint,
  accepted_at timestamptz, updated_at timestamptz, result jsonb, error text)
ON CONFLICT (call_id) DO UPDATE SET
  function = excluded.function, status = excluded.status, attempts = excluded.attempts, phase = excluded.phase,
  updated_at = excluded.updated_at, expires_at = excluded.expires_at, result = excluded.result, error = excluded.error
WHERE (excluded.attempts, excluded.phase) > (c.attempts, c.phase) OR c.expires_at <= now()`;

const SELECT = `
SELECT call_id, function, status, attempts, accepted_at, updated_at, result, error
FROM platform_calls WHERE call_id = $1 AND expires_at > now()`;

/** Expired rows, a bounded number per statement; rows another edge is deleting are left to it. */
export const PRUNE_CALLS = `
DELETE FROM platform_calls WHERE call_id IN (
  SELECT call_id FROM platform_calls WHERE expires_at <= now() LIMIT 10000 FOR UPDATE SKIP LOCKED)`;

interface Row {
  call_id: string;
  function: string;
  status: CallState;
  attempts: number;
  accepted_at: Date;
  updated_at: Date;
  result: CallRecord['result'] | null;
  error: string | null;
}

// PostgreSQL's text and jsonb hold neither NUL nor half a surrogate pair, which a function's answer
// may: either would fail the whole write. Such characters are kept as U+FFFD.
const unstorable = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const storable = (text: string) => text.replace(unstorable, '\uFFFD');

function toRow({ record, phase }: CallWrite) {
  const { result } = record;
  return {
    call_id: record.callId,
    function: record.function,
    status: record.status,
    attempts: record.attempts,
    phase,
    accepted_at: record.acceptedAt,
    updated_at: record.updatedAt,
    result: result && {
      status: result.status,
      headers: Object.fromEntries(Object.entries(result.headers).map(([name, value]) => [name, Array.isArray(value) ? value.map(storable) : storable(value)])),
      body: storable(result.body),
    },
    error: record.error === undefined ? null : storable(record.error),
  };
}

function toRecord(row: Row): CallRecord {
  return {
    callId: row.call_id,
    function: row.function,
    status: row.status,
    acceptedAt: row.accepted_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    attempts: row.attempts,
    ...(row.result === null ? {} : { result: row.result }),
    ...(row.error === null ? {} : { error: row.error }),
  };
}

export class PostgresCallRecords implements CallRecords {
  /** Records not yet written, the latest per call. */
  private pending = new Map<string, CallWrite>();
  /** The last write started or scheduled; every write waits for the one before. */
  private tail: Promise<void> = Promise.resolve();
  /** The write that will take the buffer, until it starts. */
  private next: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlSeconds: number,
    private readonly onError: (error: Error) => void,
  ) {}

  put(write: CallWrite): void {
    const previous = this.pending.get(write.record.callId);
    if (previous && !supersedes(write, previous)) return;
    this.pending.set(write.record.callId, write);
    void this.schedule();
  }

  flush(): Promise<void> {
    return this.pending.size > 0 ? this.schedule() : this.tail;
  }

  async get(callId: string): Promise<CallRecord | undefined> {
    // An id PostgreSQL cannot hold was never stored (the gateway's ids are UUIDs).
    if (callId.search(unstorable) >= 0) return undefined;
    const { rows } = await this.pool.query<Row>({ name: 'platform-calls-select', text: SELECT, values: [callId] });
    return rows[0] && toRecord(rows[0]);
  }

  close(): Promise<void> {
    return this.flush();
  }

  private schedule(): Promise<void> {
    if (this.next) return this.next;
    const next = this.tail.then(() => {
      const batch = [...this.pending.values()];
      this.pending = new Map();
      this.next = undefined;
      return this.write(batch);
    });
    this.next = next;
    this.tail = next;
    return next;
  }

  private async write(batch: CallWrite[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      await this.pool.query({ name: 'platform-calls-upsert', text: UPSERT, values: [JSON.stringify(batch.map(toRow)), this.ttlSeconds] });
    } catch (error) {
      this.onError(new Error(`${batch.length} async call records not stored: ${(error as Error).message}`));
    }
  }
}
