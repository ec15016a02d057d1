import type { OptionKey } from '../api';

interface OptionScoreProps {
  option: OptionKey;
  /** Undefined while the names are loading. */
  name: string | undefined;
  /** Null until the first scores arrive. */
  percent: number | null;
}

export function OptionScore({ option, name, percent }: OptionScoreProps) {
  return (
    <section className={`score score--${option}`} aria-live="polite" aria-atomic="true">
      <h2 className="score__name" data-testid={`name-${option}`}>
        {name ?? (
          <span className="skeleton skeleton--name">
            <span className="visually-hidden">Loading…</span>
          </span>
        )}
      </h2>
      <p className="score__percent" data-testid={`percent-${option}`}>
        {percent === null ? (
          <span className="skeleton skeleton--percent">
            <span className="visually-hidden">Waiting for results</span>
          </span>
        ) : (
          `${percent}%`
        )}
      </p>
    </section>
  );
}
