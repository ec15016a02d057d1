import type { FunctionResponse } from './types.js';

/** A JSON response. */
export function json(status: number, value: unknown, headers: Record<string, string | string[]> = {}): FunctionResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(value) };
}

/** A JSON error `{ "error": message }`: the one error shape of every function. */
export function errorResponse(status: number, message: string, headers: Record<string, string | string[]> = {}): FunctionResponse {
  return json(status, { error: message }, headers);
}

/** Throw from a handler to answer with a 4xx/5xx and a message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
