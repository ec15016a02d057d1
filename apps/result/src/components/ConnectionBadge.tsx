import type { Connection } from '../useLiveScores';

export function ConnectionBadge({ state }: { state: Connection }) {
  return (
    <p className={`badge badge--${state}`} data-testid="connection" role="status">
      <span className="badge__dot" aria-hidden="true" />
      {state === 'live' ? 'Live' : 'Reconnecting…'}
    </p>
  );
}
