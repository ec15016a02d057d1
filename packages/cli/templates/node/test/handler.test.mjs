// Run with: node --test (or npm test in this folder).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { handler } from '../handler.mjs';

const context = { instance: '__NAME__-test', log: { info() {} } };
const post = (body) => ({ method: 'POST', path: '/', query: {}, headers: {}, body });

test('greets the name given', async () => {
  const response = await handler(post('{"name": "workshop"}'), context);
  assert.equal(response.status, 200);
  assert.equal(JSON.parse(response.body).greeting, 'Hello, workshop!');
});

test('refuses a body without a name', async () => {
  await assert.rejects(handler(post('{}'), context), { status: 400 });
});
