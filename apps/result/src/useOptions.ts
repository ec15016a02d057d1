import { useEffect, useState } from 'react';
import { fetchOptions, type Options } from './api';

const MAX_RETRY_MS = 10_000;

/** The option names; retried with backoff while the results function is unavailable. */
export function useOptions(): Options | null {
  const [options, setOptions] = useState<Options | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;

    const load = () => {
      fetchOptions(controller.signal).then(setOptions, () => {
        if (controller.signal.aborted) return;
        failures += 1;
        timer = setTimeout(load, Math.min(500 * 2 ** failures, MAX_RETRY_MS));
      });
    };
    load();

    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, []);

  return options;
}
