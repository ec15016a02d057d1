// Event bus on PostgreSQL LISTEN/NOTIFY: the topic is the channel. Publishing goes through a
// small pool; listening needs one dedicated session (PgListener).
import pg from 'pg';
import { assertTopic, type EventBus } from './events.js';
import { PgListener } from './pg-listener.js';

/** NOTIFY refuses payloads of 8000 bytes or more (with the default 8 kB block size). */
export const MAX_NOTIFY_PAYLOAD_BYTES = 7999;

export class PostgresEventBus implements EventBus {
  private readonly pool: pg.Pool;
  private readonly listener: PgListener;
  private closed = false;

  constructor(url: string, onError: (error: Error) => void = (error) => console.warn(`events: ${error.message}`)) {
    this.pool = new pg.Pool({ connectionString: url, max: 4 });
    this.pool.on('error', onError);
    this.listener = new PgListener(url, onError);
  }

  async publish(topic: string, payload: string): Promise<void> {
    assertTopic(topic);
    const bytes = Buffer.byteLength(payload, 'utf8');
    if (bytes > MAX_NOTIFY_PAYLOAD_BYTES) {
      throw new Error(
        `event payload for "${topic}" is ${bytes} bytes; PostgreSQL NOTIFY takes at most ${MAX_NOTIFY_PAYLOAD_BYTES}: publish an id and let subscribers fetch the rest`,
      );
    }
    // pg_notify takes the channel as a value, so it needs no quoting here.
    await this.pool.query({ name: 'events-publish', text: 'SELECT pg_notify($1, $2)', values: [topic, payload] });
  }

  async subscribe(topic: string, listener: (payload: string) => void): Promise<() => Promise<void>> {
    assertTopic(topic);
    if (this.closed) throw new Error('event bus is closed');
    return this.listener.listen(topic, listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener.close();
    await this.pool.end();
  }
}
