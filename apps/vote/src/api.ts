export type OptionKey = 'a' | 'b';

export const OPTION_KEYS: readonly OptionKey[] = ['a', 'b'];

export interface Poll {
  question: string;
  options: Record<OptionKey, string>;
}

export interface VoteReceipt {
  vote: OptionKey;
  instance: string;
}

/** The vote function lives at the origin root, whatever path the page is served from. */
const VOTE_URL = '/function/vote';

export const NETWORK_ERROR = 'Could not reach the server';
const UNEXPECTED_RESPONSE = 'Unexpected response from the server';

/** A failure worth showing to the voter as is. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

export function isOptionKey(value: unknown): value is OptionKey {
  return value === 'a' || value === 'b';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

async function request(init: RequestInit): Promise<unknown> {
  let response: Response;
  let text: string;
  try {
    response = await fetch(VOTE_URL, {
      credentials: 'same-origin',
      cache: 'no-store',
      ...init,
      headers: { accept: 'application/json', ...init.headers },
    });
    text = await response.text();
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(NETWORK_ERROR);
  }

  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }

  if (!response.ok) {
    const message = isRecord(body) && typeof body.error === 'string' && body.error.trim() !== '' ? body.error : `Request failed (HTTP ${response.status})`;
    throw new ApiError(message, response.status);
  }
  return body;
}

export async function fetchPoll(signal?: AbortSignal): Promise<Poll> {
  const body = await request({ method: 'GET', signal: signal ?? null });
  if (!isRecord(body) || typeof body.question !== 'string' || !isRecord(body.options)) {
    throw new ApiError(UNEXPECTED_RESPONSE);
  }
  const { a, b } = body.options;
  if (typeof a !== 'string' || typeof b !== 'string') throw new ApiError(UNEXPECTED_RESPONSE);
  return { question: body.question, options: { a, b } };
}

export async function castVote(vote: OptionKey): Promise<VoteReceipt> {
  const body = await request({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ vote }),
  });
  if (!isRecord(body) || !isOptionKey(body.vote)) throw new ApiError(UNEXPECTED_RESPONSE);
  const instance = typeof body.instance === 'string' || typeof body.instance === 'number' ? String(body.instance) : '';
  return { vote: body.vote, instance };
}

export function errorMessage(error: unknown): string {
  return error instanceof ApiError ? error.message : 'Something went wrong, please try again';
}
