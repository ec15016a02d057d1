import pg from 'pg';
import { HttpError, json, type FunctionDefinition } from '@platform/function-contract';
import { createEventBus, type EventBus } from '@platform/queue';
import { parseMessages } from './message.js';
import { recordVotes } from './record.js';

let db: pg.Pool | undefined;
let events: EventBus | undefined;

export const definition: FunctionDefinition = {
  async setup(context) {
    // The database as the role that may only upsert votes (infra/migrations), never its owner.
    db = new pg.Pool({ connectionString: context.secret('votes-writer-url'), max: 8 });
    // A pooled connection that drops (database restart) is replaced on next use, not fatal.
    db.on('error', (error) => context.log.warn({ err: error }, 'database connection lost'));
    events = await createEventBus(context.secret('votes-writer-events-url'));
  },
  async handler(request, context) {
    if (request.method !== 'POST') throw new HttpError(405, 'use POST with a vote message', { allow: 'POST' });
    const messages = parseMessages(request.body);
    const changed = await recordVotes(db!, messages);
    // Tell live result pages; a lost event only delays them until the next one.
    if (changed > 0) await events!.publish('votes', '').catch((error: unknown) => context.log.warn({ err: error }, 'publish failed'));
    return json(200, { received: messages.length, changed });
  },
  async teardown() {
    await Promise.allSettled([db?.end(), events?.close()]);
  },
};
