import { describe, expect, it } from 'vitest';
import { createEventBus, createQueue } from '../src/index.js';
import { RedisEventBus, RedisQueue } from '../src/redis.js';
import { eventsContract } from './events-contract.js';
import { queueContract } from './queue-contract.js';

const url = () => process.env.REDIS_URL!;

queueContract('Redis', (options) => new RedisQueue(url(), options));
eventsContract('Redis', () => new RedisEventBus(url(), () => {}));

describe('Redis adapters', () => {
  it('are what createQueue and createEventBus pick for redis:// URLs', async () => {
    const queue = await createQueue(url(), { name: 'pick-test' });
    const events = await createEventBus(url());
    try {
      expect(queue).toBeInstanceOf(RedisQueue);
      expect(events).toBeInstanceOf(RedisEventBus);
    } finally {
      await Promise.all([queue.close(), events.close()]);
    }
  });
});
