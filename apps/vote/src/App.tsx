import { useCallback, useEffect, useRef, useState } from 'react';
import { castVote, errorMessage, fetchPoll, OPTION_KEYS, type OptionKey, type Poll } from './api';
import { ErrorBanner } from './components/ErrorBanner';
import { OptionButton } from './components/OptionButton';
import { readStoredVote, storeVote } from './storage';

type PollState = { status: 'loading' } | { status: 'ready'; poll: Poll } | { status: 'failed' };

interface ShownError {
  id: number;
  message: string;
}

export function App() {
  const [pollState, setPollState] = useState<PollState>({ status: 'loading' });
  const [attempt, setAttempt] = useState(0);
  const [choice, setChoice] = useState<OptionKey | null>(readStoredVote);
  const [pending, setPending] = useState<OptionKey | null>(null);
  const [instance, setInstance] = useState<string | null>(null);
  const [error, setError] = useState<ShownError | null>(null);
  const inFlight = useRef(false);
  const buttons = useRef<Partial<Record<OptionKey, HTMLButtonElement | null>>>({});
  const refocus = useRef<OptionKey | null>(null);

  const showError = useCallback((message: string) => {
    setError((previous) => ({ id: (previous?.id ?? 0) + 1, message }));
  }, []);
  const dismissError = useCallback(() => setError(null), []);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `attempt` is the retry button's trigger to load again
  useEffect(() => {
    const controller = new AbortController();
    setPollState({ status: 'loading' });
    fetchPoll(controller.signal).then(
      (poll) => setPollState({ status: 'ready', poll }),
      (reason: unknown) => {
        if (controller.signal.aborted) return;
        setPollState({ status: 'failed' });
        showError(errorMessage(reason));
      },
    );
    return () => controller.abort();
  }, [attempt, showError]);

  const poll = pollState.status === 'ready' ? pollState.poll : undefined;

  useEffect(() => {
    if (poll) document.title = poll.question;
  }, [poll]);

  // Disabled buttons drop keyboard focus; give it back to the button that was used.
  useEffect(() => {
    if (pending !== null || refocus.current === null) return;
    const button = buttons.current[refocus.current];
    refocus.current = null;
    if (button && (document.activeElement === null || document.activeElement === document.body)) button.focus();
  }, [pending]);

  const vote = useCallback(
    async (option: OptionKey) => {
      if (inFlight.current) return;
      inFlight.current = true;
      refocus.current = option;
      setPending(option);
      setError(null);
      try {
        const receipt = await castVote(option);
        setChoice(receipt.vote);
        storeVote(receipt.vote);
        setInstance(receipt.instance || null);
      } catch (reason) {
        showError(errorMessage(reason));
      } finally {
        inFlight.current = false;
        setPending(null);
      }
    },
    [showError],
  );

  const retry = () => {
    setError(null);
    setAttempt((n) => n + 1);
  };

  return (
    <div className="page">
      {error && <ErrorBanner key={error.id} message={error.message} onDismiss={dismissError} />}

      <main className="poll" aria-busy={pollState.status === 'loading'}>
        <h1 className="poll__question" id="question" data-testid="question">
          {poll ? (
            poll.question
          ) : (
            <span className="skeleton skeleton--title">
              <span className="visually-hidden">{pollState.status === 'failed' ? 'Poll unavailable' : 'Loading…'}</span>
            </span>
          )}
        </h1>

        {/* biome-ignore lint/a11y/useSemanticElements: a fieldset's own border and legend would fight the card layout */}
        <div className="poll__options" role="group" aria-labelledby="question">
          {OPTION_KEYS.map((option) => (
            <OptionButton
              key={option}
              ref={(element) => {
                buttons.current[option] = element;
              }}
              option={option}
              label={poll?.options[option]}
              selected={poll !== undefined && choice === option}
              dimmed={poll !== undefined && choice !== null && choice !== option}
              pending={pending === option}
              disabled={!poll || pending !== null}
              onVote={(key) => void vote(key)}
            />
          ))}
        </div>

        <div className="poll__note" role="status">
          {pollState.status === 'failed' ? (
            <button type="button" className="link-button" onClick={retry}>
              Try again
            </button>
          ) : (
            poll &&
            choice && (
              <p className="tip" data-testid="tip">
                (Tip: you can change your vote)
              </p>
            )
          )}
        </div>
      </main>

      <footer className="footer" role="status">
        {instance && (
          <p className="footer__instance" data-testid="instance">
            Processed by instance <span className="footer__id">{instance}</span>
          </p>
        )}
      </footer>
    </div>
  );
}
