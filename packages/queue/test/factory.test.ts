import { describe, expect, it } from 'vitest';
import { createEventBus, createQueue } from '../src/index.js';

describe('createQueue and createEventBus', () => {
  it('name an unknown URL scheme without showing the rest of the URL', async () => {
    for (const create of [createQueue, createEventBus]) {
      let error: Error | undefined;
      try {
        await create('amqp://guest:s3cret-pw@broker:5672/vhost');
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message).toMatch(/"amqp:"/);
      expect(error?.message).not.toMatch(/s3cret|broker/);
    }
    await expect(createQueue('localhost:6379')).rejects.toThrow(/scheme "localhost:"/);
    await expect(createQueue('//user:pw@host/db')).rejects.toThrow(/without a scheme/);
    await expect(createEventBus('')).rejects.toThrow(/without a scheme/);
  });

  it('reject a queue name that cannot be a key or a NOTIFY payload', async () => {
    await expect(createQueue('postgres://localhost/db', { name: 'two words' })).rejects.toThrow(/invalid queue name/);
    await expect(createQueue('postgres://localhost/db', { maxAttempts: 0 })).rejects.toThrow(/maxAttempts/);
  });
});

describe('consume', () => {
  it('rejects a missing consumer name and a batch size below 1 before touching the store', async () => {
    const queue = await createQueue('postgres://127.0.0.1:1/none', { name: 'never-used' });
    expect(() => queue.consume(async () => {}, { consumer: '' })).toThrow(/consumer name/);
    expect(() => queue.consume(async () => {}, { consumer: 'c', batchSize: 0 })).toThrow(/batchSize/);
    await queue.close();
  });
});
