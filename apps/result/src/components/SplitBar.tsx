interface SplitBarProps {
  /** Exact share of option a, 0 to 100. */
  shareA: number;
  /** Spoken summary of the split. */
  label: string;
  pending: boolean;
}

export function SplitBar({ shareA, label, pending }: SplitBarProps) {
  const a = Math.min(100, Math.max(0, shareA));
  return (
    <div className={pending ? 'bar bar--pending' : 'bar'} role="img" aria-label={label}>
      <div className="bar__part bar__part--a" data-testid="bar-a" style={{ width: `${a}%` }} />
      <div className="bar__part bar__part--b" data-testid="bar-b" style={{ width: `${100 - a}%` }} />
    </div>
  );
}
