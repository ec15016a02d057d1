import { useEffect } from 'react';
import { RoomInvite } from '@voting/room-invite';
import { ConnectionBadge } from './components/ConnectionBadge';
import { OptionScore } from './components/OptionScore';
import { SplitBar } from './components/SplitBar';
import { breakdown, formatTotal } from './scores';
import { useLiveScores } from './useLiveScores';
import { useOptions } from './useOptions';

export function App() {
  const options = useOptions();
  const { scores, connection } = useLiveScores();
  const split = scores ? breakdown(scores) : null;

  useEffect(() => {
    if (options) document.title = `${options.a} vs ${options.b} · Results`;
  }, [options]);

  const nameA = options?.a ?? 'Option A';
  const nameB = options?.b ?? 'Option B';
  const barLabel = split ? `${nameA} ${split.percentA}%, ${nameB} ${split.percentB}%` : 'Waiting for results';

  return (
    <div className="page">
      <header className="header">
        <h1 className="header__title">Live results</h1>
        <ConnectionBadge state={connection} />
        <RoomInvite />
      </header>

      <main className="board" aria-busy={split === null}>
        <div className="board__scores">
          <OptionScore option="a" name={options?.a} percent={split?.percentA ?? null} />
          <OptionScore option="b" name={options?.b} percent={split?.percentB ?? null} />
        </div>

        <SplitBar shareA={split?.shareA ?? 50} label={barLabel} pending={split === null} />

        <p className="total" data-testid="total" aria-live="polite">
          {split ? formatTotal(split.total) : 'Waiting for results…'}
        </p>
      </main>
    </div>
  );
}
