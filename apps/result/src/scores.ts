export interface Scores {
  a: number;
  b: number;
}

export interface Breakdown {
  total: number;
  /** Rounded percentages; they always add up to 100. */
  percentA: number;
  percentB: number;
  /** Exact share of option a, 0 to 100, for the bar. */
  shareA: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toCount(value: unknown): number | null {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.floor(n) : null;
}

/** The `scores` event carries a JSON string `{"a":N,"b":M}`; anything else is ignored. */
export function parseScores(payload: unknown): Scores | null {
  let data = payload;
  if (typeof payload === 'string') {
    try {
      data = JSON.parse(payload);
    } catch {
      return null;
    }
  }
  if (!isRecord(data)) return null;
  const a = toCount(data.a);
  const b = toCount(data.b);
  return a === null || b === null ? null : { a, b };
}

export function breakdown({ a, b }: Scores): Breakdown {
  const total = a + b;
  if (total === 0) return { total, percentA: 50, percentB: 50, shareA: 50 };
  const percentA = Math.round((a / total) * 100);
  return { total, percentA, percentB: 100 - percentA, shareA: (a / total) * 100 };
}

const count = new Intl.NumberFormat('en-US');

export function formatTotal(total: number): string {
  if (total === 0) return 'No votes yet';
  if (total === 1) return '1 vote';
  return `${count.format(total)} votes`;
}
