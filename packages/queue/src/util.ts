export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A wake-up call that is not lost if it comes before the wait: `notify()` between `reset()`
 * and `wait()` makes the wait return at once.
 */
export class Signal {
  private woken = false;
  private waiters = new Set<() => void>();

  reset(): void {
    this.woken = false;
  }

  notify(): void {
    this.woken = true;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** Resolves on notify() or after `ms`, whichever comes first. */
  wait(ms: number): Promise<void> {
    if (this.woken) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}
