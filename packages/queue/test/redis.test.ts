import { describe, expect, it } from 'vitest';
import { createEventBus, createQueue, RedisEventBus, RedisQueue } from '../src/index.js';
import { eventsContract } from './events-contract.js';
import { queueContract } from './queue-contract.js';

const url = () => process.env.REDIS_URL!;

queueContract('Redis', (options) => createQueue(url(), options));
eventsContract('Redis', () => createEventBus(url(), { onError: () => {} }));

describe('Redis adapters', () => {
  it('are what createQueue and createEventBus pick for redis:// URLs', async () => {
    const queue = createQueue(url(), { name: 'pick-test' });
    const events = createEventBus(url());
    try {
      expect(queue).toBeInstanceOf(RedisQueue);
      expect(events).toBeInstanceOf(RedisEventBus);
    } finally {
      await Promise.all([queue.close(), events.close()]);
    }
  });
});
