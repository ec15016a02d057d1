// Event bus on Redis pub/sub. A subscribed connection can do nothing else, so subscriptions
// get their own connection (opened on the first subscribe); publishing uses the main one.
import { createClient } from 'redis';
import { assertTopic, type EventBus } from './events.js';
import { toError } from './util.js';

type RedisClient = ReturnType<typeof createClient>;

export class RedisEventBus implements EventBus {
  private readonly client: RedisClient;
  private readonly ready: Promise<unknown>;
  private subscriber: Promise<RedisClient> | undefined;
  private closed = false;

  constructor(
    url: string,
    private readonly onError: (error: Error) => void = (error) => console.warn(`events: ${error.message}`),
  ) {
    this.client = createClient({ url });
    this.client.on('error', (error: unknown) => this.onError(toError(error)));
    this.ready = this.client.connect();
    this.ready.catch(() => {});
  }

  async publish(topic: string, payload: string): Promise<void> {
    assertTopic(topic);
    await this.ready;
    await this.client.publish(topic, payload);
  }

  async subscribe(topic: string, listener: (payload: string) => void): Promise<() => Promise<void>> {
    assertTopic(topic);
    if (this.closed) throw new Error('event bus is closed');
    const subscriber = await this.subscriberClient();
    // A wrapper per subscription: unsubscribing removes exactly this one, and a throwing
    // listener cannot break delivery to the others.
    const wrapped = (message: string) => {
      try {
        listener(message);
      } catch (error) {
        this.onError(toError(error));
      }
    };
    await subscriber.subscribe(topic, wrapped);
    let active = true;
    return async () => {
      if (!active || this.closed) return;
      active = false;
      await subscriber.unsubscribe(topic, wrapped);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const subscriber = await this.subscriber?.catch(() => undefined);
    if (subscriber?.isOpen) await subscriber.close();
    await this.ready.catch(() => {});
    if (this.client.isOpen) await this.client.close();
  }

  private subscriberClient(): Promise<RedisClient> {
    this.subscriber ??= (async () => {
      await this.ready;
      const subscriber = this.client.duplicate();
      subscriber.on('error', (error: unknown) => this.onError(toError(error)));
      await subscriber.connect();
      return subscriber;
    })().catch((error: unknown) => {
      this.subscriber = undefined;
      throw error;
    });
    return this.subscriber;
  }
}
