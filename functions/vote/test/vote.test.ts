import { describe, expect, it } from 'vitest';
import type { FunctionRequest } from '@voting/function-contract';
import { parseVote } from '../src/parse-vote.js';
import { cookieValue, newVoterId, readVoterId, signVoterId } from '../src/voter-cookie.js';

const post = (contentType: string, body: string): FunctionRequest => ({
  method: 'POST',
  path: '/',
  query: {},
  headers: { 'content-type': contentType },
  body,
});

describe('parseVote', () => {
  it('reads JSON and the original form post', () => {
    expect(parseVote(post('application/json', '{"vote":"a"}'))).toEqual({ vote: 'a', form: false });
    expect(parseVote(post('application/json; charset=utf-8', '{"vote":"b"}'))).toEqual({ vote: 'b', form: false });
    expect(parseVote(post('application/x-www-form-urlencoded', 'vote=b'))).toEqual({ vote: 'b', form: true });
  });

  it.each([
    ['application/json', '{"vote":"c"}', 400, 'invalid vote "c": expected "a" or "b"'],
    ['application/json', '{"vote":1}', 400, 'invalid vote number'],
    ['application/json', '{}', 400, 'missing "vote"'],
    ['application/json', '{"vote":', 400, 'body is not valid JSON'],
    ['application/json', '["a"]', 400, 'body must be a JSON object'],
    ['application/x-www-form-urlencoded', 'vote=', 400, 'missing "vote"'],
    ['application/x-www-form-urlencoded', 'vote=a&vote=b', 400, 'more than one'],
    ['text/plain', 'vote=a', 415, 'Content-Type must be'],
    ['', '', 415, 'Content-Type must be'],
  ])('rejects %s %j with %i', (type, body, status, message) => {
    expect(() => parseVote(post(type, body))).toThrow(expect.objectContaining({ status, message: expect.stringContaining(message) }));
  });
});

describe('voter cookie', () => {
  const secret = 'test-secret';

  it('makes 128-bit random ids and reads back what it signed', () => {
    const id = newVoterId();
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(newVoterId()).not.toBe(id);
    expect(readVoterId(secret, signVoterId(secret, id))).toEqual({ id });
  });

  it('rejects forged and malformed values', () => {
    const id = newVoterId();
    expect(readVoterId(secret, signVoterId('other-secret', id))).toEqual({ error: 'voter_id cookie has an invalid signature' });
    const signed = signVoterId(secret, id);
    const otherId = newVoterId();
    expect(readVoterId(secret, `${otherId}.${signed.split('.')[1]}`)).toHaveProperty('error');
    for (const bad of ['', 'abc', id, `${id}.`, `${id}.x.y`, 'ZZ'.repeat(16) + '.abc', `${id.toUpperCase()}.${signed.split('.')[1]}`]) {
      expect(readVoterId(secret, bad)).toHaveProperty('error');
    }
  });

  it('finds the cookie among others', () => {
    expect(cookieValue('a=1; voter_id=xyz; b=2', 'voter_id')).toBe('xyz');
    expect(cookieValue('voter_idx=1', 'voter_id')).toBeUndefined();
    expect(cookieValue(undefined, 'voter_id')).toBeUndefined();
  });
});
