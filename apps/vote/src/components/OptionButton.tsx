import type { Ref } from 'react';
import type { OptionKey } from '../api';

interface OptionButtonProps {
  option: OptionKey;
  /** The option's name; undefined while the poll is loading. */
  label: string | undefined;
  selected: boolean;
  /** Another option is the voter's current choice. */
  dimmed: boolean;
  pending: boolean;
  disabled: boolean;
  onVote: (option: OptionKey) => void;
  ref?: Ref<HTMLButtonElement>;
}

export function OptionButton({ option, label, selected, dimmed, pending, disabled, onVote, ref }: OptionButtonProps) {
  const loading = label === undefined;
  const classes = ['option', `option--${option}`];
  if (loading) classes.push('option--loading');
  if (selected) classes.push('option--selected');
  if (dimmed) classes.push('option--dimmed');
  if (pending) classes.push('option--pending');

  return (
    <button
      ref={ref}
      type="button"
      className={classes.join(' ')}
      data-testid={`option-${option}`}
      aria-pressed={loading ? undefined : selected}
      aria-busy={pending || undefined}
      disabled={disabled}
      onClick={() => onVote(option)}
    >
      <span className="option__label">{label}</span>
      <svg className="option__check" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
        <circle cx="12" cy="12" r="11" />
        <path d="M6.5 12.5l3.5 3.5 7.5-8" />
      </svg>
      <span className="option__spinner" aria-hidden="true" />
    </button>
  );
}
