// The __NAME__ function: answers POST {"name": "x"} with a greeting of x.
import { HttpError, json } from '@platform/function-contract';

/** @type {import('@platform/function-contract').Handler} */
export async function handler(request, context) {
  if (request.method !== 'POST') throw new HttpError(405, 'use POST with {"name": ...}');
  let name;
  try {
    name = JSON.parse(request.body || '{}').name;
  } catch {
    throw new HttpError(400, 'body must be a JSON object');
  }
  if (typeof name !== 'string' || name === '') throw new HttpError(400, 'missing "name"');
  context.log.info({ name }, 'greeting');
  return json(200, { greeting: `Hello, ${name}!`, instance: context.instance });
}
