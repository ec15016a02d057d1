// The event bus: fire-and-forget notifications between processes (e.g. "votes changed").
// At-most-once: a subscriber that is disconnected when an event is published misses it.

export interface EventBus {
  publish(topic: string, payload: string): Promise<void>;
  /** Resolves once the subscription is active; returns the function that ends it. */
  subscribe(topic: string, listener: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const TOPIC = /^[a-z0-9._-]{1,60}$/i;

/** Topics become Redis channels and PostgreSQL identifiers, so only plain names are allowed. */
export function assertTopic(topic: string): void {
  if (typeof topic !== 'string' || !TOPIC.test(topic)) {
    throw new Error(`invalid event topic ${JSON.stringify(topic)}: use 1-60 letters, digits, '.', '_' or '-'`);
  }
}
