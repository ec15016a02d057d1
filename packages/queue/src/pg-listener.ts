// One dedicated PostgreSQL connection for LISTEN, shared by everything in an adapter instance.
// A pooled connection cannot LISTEN: notifications go to the session that asked for them.
// If the connection drops it is re-opened and every channel listened to again.
import pg from 'pg';
import { sleep, toError } from './util.js';

type Handler = (payload: string) => void;

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export class PgListener {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly channels = new Map<string, Set<Handler>>();
  /** LISTEN/UNLISTEN run one at a time, so a quick subscribe-unsubscribe cannot reorder. */
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly connectionString: string,
    private readonly onError: (error: Error) => void,
    /** Called after a reconnect: notifications sent while disconnected are lost. */
    private readonly onReconnect: () => void = () => {},
  ) {}

  /** Resolves once LISTEN is in effect; returns the function that stops this handler. */
  async listen(channel: string, handler: Handler): Promise<() => Promise<void>> {
    let handlers = this.channels.get(channel);
    const first = !handlers;
    if (!handlers) this.channels.set(channel, (handlers = new Set()));
    // A wrapper per call, so the same function subscribed twice is removed once per unsubscribe.
    const entry: Handler = (payload) => handler(payload);
    handlers.add(entry);
    if (first) {
      try {
        await this.serially(async () => (await this.connection()).query(`LISTEN ${quoteIdentifier(channel)}`));
      } catch (error) {
        handlers.delete(entry);
        if (handlers.size === 0) this.channels.delete(channel);
        throw error;
      }
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      handlers.delete(entry);
      if (handlers.size > 0 || this.channels.get(channel) !== handlers) return;
      this.channels.delete(channel);
      if (this.client && !this.closed) {
        await this.serially(async () => this.client?.query(`UNLISTEN ${quoteIdentifier(channel)}`)).catch(() => {});
      }
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
    const client = await this.connecting?.catch(() => undefined);
    this.client = undefined;
    this.connecting = undefined;
    await client?.end().catch(() => {});
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => {});
    return next;
  }

  private connection(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error('listener is closed'));
    this.connecting ??= this.open().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.connectionString, keepAlive: true });
    client.on('notification', (message) => {
      for (const handler of this.channels.get(message.channel) ?? []) {
        try {
          handler(message.payload ?? '');
        } catch (error) {
          this.onError(toError(error));
        }
      }
    });
    // Before connect() resolves, failures reach the caller through its rejection instead.
    let connected = false;
    let lost = false;
    const onLost = (error?: Error) => {
      if (!connected || lost) return;
      lost = true;
      if (this.closed) return;
      this.onError(new Error(`LISTEN connection lost${error ? `: ${error.message}` : ''}`));
      this.client = undefined;
      this.connecting = undefined;
      void this.reconnect();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    await client.connect();
    connected = true;
    this.client = client;
    return client;
  }

  private async reconnect(): Promise<void> {
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5_000)) {
      await sleep(delay);
      if (this.closed || this.channels.size === 0) return;
      try {
        const client = await this.connection();
        for (const channel of this.channels.keys()) await client.query(`LISTEN ${quoteIdentifier(channel)}`);
        this.onReconnect();
        return;
      } catch (error) {
        this.onError(new Error(`LISTEN reconnect failed: ${toError(error).message}`));
      }
    }
  }
}
