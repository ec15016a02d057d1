import { HttpError, type FunctionRequest } from '@platform/function-contract';

export type Choice = 'a' | 'b';

/** The vote in a JSON body `{"vote":"a"}` or the original form post `vote=a`. */
export function parseVote(request: FunctionRequest): { vote: Choice; form: boolean } {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  let value: unknown;
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(request.body);
    } catch {
      throw new HttpError(400, 'body is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new HttpError(400, 'body must be a JSON object like {"vote":"a"}');
    }
    value = (parsed as Record<string, unknown>).vote;
  } else if (type === 'application/x-www-form-urlencoded') {
    const values = new URLSearchParams(request.body).getAll('vote');
    if (values.length > 1) throw new HttpError(400, 'more than one "vote" field');
    value = values[0];
  } else {
    throw new HttpError(415, 'Content-Type must be application/json or application/x-www-form-urlencoded');
  }
  if (value === undefined || value === '') throw new HttpError(400, 'missing "vote": expected "a" or "b"');
  if (value !== 'a' && value !== 'b') {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 20)) : typeof value;
    throw new HttpError(400, `invalid vote ${shown}: expected "a" or "b"`);
  }
  return { vote: value, form: type === 'application/x-www-form-urlencoded' };
}
