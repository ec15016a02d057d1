export type OptionKey = 'a' | 'b';

export type Options = Record<OptionKey, string>;

/**
 * Absolute path on purpose: the page is served at / and at /result/, the API always
 * at the origin root.
 */
const OPTIONS_URL = '/function/results/options';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function fetchOptions(signal?: AbortSignal): Promise<Options> {
  const response = await fetch(OPTIONS_URL, {
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { accept: 'application/json' },
    signal: signal ?? null,
  });
  if (!response.ok) throw new Error(`options: HTTP ${response.status}`);
  const body: unknown = await response.json();
  if (!isRecord(body) || typeof body.a !== 'string' || typeof body.b !== 'string') {
    throw new Error('options: unexpected response');
  }
  return { a: body.a, b: body.b };
}
